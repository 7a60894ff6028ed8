"""Dual-representation groups: planning them from a seed, and rendering their images.

Both are shared by the builder and the verifier, so a shard can be re-derived exactly:
``plan_group`` is a pure function of (seed, group index, the usable contents), and
``render`` always degrades a shard's groups in the same fixed-size chunks.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

import degrade
from degrade.pairs import GroupPlans, group_plans
from degrade.plan import Plan


@dataclass(frozen=True)
class Content:
    """A usable pristine image: its id, where it is, how it is cited in metadata, and its size."""

    id: str
    path: str
    source: str
    height: int
    width: int


def group_seed(seed: int, index: int) -> int:
    """The seed of group ``index``: independent of every other group and of the worker count."""
    digest = hashlib.sha256(f"group:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 11  # < 2**53, exact in JSON


def plan_group(index: int, contents: Sequence[Content], *, seed: int, size: int, preset: str, policy: str) -> dict:
    """Which contents and crops group ``index`` uses, and its three plans (the meta.json core)."""
    if len(contents) < 2:
        raise ValueError(f"a group needs two different contents; only {len(contents)} usable image(s)")
    g = torch.Generator().manual_seed(group_seed(seed, index))
    a = int(torch.randint(len(contents), (), generator=g))
    b = int(torch.randint(len(contents) - 1, (), generator=g))
    b += b >= a
    sides = {}
    for name, content in (("a", contents[a]), ("b", contents[b])):
        top = int(torch.randint(content.height - size + 1, (), generator=g))
        left = int(torch.randint(content.width - size + 1, (), generator=g))
        sides[name] = {"id": content.id, "source": content.source, "box": [top, left, size]}
    plans = group_plans(preset, policy, g)
    return {"index": index, "seed": group_seed(seed, index), **sides, "policy": policy, "preset": preset,
            "plans": plans.to_dict()}


def crop(image: torch.Tensor, box: Sequence[int]) -> torch.Tensor:
    top, left, size = box
    return image[:, top : top + size, left : left + size]


def render(
    refs_a: torch.Tensor, refs_b: torch.Tensor, plans: Sequence[GroupPlans], device: str | torch.device, batch: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Degrade the groups' references into x1, x2 (from A) and y (from B), as uint8.

    Groups go through the engine ``batch`` at a time, in order; each chunk is one engine call
    on [A...; A...; B...], so sub-batches are three times larger than the chunk.

    Args:
        refs_a, refs_b: (G, 3, S, S) uint8 crops.
        plans: the G groups' plans.
        device: where the engine runs.
        batch: groups per engine call (recorded in meta.json; replay uses the same).

    Returns:
        x1, x2, y: (G, 3, S, S) uint8.
    """
    outs: list[list[torch.Tensor]] = [[], [], []]
    for start in range(0, len(plans), batch):
        chunk = plans[start : start + batch]
        a = refs_a[start : start + batch].to(device).float() / 255.0
        b = refs_b[start : start + batch].to(device).float() / 255.0
        recipes: list[Plan] = [p.x1 for p in chunk] + [p.x2 for p in chunk] + [p.y for p in chunk]
        with torch.no_grad():
            images = degrade.apply_plans(torch.cat([a, a, b]), recipes, quantize=True)
        images = (images * 255.0).round().to(torch.uint8).cpu()
        for i, part in enumerate(images.split(len(chunk))):
            outs[i].append(part)
    return tuple(torch.cat(parts) for parts in outs)  # type: ignore[return-value]
