"""The engine against its calibration values, and its CPU fast paths against its torch ops."""
from __future__ import annotations

import json
import math

import pytest
import torch

import degrade
from degrade.plan import Plan
from degrade.sampling import at_level, make_step
from degrade.seeding import generator
from tests.conftest import photo
from tests.degrade.calibration import FILE, values

STORED = json.loads(FILE.read_text())


def test_the_calibration_values_are_this_engine_versions():
    assert STORED["engine"] == degrade.ENGINE_VERSION, (
        "calibration.json was made by another engine version: rerun python -m tests.degrade.calibration")
    assert set(STORED["psnr"]) == set(degrade.list_distortions())


@pytest.fixture(scope="module")
def current() -> dict:
    return values()


@pytest.mark.parametrize("name", degrade.list_distortions())
def test_outputs_match_the_calibration(name, current):
    """An op whose output changed fails here: if the change is meant, raise degrade.ENGINE_VERSION (plans and
    shards record it) and rerun python -m tests.degrade.calibration."""
    for level, (stored, now) in enumerate(zip(STORED["psnr"][name], current[name]), start=1):
        assert now == pytest.approx(stored, abs=0.05), f"{name} level {level}: {now} dB, calibrated {stored} dB"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


@pytest.mark.parametrize("name", degrade.list_distortions())
def test_cpu_fast_paths_agree_with_the_torch_ops(name):
    """On the CPU each op may run OpenCV instead of its batched torch code; the two agree to float rounding."""
    x = torch.stack([photo("coffee", 40), photo("rocket", 40), photo("chelsea", 40)])
    first = make_step(name, 1, generator("agree", name))
    plans = [Plan((at_level(first, level),)) for level in (1, 3, 5)]
    with torch.no_grad():
        fast = degrade.apply_plans(x, plans)
        with degrade.torch_path():
            reference = degrade.apply_plans(x, plans)
    assert _psnr(fast, reference) > 80, name
