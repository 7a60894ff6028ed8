"""Calibration values of the engine: every distortion at levels 1..5 on two fixed photo crops.

``python -m tests.degrade.calibration`` recomputes them into ``calibration.json`` (do this, and raise
``degrade.ENGINE_VERSION``, only when an op's output changes on purpose); ``test_calibration.py``
checks the engine against the stored values, as pyiqa checks its metrics against stored scores.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

FILE = Path(__file__).with_name("calibration.json")
PHOTOS = ("coffee", "astronaut")
SIZE = 48


def inputs() -> torch.Tensor:
    from tests.conftest import photo

    return torch.stack([(photo(name, SIZE) * 255).round() / 255 for name in PHOTOS])


def values() -> dict[str, list[list[float]]]:
    """PSNR (dB, against the input) of each distortion at levels 1..5, per photo."""
    import degrade
    from degrade.plan import Plan
    from degrade.sampling import at_level, make_step
    from degrade.seeding import generator

    x = inputs()
    out = {}
    for name in degrade.list_distortions():
        first = make_step(name, 1, generator("calibration", name))
        rows = []
        for level in range(1, 6):
            plan = Plan((at_level(first, level),))
            with torch.no_grad():
                y = degrade.apply_plans(x, [plan] * len(PHOTOS), quantize=True)
            mse = ((y - x) ** 2).flatten(1).mean(1).double()
            rows.append([round(99.0 if m == 0 else min(99.0, -10 * math.log10(float(m))), 4) for m in mse])
        out[name] = rows
    return out


def main() -> int:
    import degrade

    FILE.write_text(json.dumps({"engine": degrade.ENGINE_VERSION, "psnr": values()}, indent=1) + "\n")
    print(f"wrote {FILE} for engine version {degrade.ENGINE_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
