"""Augmentation module: draws plans from its own generator, applies them, keeps them for replay."""
from __future__ import annotations

import torch
from torch import nn

from .engine import apply_plans
from .plan import Plan
from .sampling import Preset, get_preset, sample_plan


class RandomDegradation(nn.Module):
    """Degrade each image of a batch by a freshly drawn plan (Kornia-style augmentation).

    Args:
        preset: composition preset name or :class:`Preset` (``Preset.of("jpeg")`` for one type).
        p: probability that an image is degraded at all; the others get an empty plan.
        seed: seed of the module's own generator; its state is part of ``state_dict()``, so a
            resumed training run continues the same sequence of plans.
        quantize: round outputs to 8-bit steps.

    Shape:
        input (B, 3, H, W) or (3, H, W) in [0, 1]; output the same.

    Example:
        >>> aug = RandomDegradation("arniqa", p=0.8, seed=0)
        >>> y = aug(torch.rand(8, 3, 64, 64))
        >>> again = aug.replay(torch.rand(8, 3, 64, 64))  # same recipes on other images
    """

    def __init__(self, preset: str | Preset = "arniqa", p: float = 1.0, seed: int = 0, quantize: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.preset = get_preset(preset)
        self.p = p
        self.quantize = quantize
        self.generator = torch.Generator().manual_seed(seed)
        self.last_plans: list[Plan] | None = None

    def sample(self, n: int) -> list[Plan]:
        """Draw ``n`` plans (gated by ``p``) from the module's generator."""
        plans = []
        for _ in range(n):
            keep = float(torch.rand((), generator=self.generator, dtype=torch.float64)) < self.p
            plans.append(sample_plan(self.preset, self.generator) if keep else Plan())
        return plans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plans = self.sample(x.shape[0] if x.ndim == 4 else 1)
        self.last_plans = plans
        return apply_plans(x, plans if x.ndim == 4 else plans[0], quantize=self.quantize)

    def replay(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the plans of the last call again (to the same or to other images)."""
        if self.last_plans is None:
            raise RuntimeError("nothing to replay: call the module first")
        plans = self.last_plans if x.ndim == 4 else self.last_plans[0]
        return apply_plans(x, plans, quantize=self.quantize)

    def get_extra_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def extra_repr(self) -> str:
        return f"preset={self.preset.name!r}, p={self.p}, quantize={self.quantize}"
