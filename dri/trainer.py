"""Two-stage DRI-IQA training as small composable functions (``python -m dri.train`` is a thin CLI over ``train``).

Stage 1 trains DRE-Net contrastively on group shards, with positives from the recorded
relations; its end stores the pristine prototypes of the RS loss in the model. Stage 2 trains
the score predictor and the restoration network on an IQA set, DRE-Net frozen by default.

Each stage checkpoints ``last.pt`` (model, optimizer, scheduler, RNG, data position) every
``checkpoint_every`` steps and on SIGTERM/SIGINT; ``resume=True`` continues from it and ends
where an uninterrupted run would. Under torchrun every rank trains on its own share of the data
(DDP, gloo on CPU, nccl on GPU); rank 0 alone writes files.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from datasets import iqa
from datasets.iqa.records import RecordDataset, collate
from datasets.shardformat import MANIFEST, list_shards
from datasets.shards import GroupShards, IQAShards, PseudoIQAShards, loader, shard_contents

from . import checkpoint, metrics
from .config import ConfigError, TrainConfig, save, to_dict
from .inference import score_batches
from .losses import EmbeddingQueue, info_nce, mos_loss, rank_loss, restoration_l1, rs_loss
from .models import DRIIQA, create_model
from .runlog import RunLog, scatter


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint."""


# --- runtime ---------------------------------------------------------------------------------


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup_runtime(device: str = "auto") -> Runtime:
    """Device and, under torchrun (``WORLD_SIZE`` > 1), the process group."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but no GPU is available")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    local = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local)
        target = torch.device("cuda", local)
    else:
        target = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Runtime(target, rank, world)


def collective_device(rt: Runtime) -> torch.device:
    """Where tensors for collectives live: nccl needs them on the GPU, gloo on the CPU."""
    return rt.device if rt.device.type == "cuda" else torch.device("cpu")


def barrier(rt: Runtime) -> None:
    if rt.distributed:
        dist.barrier()


def any_rank(flag: bool, rt: Runtime) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop together)."""
    if not rt.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=collective_device(rt))
    dist.all_reduce(t)
    return bool(t.item() > 0)


