"""Shared fixtures: the devices and dtypes every op is tested on, and real photographs."""
from __future__ import annotations

import functools
import os

import pytest
import torch
import torch.nn.functional as F

NATURAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default=os.environ.get("DEGRADE_TEST_DEVICE"),
        help="run device-parametrised tests on this device only (default: cpu, plus cuda when present)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--device")
        devices = [chosen] if chosen else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        metafunc.parametrize("device", devices)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


@functools.lru_cache(maxsize=None)
def photo(name: str = "astronaut", size: int = 64) -> torch.Tensor:
    """A built-in photo: central square, area-downscaled to size x size; (3, size, size)."""
    from degrade.samples import load_sample

    image = load_sample(name)
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[:, top : top + side, left : left + side]
    return F.interpolate(square[None], size=(size, size), mode="area")[0].clamp(0, 1)


@pytest.fixture(scope="session")
def photos_256() -> torch.Tensor:
    """The six natural built-in photos at 256 x 256, as one batch."""
    return torch.stack([photo(n, 256) for n in NATURAL_PHOTOS])
