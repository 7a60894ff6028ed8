"""Seeds derived from names: the one place where text becomes a random seed."""
from __future__ import annotations

import hashlib

import torch

SEED_BITS = 53  # seeds stay exact in JSON readers that parse numbers as doubles


def derive_seed(*parts: object) -> int:
    """A seed in [0, 2**53) from any parts (numbers, names), the same on every machine and version.

    ``derive_seed("group", seed, index)`` is independent of ``derive_seed("group", seed, index + 1)``
    and of everything else: a stable way to give each item of a run its own random stream.
    """
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - SEED_BITS)


def generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded by :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))
