"""Contract tests run for every registered distortion: a new entry is covered without a new test."""
from __future__ import annotations

import json
import math

import pytest
import torch

import degrade
from degrade.plan import Plan
from degrade.registry import GROUPS
from degrade.sampling import at_level, make_step
from tests.conftest import NATURAL_PHOTOS, photo

ALL = degrade.list_distortions()

# Transcribed from the KADID-10k generator's level table (level 1 .. 5), by KADID index.
KADID_LEVELS = {
    "gaussian_blur": (1, (0.1, 0.5, 1, 2, 5)),
    "lens_blur": (2, (1, 2, 4, 6, 8)),
    "motion_blur": (3, (1, 2, 4, 6, 10)),
    "color_diffusion": (4, (1, 3, 6, 8, 12)),
    "color_shift": (5, (1, 3, 6, 8, 12)),
    "color_quantization": (6, (64, 48, 32, 16, 8)),
    "color_saturation_hsv": (7, (0.4, 0.2, 0.1, 0, -0.4)),
    "color_saturation_lab": (8, (1, 2, 3, 6, 9)),
    "jpeg2000": (9, (16, 32, 45, 120, 400)),
    "jpeg": (10, (43, 36, 24, 7, 4)),
    "white_noise": (11, (0.001, 0.002, 0.003, 0.005, 0.01)),
    "white_noise_cc": (12, (0.0001, 0.0005, 0.001, 0.002, 0.003)),
    "impulse_noise": (13, (0.001, 0.005, 0.01, 0.02, 0.03)),
    "multiplicative_noise": (14, (0.001, 0.005, 0.01, 0.02, 0.05)),
    "denoise": (15, (0.01, 0.03, 0.05, 0.1, 0.15)),
    "brighten": (16, (0.1, 0.2, 0.4, 0.7, 1.1)),
    "darken": (17, (0.05, 0.1, 0.2, 0.4, 0.8)),
    "mean_shift": (18, (0.15, 0.08, 0, -0.08, -0.15)),
    "jitter": (19, (0.05, 0.1, 0.2, 0.5, 1)),
    "non_eccentricity_patch": (20, (20, 40, 60, 80, 100)),
    "pixelate": (21, (0.01, 0.05, 0.1, 0.2, 0.5)),
    "quantization": (22, (20, 16, 13, 10, 7)),
    "color_block": (23, (2, 4, 6, 8, 10)),
    "high_sharpen": (24, (1, 2, 3, 6, 12)),
    "contrast_change": (25, (0.3, 0.15, 0, -0.4, -0.6)),
}


def plans_for(name: str, levels, seed: int = 0) -> list[Plan]:
    g = torch.Generator().manual_seed(seed)
    return [Plan((make_step(name, lv, g),)) for lv in levels]


def test_catalogue_has_kadid_and_extras():
    kadid = [n for n in ALL if degrade.info(n).kadid is not None]
    assert sorted(kadid) == sorted(KADID_LEVELS)
    assert len(ALL) - len(kadid) >= 7  # ARNIQA's contrast compression + six real-world distortions


@pytest.mark.parametrize("name", sorted(KADID_LEVELS))
def test_kadid_level_values(name):
    index, levels = KADID_LEVELS[name]
    d = degrade.info(name)
    assert d.kadid == index
    assert d.table("kadid-exact") == pytest.approx(levels)


@pytest.mark.parametrize("name", ALL)
def test_info_is_complete(name):
    d = degrade.info(name)
    assert d.group in GROUPS and d.parameter and d.description
    assert len(d.levels) == 5 and set(d.devices) <= {"cpu", "cuda"}
    assert d.value(1) == pytest.approx(d.levels[0]) and d.value(5) == pytest.approx(d.levels[4])


@pytest.mark.parametrize("name", ALL)
def test_continuous_levels_interpolate(name):
    d = degrade.info(name)
    mid = d.value(2.5)
    expected = (d.levels[1] + d.levels[2]) / 2
    assert mid == (round(expected) if d.integer else pytest.approx(expected))


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_range_on_odd_sizes(name, device, dtype):
    x = photo("coffee", 64)[:, :37, :53].to(device, dtype)
    x = torch.stack([x, x.flip(-1)])
    y = degrade.apply(x, name, torch.tensor([1.0, 4.5]))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", ALL)
