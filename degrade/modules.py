"""Augmentation module: draws plans, applies them, keeps them for replay.

Where the randomness comes from, the way torch's own random transforms do it:

* ``seed=None`` (default): every call draws its plans from a seed taken from torch's global
  random state. Inside a DataLoader, torch seeds each worker differently in every epoch
  (``base_seed + worker_id``, with ``base_seed`` drawn in the main process), so the draws differ per
  worker and per epoch and are reproducible from ``torch.manual_seed`` in the main process.
* ``seed=S``: a private stream. In the main process it starts at ``S``; in a DataLoader worker it
  starts at a seed derived from ``S`` and that worker's torch seed, so workers and epochs still
  differ, and the same ``torch.manual_seed`` (or DataLoader ``generator``) gives the same draws.
  Its state is part of ``state_dict()``, so a resumed run continues the sequence.

Works under the fork, spawn and forkserver start methods: the module pickles without its
generator state's process, and a copy in a new process starts its own stream.
"""
from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.data import get_worker_info

from .engine import apply_plans
from .plan import Plan
from .sampling import Preset, get_preset, sample_plan
from .seeding import derive_seed


def _context() -> tuple[int, int | None]:
    """(process id, this DataLoader worker's torch seed, or None in the main process)."""
    info = get_worker_info()
    return os.getpid(), (None if info is None else int(info.seed))


class RandomDegradation(nn.Module):
    """Degrade each image of a batch by a freshly drawn plan (Kornia-style augmentation).

    Args:
        preset: composition preset name or :class:`Preset` (``Preset.of("jpeg")`` for one type).
        p: probability that an image is degraded at all; the others get an empty plan.
        seed: None to follow torch's global random state, or a seed of a private stream (see the
            module docstring for how either behaves in DataLoader workers).
        quantize: round outputs to 8-bit steps.

    Shape:
        input (B, 3, H, W) or (3, H, W): float in [0, 1], uint8, or a PIL image; output the same
        type and shape.

    Example:
        >>> aug = RandomDegradation("arniqa", p=0.8)
        >>> y = aug(torch.rand(8, 3, 64, 64))
        >>> again = aug.replay(torch.rand(8, 3, 64, 64))  # same recipes on other images
    """

    def __init__(self, preset: str | Preset = "arniqa", p: float = 1.0, seed: int | None = None,
                 quantize: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        self.preset = get_preset(preset)
        self.p, self.seed, self.quantize = p, seed, quantize
        self.last_plans: list[Plan] | None = None
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int | None] | None = None

    def _stream(self) -> torch.Generator:
        """The generator of this call: fresh from torch's global state, or the private stream of this process."""
        if self.seed is None:
            return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
        context = _context()
        if self._generator is None or self._owner != context:
            start = self.seed if context[1] is None else derive_seed("worker", self.seed, context[1])
            self._generator, self._owner = torch.Generator().manual_seed(start), context
        return self._generator

    def sample(self, n: int) -> list[Plan]:
        """Draw ``n`` plans (gated by ``p``)."""
        g = self._stream()
        plans = []
        for _ in range(n):
            keep = float(torch.rand((), generator=g, dtype=torch.float64)) < self.p
            plans.append(sample_plan(self.preset, g) if keep else Plan())
        return plans

    @staticmethod
    def _count(x) -> tuple[int, bool]:
        if isinstance(x, torch.Tensor) and x.ndim == 4:
            return x.shape[0], False
        return 1, True

    def forward(self, x):
        n, single = self._count(x)
        plans = self.sample(n)
        self.last_plans = plans
        return apply_plans(x, plans[0] if single else plans, quantize=self.quantize)

    def replay(self, x):
        """Apply the plans of the last call again (to the same or to other images)."""
        if self.last_plans is None:
            raise RuntimeError("nothing to replay: call the module first")
        _, single = self._count(x)
        return apply_plans(x, self.last_plans[0] if single else self.last_plans, quantize=self.quantize)

    def get_extra_state(self) -> torch.Tensor:
        return self._stream().get_state() if self.seed is not None else torch.zeros(0, dtype=torch.uint8)

    def set_extra_state(self, state: torch.Tensor) -> None:
        if self.seed is not None and state.numel():
            self._stream().set_state(state)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if state.get("_generator") is not None:  # a generator cannot cross processes: keep its state
            state["_generator_state"] = state["_generator"].get_state()
        state["_generator"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        saved = state.pop("_generator_state", None)
        super().__setstate__(state)
        if saved is not None and self._owner == _context():  # same process (a deepcopy): same stream
            self._generator = torch.Generator()
            self._generator.set_state(saved)

    def extra_repr(self) -> str:
        return f"preset={self.preset.name!r}, p={self.p}, seed={self.seed}, quantize={self.quantize}"
