"""degrade: a batched, replayable image degradation engine on PyTorch and Kornia.

The 25 KADID-10k distortion types at 5 levels and more, per-sample parameters, every random
draw recorded in a JSON plan and replayable bit for bit on the same device.
"""
from . import catalogue as _catalogue  # noqa: F401  (registers the distortions)
from .engine import apply, apply_plans, quantize_8bit
from .modules import RandomDegradation
from .pairs import POLICIES, GroupPlans, sample_groups
from .plan import Plan, Step
from .registry import GROUPS, Distortion, info, list_distortions
from .sampling import PRESETS, Preset, sample_plans

__version__ = "0.1.0"

__all__ = [
    "GROUPS",
    "POLICIES",
    "PRESETS",
    "Distortion",
    "GroupPlans",
    "Plan",
    "Preset",
    "RandomDegradation",
    "Step",
    "apply",
    "apply_plans",
    "info",
    "list_distortions",
    "quantize_8bit",
    "sample_groups",
    "sample_plans",
]
