"""degrade: a batched, replayable image degradation engine on PyTorch and Kornia.

The 25 KADID-10k distortion types at 5 levels and more, per-sample parameters, every random
draw recorded in a JSON plan and replayable bit for bit on the same device. Names are imported on
first use (``import degrade`` alone does not load torch).
"""
from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_LAZY = {
    "apply": ".engine",
    "apply_plans": ".engine",
    "quantize_8bit": ".engine",
    "ENGINE_VERSION": "._version",
    "RandomDegradation": ".modules",
    "POLICIES": ".pairs",
    "GroupPlans": ".pairs",
    "sample_groups": ".pairs",
    "Plan": ".plan",
    "Step": ".plan",
    "GROUPS": ".registry",
    "Distortion": ".registry",
    "info": ".registry",
    "list_distortions": ".registry",
    "PRESETS": ".sampling",
    "Preset": ".sampling",
    "sample_plans": ".sampling",
    "set_threads": ".ops._cpu",
    "torch_path": ".ops._cpu",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        importlib.import_module(".catalogue", __name__)  # registers the distortions
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'degrade' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
