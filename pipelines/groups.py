"""Dual-representation groups: planning them from a seed, and rendering their images.

Both are shared by the builder and the verifier, so a shard can be re-derived exactly:
``plan_group`` is a pure function of (seed, group index, the usable contents), and
``render`` always degrades a shard's groups in the same fixed-size chunks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

import degrade
from datasets.content import Augment, draw_view
from degrade.pairs import GroupPlans, group_plans
from degrade.plan import Plan
from degrade.seeding import derive_seed


@dataclass(frozen=True)
class Content:
    """A usable pristine image: its id, how a worker loads it (its uri, inside the folder ``root``),
    how metadata cites it, its size and part."""

    id: str
    uri: str
    source: str
    height: int
    width: int
    part: int = 0
    root: str | None = None


def group_seed(seed: int, index: int) -> int:
    """The seed of group ``index``: independent of every other group and of the worker count."""
    return derive_seed("group", seed, index)


def _pick(contents: Sequence[Content], weights: Sequence[float], g: torch.Generator, exclude: int | None = None) -> int:
    """A content index: a part by ``weights`` (when there are several), then a content of it."""
    candidates = list(range(len(contents)))
    if len(weights) > 1:
        present = torch.tensor([w if any(c.part == k for c in contents) else 0.0 for k, w in enumerate(weights)],
                               dtype=torch.float64)
        if exclude is not None and sum(c.part == contents[exclude].part for c in contents) == 1:
            present[contents[exclude].part] = 0.0  # the part holds only the other side's content
        part = int(torch.multinomial(present / present.sum(), 1, generator=g))
        candidates = [i for i, c in enumerate(contents) if c.part == part]
    if exclude is not None:
        candidates = [i for i in candidates if i != exclude]
    return candidates[int(torch.randint(len(candidates), (), generator=g))]


def plan_group(index: int, contents: Sequence[Content], *, seed: int, size: int, preset: str, policy: str,
               augment: Augment = Augment(), weights: Sequence[float] = (1.0,)) -> dict:
    """Which contents and views (crops, augmentation) group ``index`` uses, and its three plans (meta.json's core)."""
    if len(contents) < 2:
        raise ValueError(f"a group needs two different contents; only {len(contents)} usable image(s)")
    g = torch.Generator().manual_seed(group_seed(seed, index))
    a = _pick(contents, weights, g)
    b = _pick(contents, weights, g, exclude=a)
    sides = {}
    for name, content in (("a", contents[a]), ("b", contents[b])):
        view = draw_view(content.height, content.width, size, augment, g)
        sides[name] = {"id": content.id, "source": content.source, **view.to_dict()}
    plans = group_plans(preset, policy, g)
    return {"index": index, "seed": group_seed(seed, index), **sides, "policy": policy, "preset": preset,
            "plans": plans.to_dict()}


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
        a, b = refs_a[start : start + batch].to(device), refs_b[start : start + batch].to(device)
        recipes: list[Plan] = [p.x1 for p in chunk] + [p.x2 for p in chunk] + [p.y for p in chunk]
        with torch.no_grad():  # uint8 in, uint8 out (rounded): on the CPU each part of the batch converts its own
            images = degrade.apply_plans(torch.cat([a, a, b]), recipes).cpu()
        for i, part in enumerate(images.split(len(chunk))):
            outs[i].append(part)
    return tuple(torch.cat(parts) for parts in outs)  # type: ignore[return-value]
