"""The generic training loop: steps over epochs of batches, checkpoints, logging, evaluation, signals.

``run_loop`` knows nothing about what is trained: it takes an objective module, its optimizer and
schedule, and a function that gives the batches of an epoch. It checkpoints ``last.pt`` (objective,
optimizer, scheduler, RNG, every rank's data position) every ``checkpoint_every`` steps and on
SIGTERM/SIGINT; a resumed run continues exactly where the interrupted one stopped.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from datasets.progress import progress

from . import checkpoint
from .runlog import RunLog
from .runtime import Runtime, any_rank, gather_positions


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint."""


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the checkpoint from before it is kept."""


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


def make_optimizer(name: str, groups: list[dict], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, momentum=0.9)
    raise ValueError(f"unknown optimizer {name!r}; choose adam, adamw or sgd")


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress_ = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress_)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    batch: int = 0
    best: float = -math.inf


@dataclass
class Schedule:
    """When the loop does what: ``steps`` in all; log, checkpoint and evaluate every so many steps."""

    steps: int
    log_every: int
    checkpoint_every: int
    eval_every: int = 0


class _Window:
    """Loss terms summed on the device between two log lines; read (one host sync) only when logged."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = self.items = 0
        self.start = time.perf_counter()

    def add(self, loss: torch.Tensor, parts: dict[str, torch.Tensor], items: int) -> None:
        for key, value in {"loss": loss.detach(), **parts}.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.steps += 1
        self.items += items

    def finite(self) -> bool:
        """Whether every loss since the last log line was finite (one host sync)."""
        return not self.sums or bool(torch.isfinite(self.sums["loss"]).all())

    def read(self) -> tuple[dict[str, float], float]:
        means = {k: float(v) / self.steps for k, v in self.sums.items()}
        return means, self.items / max(1e-9, time.perf_counter() - self.start)


def clean_temporaries(folder: Path) -> None:
    """Drop checkpoint temporaries a killed save left behind (they are never read)."""
    for path in folder.glob("*.pt.*.tmp"):
        path.unlink(missing_ok=True)


def run_loop(folder: Path, objective: nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler, batches_for_epoch: Callable[[int], Iterable[dict]],
             schedule: Schedule, rt: Runtime, resume: bool, log: RunLog, unit: str, config: dict[str, Any],
             evaluate: Callable[[LoopState], None] | None = None) -> LoopState:
    """Train ``objective`` for ``schedule.steps`` steps; checkpoint, log, evaluate and stop on signals."""
    state = LoopState()
    last = folder / "last.pt"
    if rt.main:
        clean_temporaries(folder)
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
        log.truncate_after(state.step)  # steps after the checkpoint will be logged again
        if rt.main:
            print(f"resuming {folder.name} at step {state.step} (epoch {state.epoch}, batch {state.batch})",
                  file=sys.stderr)
    step_module = DistributedDataParallel(objective) if rt.distributed else objective
    saved_step = state.step if resume and last.is_file() else None  # the step last.pt holds

    def save_last() -> None:
        nonlocal saved_step
        positions = gather_positions([state.epoch, state.batch], rt)  # collective: every rank joins
        saved_step = state.step
        if rt.main:
            checkpoint.save(last, {"objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "rng": checkpoint.rng_state(),
                                   "loop": asdict(state), "positions": positions, "config": config})

    objective.train()
    bar = progress(total=schedule.steps, initial=state.step, unit="step", desc=folder.name, disable=not rt.main)
    window = _Window()
    with StopRequest() as stop:
        while state.step < schedule.steps:
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
                window.add(loss, parts, len(batch["keys"]) * rt.world)
                logging = state.step % schedule.log_every == 0 or state.step == schedule.steps
                saving = state.step % schedule.checkpoint_every == 0 or state.step == schedule.steps
                if (logging or saving) and any_rank(not window.finite(), rt):
                    bar.close()
                    kept = "none saved yet" if saved_step is None else f"{last} (step {saved_step})"
                    raise Diverged(f"{folder.name}: the loss became NaN or infinite by step {state.step}; nothing "
                                   f"after it was saved. Last checkpoint: {kept}. Lower the learning rate, or look "
                                   "for a setting that divides by zero, then rerun (--resume continues from it)")
                if logging:
                    means, rate = window.read()
                    log.log(state.step, lr=scheduler.get_last_lr()[0], **{f"{unit}s_per_s": rate}, **means)
                    bar.set_postfix(loss=f"{means['loss']:.4f}", **{f"{unit}/s": f"{rate:.1f}"})
                    window = _Window()
                bar.update(1)
                if evaluate is not None and schedule.eval_every and (
                        state.step % schedule.eval_every == 0 or state.step == schedule.steps):
                    evaluate(state)
                    objective.train()
                if saving:
                    save_last()
                if any_rank(stop.requested, rt):
                    save_last()
                    bar.close()
                    raise Interrupted(f"stopped at step {state.step} of {folder.name}; checkpoint {last}; rerun with "
                                      "--resume to continue")
                if state.step >= schedule.steps:
                    break
            else:
                if not yielded and state.batch == 0:
                    raise RuntimeError(f"{folder.name}: the training data yielded no batch; it may be smaller than "
                                       "one batch (lower the batch size) or its split side may be empty")
                state.epoch, state.batch = state.epoch + 1, 0
    bar.close()
    return state
