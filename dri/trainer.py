"""Two-stage DRI-IQA training (``python -m dri.train`` is a thin CLI over :func:`train`).

The parts live apart: ``dri.runtime`` (device, DDP), ``dri.objectives`` (what each stage
minimises), ``dri.loop`` (the generic loop: checkpoints, resume, logging, signals) and
``dri.stages`` (data and model of each stage). Under torchrun every rank trains on its own share
of the data (DDP, gloo on CPU, nccl on GPU); rank 0 alone writes files.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .config import STAGES, ConfigError, TrainConfig, save
from .loop import Diverged, Interrupted
from .runtime import barrier, setup_runtime, shutdown
from .stages import fit_head, train_stage1, train_stage2

__all__ = ["Diverged", "Interrupted", "train"]


def train(cfg: TrainConfig, stage: str = "all", resume: bool = False) -> dict[str, Any]:
    """Run stage 1, stage 2, the linear head's fit, or all of them (the head where ``cfg.head.fit`` and stage 2
    learnt pseudo-MOS); returns what each produced (on rank 0: paths and metrics)."""
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    try:
        rt = setup_runtime(cfg.device)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    run = Path(cfg.out)
    try:
        existing = [p for p in (run / "stage1" / "last.pt", run / "stage2" / "last.pt") if p.is_file()]
        # checked on every rank, so all of them stop; fitting the head trains nothing and may follow any run
        if existing and not resume and stage != "head":
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
        if stage == "head" or (stage == "all" and cfg.head.fit and cfg.stage2.data == "pseudo"):
            results["head"] = fit_head(cfg, rt)
        elif stage == "all" and cfg.head.fit and rt.main:
            print(f"linear head: not fitted: it learns the pseudo-MOS of group shards, and stage 2 read "
                  f"{cfg.stage2.data} (pass --head.fit false to skip it without this note)", file=sys.stderr)
        if rt.main:  # what earlier commands on this run produced stays, what this one redid is replaced
            path = run / "results.json"
            try:
                earlier = json.loads(path.read_text()) if path.is_file() else {}
            except ValueError:  # cut short by a crash: this command's results replace it
                earlier = {}
            path.write_text(json.dumps({**earlier, **results}, indent=1, default=str) + "\n")
        return results
    finally:
        shutdown()
