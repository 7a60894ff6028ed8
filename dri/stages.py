"""The two stages of DRI-IQA training, from a config: what data, which model, which objective.

Stage 1 trains DRE-Net contrastively on group shards, with positives from the recorded
relations; its end stores the pristine prototypes of the RS loss in the model. Stage 2 trains the
score predictor and the restoration network on labelled data (``datasets.labelled``), DRE-Net
frozen by default, and keeps the checkpoint with the best held-out SRCC + PLCC. The head stage fits
the linear quality head (``score_head: linear``) of the stage-2 model to the same kind of labels, on
shards of content the network did not train on.
"""
from __future__ import annotations

import math
import subprocess
import sys
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from datasets.labelled import LabelledSource, SplitRule, open_labelled, source_class
from datasets.shardformat import BuildSpec, list_shards, manifest_path, read_manifest
from datasets.shards import GroupShards, loader

from . import checkpoint, metrics
from .config import ConfigError, TrainConfig, to_dict
from .inference import image_features, score_batches
from .loop import LoopState, Schedule, cosine_schedule, make_optimizer, run_loop
from .models import DRIIQA, create_model
from .objectives import ContrastiveObjective, ScoreObjective
from .runlog import RunLog, scatter
from .runtime import Runtime, any_rank, barrier, parameters_agree


def ensure_shards(cfg: TrainConfig, rt: Runtime) -> Path:
    """The group shards, built with ``python -m pipelines.build_shards`` when missing (rank 0)."""
    section = cfg.shards
    path = Path(section.path)
    if not manifest_path(path).is_file() and not section.build_if_missing:
        raise ConfigError(f"{path}: no shards (no {manifest_path(path)}); build them with python -m pipelines.build_shards")
    failed = False
    if rt.main and not manifest_path(path).is_file():
        command = [sys.executable, "-m", "pipelines.build_shards", "--out", str(path),
                   *BuildSpec.from_mapping(asdict(section)).to_argv()]
        if section.ray_cpus:
            command += ["--ray-cpus", str(section.ray_cpus)]
        print(f"building group shards: {' '.join(command[1:])}", file=sys.stderr)
        failed = subprocess.run(command).returncode != 0
    if any_rank(failed, rt):  # every rank stops, none waits for a build that will not come
        raise RuntimeError(f"building the shards in {path} failed; see the messages above")
    if not list_shards(path):
        raise ConfigError(f"{path}: no shards found")
    return path


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _schedule(cfg: TrainConfig, steps: int, eval_every: int = 0) -> Schedule:
    return Schedule(steps, cfg.log_every, cfg.checkpoint_every, eval_every)


# --- stage 1 -------------------------------------------------------------------------------------


