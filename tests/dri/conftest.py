"""Fixtures of the dri tests: one small set of real group shards, and a tiny stage-1 model trained on it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--stage1.steps", "4", "--stage1.groups", "3", "--stage1.patch", "32", "--stage1.warmup", "1",
        "--stage1.prototype_batches", "1", "--stage2.steps", "4", "--stage2.batch", "4", "--stage2.eval_every", "2",
        "--stage2.warmup", "1", "--workers", "0", "--log_every", "1", "--checkpoint_every", "2", "--device", "cpu",
        "--head.fit", "false"]


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    """18 groups of 128 px crops of the built-in photos, built by the real command line (Ray)."""
    out = tmp_path_factory.mktemp("groups") / "shards"
    command = [sys.executable, "-m", "pipelines.build_shards", "--out", str(out), "--groups", "18",
               "--per-shard", "6", "--size", "128", "--ray-cpus", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def stage1_model(shards, tmp_path_factory) -> Path:
    """A stage-1 model (4 steps) to start stage-2 runs from."""
    from dri.train import main

    run = tmp_path_factory.mktemp("stage1")
    args = [*FAST, "--shards.path", str(shards), "--out", str(run), "--stage", "1"]
    assert main(args) == 0
    return run / "stage1" / "model.pt"