def test_single_image_and_batch_of_one(name, device):
    x = photo("chelsea", 48).to(device)
    single = degrade.apply(x, name, 3)
    batch = degrade.apply(x[None], name, 3)
    assert single.shape == x.shape
    assert torch.equal(single, batch[0])


@pytest.mark.parametrize("name", ALL)
def test_replay_is_bit_exact(name, device):
    x = torch.stack([photo("astronaut", 48), photo("rocket", 48)]).to(device)
    plans = plans_for(name, [2, 5], seed=11)
    assert torch.equal(degrade.apply_plans(x, plans), degrade.apply_plans(x, plans))


@pytest.mark.parametrize("name", ALL)
def test_json_round_trip_replays(name, device):
    x = photo("astronaut", 48).to(device)
    plan = plans_for(name, [3.7], seed=5)[0]
    restored = Plan.from_json(json.dumps(json.loads(plan.to_json())))
    assert restored == plan
    assert torch.equal(degrade.apply_plans(x, restored), degrade.apply_plans(x, plan))


@pytest.mark.parametrize("name", ALL)
def test_result_does_not_depend_on_the_rest_of_the_batch(name, device):
    """Per-sample levels in one batch equal one-at-a-time application, and one plan on two
    different images gives each the result it gets alone (same parameters, same noise seed)."""
    images = [photo(n, 48).to(device) for n in ("astronaut", "coffee", "rocket")]
    plans = plans_for(name, [1, 2.5, 5], seed=3)
    together = degrade.apply_plans(torch.stack(images), plans)
    for i, (image, plan) in enumerate(zip(images, plans)):
        alone = degrade.apply_plans(image, plan)
        torch.testing.assert_close(together[i], alone, atol=1e-5, rtol=0)
    shared = [plans[1]] * 3
    same_plan = degrade.apply_plans(torch.stack(images), shared)
    for i, image in enumerate(images):
        torch.testing.assert_close(same_plan[i], degrade.apply_plans(image, plans[1]), atol=1e-5, rtol=0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp(min=1e-20))


@pytest.mark.parametrize("name", ALL)
def test_severity_increases_with_level_on_real_photos(name, photos_256):
    """PSNR against the clean photo falls strictly from level 1 to 5 on each natural photo.

    The levels share their random draws and seed, so only severity differs between them.
    """
    first = make_step(name, 1, torch.Generator().manual_seed(0))
    quality = []
    for level in range(1, 6):
        plan = Plan((at_level(first, level),))
        out = degrade.apply_plans(photos_256, [plan] * len(NATURAL_PHOTOS))
        quality.append(psnr(out, photos_256))
    quality = torch.stack(quality, 1)
    for photo_name, row in zip(NATURAL_PHOTOS, quality):
        assert (row[1:] < row[:-1]).all(), f"{name} on {photo_name}: PSNR by level {row.tolist()}"


@pytest.mark.parametrize("name", [n for n in ALL if degrade.info(n).differentiable])
def test_differentiable_distortions_pass_gradients(name):
    x = photo("coffee", 96).clone().double().requires_grad_(True)
    y = degrade.apply(x, name, 4)
    y.sum().backward()
    assert x.grad is not None
    assert bool(torch.isfinite(x.grad).all()), "non-finite gradient"
    assert float(x.grad.abs().sum()) > 0, "no gradient reaches the input"


def test_kadid_exact_and_arniqa_tables_differ_only_where_sources_do():
    differing = {
        n for n in ALL
        if degrade.info(n).table("kadid-exact") != degrade.info(n).levels
        or degrade.info(n).table("arniqa") != degrade.info(n).levels
    }
    assert differing == {"mean_shift", "contrast_change", "jpeg2000"}
    assert degrade.info("jpeg2000").table("arniqa")[-1] == 170
    assert not math.isclose(degrade.info("jpeg2000").levels[-1], 170)