def stage1_loader(cfg: TrainConfig, shards: Path, rt: Runtime, epoch: int, exact: bool = False):
    s1 = cfg.stage1
    groups = int((read_manifest(shards) or {}).get("groups", 0))
    per_rank = max(1, groups // (s1.groups * rt.world)) if not exact else None
    data = GroupShards(shards, batch_size=s1.groups, patch=s1.patch, policy=s1.policy, seed=cfg.seed,
                       exact=exact, batches_per_epoch=per_rank)
    data.set_epoch(epoch)
    return loader(data, num_workers=cfg.workers)


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
    objective = ContrastiveObjective(model, s1.temperature, s1.queue, s1.restoration_weight,
                                     s1.degradation_weight).to(rt.device)
    optimizer = make_optimizer(s1.optimizer, [{"params": _trainable(objective)}], s1.lr, s1.weight_decay)
    scheduler = cosine_schedule(optimizer, s1.steps, s1.warmup)
    log = RunLog(folder, enabled=rt.main)
    state = run_loop(folder, objective, optimizer, scheduler, lambda e: stage1_loader(cfg, shards, rt, e),
                     _schedule(cfg, s1.steps), rt, resume, log, "group", to_dict(cfg))
    compute_prototypes(model, cfg, shards, rt)
    result: dict[str, Any] = {"steps": state.step, "shards": str(shards)}
    if rt.main:
        result["sha256"] = checkpoint.save_inference(folder / "model.pt", model, cfg.model.name, cfg.model.overrides,
                                                     trained_on=f"stage 1 (contrastive) on {shards}")
        log.plot_losses(["loss", "loss_q", "loss_d", "loss_pixel", "loss_degradation"], title="stage 1 losses")
    log.close()
    result["checksums_agree"] = parameters_agree(model, rt)
    return result


# --- stage 2 -------------------------------------------------------------------------------------


def stage2_data(cfg: TrainConfig, rt: Runtime) -> LabelledSource:
    """The labelled data of stage 2, chosen once from the config."""
    s2 = cfg.stage2
    rule = SplitRule(s2.split_seed, s2.train_fraction, s2.official)
    root = s2.root
    if root is None:
        if not source_class(s2.data).reads_group_shards:
            raise ConfigError(f"stage2.data={s2.data} needs stage2.root: the dataset's folder (for csv: the CSV file; "
                              "for shards: a folder written by pipelines.pack_iqa)")
        root = ensure_shards(cfg, rt)
    try:
        source = open_labelled(s2.data, root, rule=rule, options=s2.options, unit=s2.pseudo_split,
                               teacher=s2.pseudo_teacher, pristine=s2.pseudo_pristine)
        source.check_split(s2.split)
    except ValueError as error:
        raise ConfigError(f"stage2: {error}") from None
    if rt.main:  # e.g. pseudo-labels computed once, not again in every epoch
        source.prepare(workers=max(1, cfg.workers))
    barrier(rt)
    return source


def evaluate_held_out(model: DRIIQA, source: LabelledSource, split: int, batch: int, workers: int,
                      device: torch.device) -> tuple[dict[str, float], list[float], list[dict]]:
    """Every held-out image of ``split`` once, on this process alone (evaluation runs on rank 0)."""
    batches = source.batches("test", split=split, mode="eval", patch=model.config.input_size, batch=batch,
                             workers=workers, distributed=False)
    predictions, labels = score_batches(model, batches, device, progress="held-out")
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
    init_name = checkpoint.read_weights(init)[1].get("model_name")
    if init_name != cfg.model.name:  # checked before the labels are made: they can take minutes
        raise ConfigError(f"{init}: a {init_name} model, but model.name is {cfg.model.name}; set "
                          f"--model.name {init_name} or point --stage2.init at a {cfg.model.name} model")
    source = stage2_data(cfg, rt)
    torch.manual_seed(cfg.seed + 1)
    model, info = checkpoint.load_model(init, rt.device, cfg.model.overrides)
    overrides = info["model_overrides"]  # the init's own, with model.overrides on top: what trains and is saved
    saved = to_dict(cfg)  # last.pt's config: the model it rebuilds is the one that trains
    saved["model"]["overrides"] = dict(overrides)
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
    log = RunLog(folder, enabled=rt.main)
    size = model.config.input_size
    if rt.main:
        print(f"stage 2 data: {source.describe()}", file=sys.stderr)

    def train_batches(epoch: int):
        return source.batches("train", split=s2.split, mode="train", patch=size, batch=s2.batch, workers=cfg.workers,
                              epoch=epoch, seed=cfg.seed, flip=s2.flip)

    def held_out(m: DRIIQA):
        return evaluate_held_out(m, source, s2.split, s2.batch, cfg.workers, rt.device)

    best_eval: dict[str, Any] = {}

    def evaluate(state: LoopState) -> None:
        if rt.main:
            scores, predictions, labels = held_out(model)
            if scores:
                log.log(state.step, **{f"val_{k}": v for k, v in scores.items()})
                value = scores["srcc"] + scores["plcc"]
                if math.isfinite(value) and value > state.best:
                    state.best = value
                    checkpoint.save_inference(folder / "best.pt", model, cfg.model.name, overrides,
                                              trained_on=source.describe(), step=state.step, metrics=scores)
                    best_eval.update(scores=scores, predictions=predictions, labels=labels)
        barrier(rt)

    state = run_loop(folder, objective, optimizer, scheduler, train_batches, _schedule(cfg, s2.steps, s2.eval_every),
                     rt, resume, log, "image", saved, evaluate)
    result: dict[str, Any] = {"steps": state.step, "data": source.describe(), "human_labels": source.human,
                              "checksums_agree": parameters_agree(model, rt)}
    if rt.main:
        best = folder / "best.pt" if (folder / "best.pt").is_file() else None
        if best is None:
            checkpoint.save_inference(folder / "best.pt", model, cfg.model.name, overrides,
                                      trained_on=source.describe(), step=state.step)
            best = folder / "best.pt"
        final, info = checkpoint.load_model(best, rt.device)
        if best_eval:  # the best model was scored when it was saved
            scores, predictions, labels = best_eval["scores"], best_eval["predictions"], best_eval["labels"]
        else:
            scores, predictions, labels = held_out(final)
        quality = [float(label["quality"]) for label in labels]
        if quality:
            scatter(predictions, quality, folder / "scatter.png",
                    f"held-out: SRCC {scores.get('srcc', float('nan')):.3f}, PLCC {scores.get('plcc', float('nan')):.3f}",
                    ylabel="normalised MOS" if source.human else "pseudo-MOS (full-reference teacher)")
        log.plot_losses(["loss", "loss_mos", "loss_rs"], title="stage 2 losses")
        log.plot_losses(["val_srcc", "val_plcc"], name="validation.png", title="held-out SRCC / PLCC")
        result.update(best=str(best), best_step=info.get("step"), sha256=info["sha256"], held_out=scores,
                      held_out_images=len(quality))
    log.close()
    barrier(rt)  # no rank goes on (to the head stage, which reads best.pt) before rank 0 has written it
    return result


# --- the linear quality head -----------------------------------------------------------------------


@torch.no_grad()
def head_features(model: DRIIQA, batches, device: torch.device,
                  limit: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The head's features of up to ``limit`` labelled images, each the mean over its crops with the tone of
    the whole image, as prediction scores them (:func:`dri.inference.image_features`), their labels, and
    the source each comes from (a crop's content id up to its ``@``: the photo)."""
    from datasets.progress import progress

    model.eval()
    features, targets, sources = [], [], []
    with progress(total=limit, unit="img", desc="linear head: features") as bar:
        for batch in batches:
            labels = batch["labels"][: limit - len(sources)]
            features.append(image_features(model, batch["images"][: len(labels)], device).cpu())
            targets.append(torch.tensor([float(label["quality"]) for label in labels]))
            sources += [str(label.get("content", "")).split("@")[0] for label in labels]
            bar.update(len(labels))
            if len(sources) >= limit:
                break
    return torch.cat(features), torch.cat(targets), sources


def fit_head(cfg: TrainConfig, rt: Runtime) -> dict[str, Any]:
    """Fit the linear quality head of a stage-2 model to the pseudo-labels of the training side of the head's
    own shards (rank 0; the others wait), score their held-out side with it and save ``<out>/head/model.pt``."""
    hc, s2 = cfg.head, cfg.stage2
    init = Path(hc.init) if hc.init else Path(cfg.out) / "stage2" / "best.pt"
    if not init.is_file():
        raise ConfigError(f"{init}: no stage-2 model to fit the linear head on; run stage 2 first or point "
                          "--head.init at one")
    init_name = checkpoint.read_weights(init)[1].get("model_name")
    if init_name != cfg.model.name:  # checked on every rank, so all of them stop
        raise ConfigError(f"{init}: a {init_name} model, but model.name is {cfg.model.name}")
    if s2.data != "pseudo":
        raise ConfigError(f"head: fitting the linear head needs pseudo-MOS labels of group shards (stage2.data pseudo), "
                          f"not {s2.data}")
    shards = replace(cfg.shards, path=hc.path, source=hc.source or cfg.shards.source, seed=hc.seed, groups=hc.groups)
    source = stage2_data(replace(cfg, shards=shards, stage2=replace(s2, root=None, pseudo_pristine=hc.pristine)), rt)
    result: dict[str, Any] = {"init": str(init)}
    if rt.main:
        with warnings.catch_warnings():  # a head fitted by an earlier version is replaced here, as it asks
            warnings.filterwarnings("ignore", message=".*its linear head was fitted on")
            model, info = checkpoint.load_model(init, rt.device, {**cfg.model.overrides, "score_head": "linear"})
        size = model.config.input_size
        batches = source.batches("train", split=s2.split, mode="eval", patch=size, batch=hc.batch,
                                 workers=cfg.workers, distributed=False)
        features, targets, sources = head_features(model, batches, rt.device, hc.images)
        fit = model.head.fit(features, targets, groups=sources, kernel=hc.kernel)
        correction = (f"kernel correction: width 1/{1 / fit['gamma']:.3g}, penalty {fit['kernel_alpha']:.3g}"
                      if fit["gamma"] else "no kernel correction (head.kernel false)" if not hc.kernel
                      else "no kernel correction (it does not predict the sources left out 1% better)")
        print(f"linear head: {fit['images']} images, linear penalty {fit['alpha']:.3g}, {correction}; R^2 "
              f"{fit['r2']:.3f} ({fit['unseen']}: {fit['r2_unseen']:.3f}; the linear map alone "
              f"{fit['r2_unseen_linear']:.3f})", file=sys.stderr)
        scores, _, labels = evaluate_held_out(model, source, s2.split, hc.batch, cfg.workers, rt.device)
        path = Path(cfg.out) / "head" / "model.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        trained_on = f"{info.get('trained_on') or init}; linear head fitted to {source.describe()}"
        result.update(fit=fit, held_out=scores, held_out_images=len(labels), model=str(path),
                      sha256=checkpoint.save_inference(path, model, cfg.model.name, info["model_overrides"],
                                                       trained_on=trained_on, step=info.get("step"), metrics=scores,
                                                       head=fit))
    barrier(rt)
    return result
