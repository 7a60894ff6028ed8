"""degrade: a batched, replayable image degradation engine on PyTorch and Kornia.

The 25 KADID-10k distortion types at 5 levels and more, per-sample parameters, every random
draw recorded in a JSON plan and replayable bit for bit on the same device. Names are imported on
first use (``import degrade`` alone does not load torch).
"""
from __future__ import annotations

import importlib

from ._extras import lazy_exports
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
    "torch_threads": ".ops._cpu",
    "torch_path": ".ops._cpu",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY, first_use=lambda: importlib.import_module(".catalogue", __name__))