class StopRequest:
    """SIGTERM/SIGINT set a flag; the loop saves and stops at the end of the step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --- data ------------------------------------------------------------------------------------


def ensure_shards(cfg: TrainConfig, rt: Runtime) -> Path:
    """The group shards, built with ``python -m pipelines.build_shards`` when missing (rank 0)."""
    section = cfg.shards
    path = Path(section.path)
    if not (path / MANIFEST).is_file() and not section.build_if_missing:
        raise ConfigError(f"{path}: no shards (no {MANIFEST}); build them with python -m pipelines.build_shards")
    failed = False
    if rt.main and not (path / MANIFEST).is_file():
        command = [sys.executable, "-m", "pipelines.build_shards", "--source", section.source, "--out", str(path),
                   "--groups", str(section.groups), "--groups-per-shard", str(section.groups_per_shard),
                   "--size", str(section.size), "--preset", section.preset, "--policy", section.policy,
                   "--seed", str(section.seed)]
        print(f"building group shards: {' '.join(command[1:])}", file=sys.stderr)
        failed = subprocess.run(command).returncode != 0
    if any_rank(failed, rt):  # every rank stops, none waits for a build that will not come
        raise RuntimeError(f"building the shards in {path} failed; see the messages above")
    if not list_shards(path):
        raise ConfigError(f"{path}: no shards found")
    return path


def _groups_per_epoch(path: Path) -> int:
    return int(json.loads((path / MANIFEST).read_text()).get("groups", 0))


def stage1_loader(cfg: TrainConfig, shards: Path, rt: Runtime, epoch: int, exact: bool = False) -> DataLoader:
    s1 = cfg.stage1
    per_rank = max(1, _groups_per_epoch(shards) // (s1.groups * rt.world)) if not exact else None
    data = GroupShards(shards, batch_size=s1.groups, patch=s1.patch, policy=s1.policy, seed=cfg.seed,
                       exact=exact, batches_per_epoch=per_rank)
    data.set_epoch(epoch)
    return loader(data, num_workers=cfg.workers)


class Stage2Data:
    """Train batches per epoch and the held-out evaluation batches, for any stage-2 source."""

    def __init__(self, cfg: TrainConfig, shards: Path, size: int, rt: Runtime) -> None:
        s2 = cfg.stage2
        self.cfg, self.rt, self.size = cfg, rt, size
        common = dict(split=s2.split, patch=size, seed=cfg.seed)
        if s2.data == "pseudo":
            pseudo = dict(split_seed=s2.split_seed, train=s2.train_fraction, unit=s2.pseudo_split,
                          contents=shard_contents(shards) if s2.pseudo_split == "photo" else None)
            self.train = PseudoIQAShards(shards, side="train", mode="train", batch_size=s2.batch, flip=s2.flip,
                                         **common, **pseudo)
            self.test = PseudoIQAShards(shards, side="test", mode="eval", batch_size=s2.batch, split=s2.split,
                                        patch=size, **pseudo)
            self.describe = (f"pseudo-MOS from {shards} (SSIM/PSNR against each image's reference: pseudo-labels), "
                             f"held-out {s2.pseudo_split}s")
        elif s2.data == "shards":
            if not s2.root:
                raise ConfigError("stage2.data=shards needs stage2.root: a folder written by pipelines.pack_iqa")
            self.train = IQAShards(s2.root, side="train", official=s2.official, mode="train", batch_size=s2.batch,
                                   flip=s2.flip, **common)
            self.test = IQAShards(s2.root, side="test", official=s2.official, mode="eval", batch_size=s2.batch,
                                  split=s2.split, patch=size)
            self.describe = f"packed IQA shards {s2.root}"
        else:
            if not s2.root:
                raise ConfigError(f"stage2.data={s2.data} needs stage2.root: the dataset's folder")
            table = iqa.load(s2.data, s2.root)
            split = table.splits(n=max(s2.splits, s2.split + 1), seed=s2.split_seed, train=s2.train_fraction,
                                 official=s2.official or None)[0 if s2.official else s2.split]
            self.train_records = RecordDataset(split.train.records, "train", size, cfg.seed, s2.flip)
            self.test_records = RecordDataset(split.test.records, "eval", size)
            self.describe = f"{s2.data} at {s2.root}, split {s2.split} ({len(split.train)} train / {len(split.test)} test)"
            self.train = self.test = None

    def train_batches(self, epoch: int) -> Iterable[dict]:
        if self.train is not None:
            self.train.set_epoch(epoch)
            return loader(self.train, num_workers=self.cfg.workers)
        sampler = DistributedSampler(self.train_records, self.rt.world, self.rt.rank, shuffle=True, seed=self.cfg.seed,
                                     drop_last=True)
        sampler.set_epoch(epoch)
        self.train_records.set_epoch(epoch)
        return DataLoader(self.train_records, batch_size=self.cfg.stage2.batch, sampler=sampler, drop_last=True,
                          num_workers=self.cfg.workers, collate_fn=collate)

    def test_batches(self) -> Iterable[dict]:
        """Every held-out image once, on this process alone (evaluation runs on rank 0)."""
        if self.test is not None:
            self.test.split_ranks = False
            return loader(self.test, num_workers=self.cfg.workers)
        return DataLoader(self.test_records, batch_size=self.cfg.stage2.batch, num_workers=self.cfg.workers,
                          collate_fn=collate)


# --- objectives -------------------------------------------------------------------------------


class ContrastiveObjective(nn.Module):
    """Stage 1: multi-positive InfoNCE on both halves (+ optional pixel restoration pre-training)."""

    def __init__(self, model: DRIIQA, temperature: float, queue: int, restoration_weight: float) -> None:
        super().__init__()
        self.model, self.temperature, self.restoration_weight = model, temperature, restoration_weight
        proj = model.config.proj_dim
        self.queue_q = EmbeddingQueue(proj, queue)
        self.queue_d = EmbeddingQueue(proj, queue)

    def forward(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["images"].flatten(0, 2).to(device).float() / 255.0
        f_q, f_d = self.model.represent(x)
        z_q, z_d = self.model.dre.project(f_q, f_d)
        q_mask, d_mask = batch["quality_mask"].to(device), batch["degradation_mask"].to(device)
        loss_q = info_nce(z_q, q_mask, self.temperature, self.queue_q.items if self.queue_q.size else None)
        loss_d = info_nce(z_d, d_mask, self.temperature, self.queue_d.items if self.queue_d.size else None)
        loss = loss_q + loss_d
        parts = {"loss_q": loss_q.item(), "loss_d": loss_d.item()}
        if self.restoration_weight and self.model.restorer is not None:
            refs = batch["refs"].flatten(0, 2).to(device).float() / 255.0
            x_hat, _ = self.model.restore(x, f_d)
            pixel = restoration_l1(x_hat, refs)
            loss = loss + self.restoration_weight * pixel
            parts["loss_pixel"] = pixel.item()
        if self.queue_q.size:
            self.queue_q.push(z_q)
            self.queue_d.push(z_d)
        return loss, parts


class ScoreObjective(nn.Module):
    """Stage 2: MOS loss (+ rank term) and the RS loss on the restored image."""

    def __init__(self, model: DRIIQA, rs_weight: float, rank_weight: float, content_rank_weight: float = 0.0) -> None:
        super().__init__()
        self.model, self.rs_weight, self.rank_weight = model, rs_weight, rank_weight
        self.content_rank_weight = content_rank_weight

    def forward(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["images"].to(device).float() / 255.0
        target = batch["quality"].to(device).float()
        out = self.model(x, return_all=True)
        loss = mos_loss(out["score"], target, self.rank_weight)
        parts = {"loss_mos": loss.item()}
        if self.content_rank_weight:  # order images of one content (reference) by their labels
            contents = [label.get("content") for label in batch["labels"]]
            same = torch.tensor([[a is not None and a == b for b in contents] for a in contents], device=device)
            within = rank_loss(out["score"], target, same)
            loss = loss + self.content_rank_weight * within
            parts["loss_content_rank"] = within.item()
        if self.rs_weight and out["x_hat"] is not None:
            f_q_hat, f_d_hat = self.model.represent(out["x_hat"])
            has_ref = batch["has_ref"].to(device)
            target_q = self.model.prototype_q.expand_as(f_q_hat)
            target_d = self.model.prototype_d.expand_as(f_d_hat)
            reference = None
            if has_ref.any():
                refs = batch["refs"].to(device).float() / 255.0
                with torch.no_grad():
                    ref_q, ref_d = self.model.represent(refs)
                keep = has_ref[:, None]
                target_q, target_d = torch.where(keep, ref_q, target_q), torch.where(keep, ref_d, target_d)
                reference = refs
            rs = rs_loss(f_q_hat, f_d_hat, target_q, target_d)
            if reference is not None:
                rs = rs + restoration_l1(out["x_hat"][has_ref], reference[has_ref])
            loss = loss + self.rs_weight * rs
            parts["loss_rs"] = rs.item()
        return loss, parts


# --- optimisation ---------------------------------------------------------------------------------


def make_optimizer(name: str, groups: list[dict], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, momentum=0.9)
    raise ConfigError(f"unknown optimizer {name!r}; choose adam, adamw or sgd")


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    batch: int = 0
    best: float = -math.inf


def run_loop(folder: Path, objective: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, batches_for_epoch: Callable[[int], Iterable[dict]],
             steps: int, cfg: TrainConfig, rt: Runtime, resume: bool, log: RunLog, unit: str,
             evaluate: Callable[[LoopState], float | None] | None = None, eval_every: int = 0) -> LoopState:
    """Train ``objective`` for ``steps`` steps; checkpoint, evaluate and stop on signals as configured."""
    state = LoopState()
    last = folder / "last.pt"
    if resume and last.is_file():
        saved = checkpoint.load(last)
        objective.load_state_dict(saved["objective"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        checkpoint.set_rng_state(saved["rng"])
        state = LoopState(**saved["loop"])
        positions = saved.get("positions")
        if positions and len(positions) == rt.world:  # every rank resumes at its own place in its data
            state.epoch, state.batch = positions[rt.rank]
        if rt.main:
            print(f"resuming {folder.name} at step {state.step} (epoch {state.epoch}, batch {state.batch})",
                  file=sys.stderr)
    step_module = DistributedDataParallel(objective) if rt.distributed else objective

    def save_last() -> None:
        positions = [[state.epoch, state.batch]]
        if rt.distributed:  # collective: ranks have their own data positions
            mine = torch.tensor([state.epoch, state.batch], dtype=torch.long, device=collective_device(rt))
            gathered = [torch.zeros_like(mine) for _ in range(rt.world)]
            dist.all_gather(gathered, mine)
            positions = [g.tolist() for g in gathered]
        if rt.main:
            checkpoint.save(last, {"objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "rng": checkpoint.rng_state(),
                                   "loop": asdict(state), "positions": positions, "config": to_dict(cfg)})

    objective.train()
    bar = tqdm(total=steps, initial=state.step, unit="step", desc=folder.name, disable=not rt.main,
               dynamic_ncols=True, file=sys.stderr)
    window_start, window_items = time.perf_counter(), 0
    with StopRequest() as stop:
        while state.step < steps:
            yielded = False
            for index, batch in enumerate(batches_for_epoch(state.epoch)):
                if index < state.batch:
                    continue  # consumed before the interruption
                yielded = True
                loss, parts = step_module(batch, rt.device)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                state.step, state.batch = state.step + 1, index + 1
                window_items += len(batch["keys"]) * rt.world
                if state.step % cfg.log_every == 0 or state.step == steps:
                    rate = window_items / max(1e-9, time.perf_counter() - window_start)
                    log.log(state.step, loss=loss.item(), lr=scheduler.get_last_lr()[0], **{f"{unit}s_per_s": rate},
                            **parts)
                    bar.set_postfix(loss=f"{loss.item():.4f}", **{f"{unit}/s": f"{rate:.1f}"})
                    window_start, window_items = time.perf_counter(), 0
                bar.update(1)
                if evaluate is not None and eval_every and (state.step % eval_every == 0 or state.step == steps):
                    evaluate(state)
                    objective.train()
                if state.step % cfg.checkpoint_every == 0 or state.step == steps:
                    save_last()
                if any_rank(stop.requested, rt):
                    save_last()
                    bar.close()
                    raise Interrupted(f"stopped at step {state.step} of {folder.name}; checkpoint {last}; rerun with "
                                      "--resume to continue")
                if state.step >= steps:
                    break
            else:
                if not yielded and state.batch == 0:
                    raise RuntimeError(f"{folder.name}: the training data yielded no batch")
                state.epoch, state.batch = state.epoch + 1, 0
    bar.close()
    return state


# --- the stages -------------------------------------------------------------------------------


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


@torch.no_grad()
def compute_prototypes(model: DRIIQA, cfg: TrainConfig, shards: Path, rt: Runtime) -> None:
    """Mean representations of pristine (reference) patches, averaged over ranks, stored in the model."""
    model.eval()
    total_q = total_d = None
    count = 0
    for i, batch in enumerate(stage1_loader(cfg, shards, rt, epoch=0, exact=True)):
        if i >= cfg.stage1.prototype_batches:
            break
        refs = batch["refs"].flatten(0, 2).to(rt.device).float() / 255.0
        f_q, f_d = model.represent(refs)
        total_q = f_q.sum(0) if total_q is None else total_q + f_q.sum(0)
        total_d = f_d.sum(0) if total_d is None else total_d + f_d.sum(0)
        count += f_q.shape[0]
    sums = torch.cat([total_q, total_d, torch.tensor([float(count)], device=total_q.device)])
    if rt.distributed:
        dist.all_reduce(sums)
    dim = total_q.numel()
    model.set_prototypes(sums[:dim] / sums[-1], sums[dim : 2 * dim] / sums[-1])
    model.train()


def train_stage1(cfg: TrainConfig, rt: Runtime, resume: bool) -> dict[str, Any]:
    s1 = cfg.stage1
    shards = ensure_shards(cfg, rt)
    folder = Path(cfg.out) / "stage1"
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model.name, **cfg.model.overrides).to(rt.device)
    model.set_stage(1)
    if not s1.restoration_weight and model.restorer is not None:
        for p in model.restorer.parameters():
            p.requires_grad_(False)
    objective = ContrastiveObjective(model, s1.temperature, s1.queue, s1.restoration_weight).to(rt.device)
    optimizer = make_optimizer(s1.optimizer, [{"params": _trainable(model)}], s1.lr, s1.weight_decay)
    scheduler = cosine_schedule(optimizer, s1.steps, s1.warmup)
    log = RunLog(folder, enabled=rt.main)
    state = run_loop(folder, objective, optimizer, scheduler, lambda e: stage1_loader(cfg, shards, rt, e), s1.steps,
                     cfg, rt, resume, log, unit="group")
    compute_prototypes(model, cfg, shards, rt)
    result: dict[str, Any] = {"steps": state.step, "shards": str(shards)}
    if rt.main:
        result["sha256"] = checkpoint.save_inference(folder / "model.pt", model, cfg.model.name, cfg.model.overrides,
                                                     trained_on=f"stage 1 (contrastive) on {shards}")
        log.plot_losses(["loss", "loss_q", "loss_d", "loss_pixel"], title="stage 1: contrastive losses")
    log.close()
    result["checksums_agree"] = parameters_agree(model, rt)
    return result


def parameters_agree(model: nn.Module, rt: Runtime) -> bool:
    """Whether every rank holds the same weights (a DDP desynchronisation check)."""
    if not rt.distributed:
        return True
    total = torch.tensor([sum(float(p.double().sum()) for p in model.parameters())], dtype=torch.float64,
                         device=collective_device(rt))
    gathered = [torch.zeros_like(total) for _ in range(rt.world)]
    dist.all_gather(gathered, total)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def evaluate_held_out(model: DRIIQA, data: Stage2Data, device: torch.device) -> tuple[dict[str, float], list[float], list[dict]]:
    predictions, labels = score_batches(model, data.test_batches(), device, progress="held-out")
    quality = [float(label["quality"]) for label in labels]
    scores = metrics.evaluate(predictions, quality) if len(quality) > 5 else {}
    return scores, predictions, labels


def train_stage2(cfg: TrainConfig, rt: Runtime, resume: bool) -> dict[str, Any]:
    s2 = cfg.stage2
    folder = Path(cfg.out) / "stage2"
    init = Path(s2.init) if s2.init else Path(cfg.out) / "stage1" / "model.pt"
    if not init.is_file():
        raise ConfigError(f"{init}: no stage-1 model; run stage 1 first (--stage 1 or --stage all) or point "
                          "--stage2.init at one")
    shards = ensure_shards(cfg, rt) if s2.data == "pseudo" else Path(cfg.shards.path)
    torch.manual_seed(cfg.seed + 1)
    model, _ = checkpoint.load_model(init, rt.device)
    model.train()
    model.set_stage(2, finetune_dre=s2.finetune_dre)
    if not model.has_prototypes:
        raise ConfigError(f"{init}: the stage-1 model has no pristine prototypes")
    groups = [{"params": _trainable(model.predictor)}]
    if model.restorer is not None:
        groups.append({"params": _trainable(model.restorer)})
    if s2.finetune_dre:
        groups.append({"params": _trainable(model.dre), "lr": s2.lr * s2.dre_lr_scale})
    objective = ScoreObjective(model, s2.rs_weight if s2.rs else 0.0, s2.rank_weight,
                               s2.content_rank_weight).to(rt.device)
    optimizer = make_optimizer(s2.optimizer, groups, s2.lr, s2.weight_decay)
    scheduler = cosine_schedule(optimizer, s2.steps, s2.warmup)
    data = Stage2Data(cfg, shards, model.config.input_size, rt)
    log = RunLog(folder, enabled=rt.main)
    if rt.main:
        print(f"stage 2 data: {data.describe}", file=sys.stderr)

    best_eval: dict[str, Any] = {}

    def evaluate(state: LoopState) -> None:
        if rt.main:
            scores, predictions, labels = evaluate_held_out(model, data, rt.device)
            if scores:
                log.log(state.step, **{f"val_{k}": v for k, v in scores.items()})
                value = scores["srcc"] + scores["plcc"]
                if math.isfinite(value) and value > state.best:
                    state.best = value
                    checkpoint.save_inference(folder / "best.pt", model, cfg.model.name, cfg.model.overrides,
                                              trained_on=data.describe, step=state.step, metrics=scores)
                    best_eval.update(scores=scores, predictions=predictions, labels=labels)
        barrier(rt)

    state = run_loop(folder, objective, optimizer, scheduler, data.train_batches, s2.steps, cfg, rt, resume, log,
                     unit="image", evaluate=evaluate, eval_every=s2.eval_every)
    result: dict[str, Any] = {"steps": state.step, "data": data.describe, "checksums_agree": parameters_agree(model, rt)}
    if rt.main:
        best = folder / "best.pt" if (folder / "best.pt").is_file() else None
        if best is None:
            checkpoint.save_inference(folder / "best.pt", model, cfg.model.name, cfg.model.overrides,
                                      trained_on=data.describe, step=state.step)
            best = folder / "best.pt"
        final, info = checkpoint.load_model(best, rt.device)
        if best_eval:  # the best model was scored when it was saved
            scores, predictions, labels = best_eval["scores"], best_eval["predictions"], best_eval["labels"]
        else:
            scores, predictions, labels = evaluate_held_out(final, data, rt.device)
        quality = [float(label["quality"]) for label in labels]
        if quality:
            scatter(predictions, quality, folder / "scatter.png",
                    f"held-out: SRCC {scores.get('srcc', float('nan')):.3f}, PLCC {scores.get('plcc', float('nan')):.3f}",
                    ylabel="normalised MOS" if s2.data != "pseudo" else "pseudo-MOS (SSIM/PSNR)")
        log.plot_losses(["loss", "loss_mos", "loss_rs"], title="stage 2 losses")
        log.plot_losses(["val_srcc", "val_plcc"], name="validation.png", title="held-out SRCC / PLCC")
        result.update(best=str(best), best_step=info.get("step"), sha256=info["sha256"], held_out=scores,
                      held_out_images=len(quality))
    log.close()
    return result


def train(cfg: TrainConfig, stage: str = "all", resume: bool = False) -> dict[str, Any]:
    """Run stage 1, stage 2 or both; returns what each stage produced (on rank 0: paths and metrics)."""
    if stage not in ("1", "2", "all"):
        raise ConfigError(f"stage must be 1, 2 or all, got {stage!r}")
    rt = setup_runtime(cfg.device)
    run = Path(cfg.out)
    try:
        existing = [p for p in (run / "stage1" / "last.pt", run / "stage2" / "last.pt") if p.is_file()]
        if existing and not resume:  # checked on every rank, so all of them stop
            raise ConfigError(f"{run} already has training checkpoints ({existing[0]}); pass --resume to continue, "
                              "or choose another --out")
        if rt.main:
            run.mkdir(parents=True, exist_ok=True)
            save(cfg, run / "config.yaml")
        barrier(rt)
        results: dict[str, Any] = {"world_size": rt.world, "device": str(rt.device)}
        if stage in ("1", "all"):
            results["stage1"] = train_stage1(cfg, rt, resume)
        if stage in ("2", "all"):
            results["stage2"] = train_stage2(cfg, rt, resume)
        if rt.main:
            (run / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        return results
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
