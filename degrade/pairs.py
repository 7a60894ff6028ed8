"""Plans for the dual-representation groups of DRI-IQA training: x1, x2 of content A and y of content B.

A policy says how the three plans relate (see the SPEC's sampling table):

* ``dri`` (default): x2 has x1's distortion types in the same order at different levels
  (same parameters otherwise: random draws and noise seeds are kept); y is independent.
* ``qpt``: x2 is an independent recipe of other types (a negative for both halves); y independent.
* ``arniqa``: y is content B under x1's identical recipe (a degradation-positive); x2 independent.

Pure functions of a generator and plans; no images involved.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .plan import Plan
from .sampling import Preset, _generator, at_level, draw_level, get_preset, sample_plan


@dataclass(frozen=True)
class GroupPlans:
    """The three plans of one group and the policy that related them."""

    x1: Plan
    x2: Plan
    y: Plan
    policy: str

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "x1": self.x1.to_dict(), "x2": self.x2.to_dict(), "y": self.y.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroupPlans:
        return cls(Plan.from_dict(d["x1"]), Plan.from_dict(d["x2"]), Plan.from_dict(d["y"]), d["policy"])


def vary_levels(plan: Plan, preset: str | Preset, generator: torch.Generator) -> Plan:
    """The same distortion types in the same order, every step at a different level.

    Random draws (angles, directions) and noise seeds are kept, so only severity changes.
    """
    preset = get_preset(preset)
    return Plan(tuple(at_level(s, draw_level(preset, generator, exclude=s.level), preset.table) for s in plan.steps))


def _distorted(preset: Preset, generator: torch.Generator) -> Plan:
    return sample_plan(preset, generator, allow_pristine=False)


def _dri_plans(preset: Preset, g: torch.Generator) -> tuple[Plan, Plan, Plan]:
    x1 = _distorted(preset, g)
    return x1, vary_levels(x1, preset, g), sample_plan(preset, g)


def _qpt_plans(preset: Preset, g: torch.Generator) -> tuple[Plan, Plan, Plan]:
    x1 = _distorted(preset, g)
    x2 = _distorted(preset, g)
    while x2.names == x1.names:
        x2 = _distorted(preset, g)
    return x1, x2, sample_plan(preset, g)


def _arniqa_plans(preset: Preset, g: torch.Generator) -> tuple[Plan, Plan, Plan]:
    x1 = _distorted(preset, g)
    x2 = _distorted(preset, g)
    while x2 == x1:
        x2 = _distorted(preset, g)
    return x1, x2, x1


@dataclass(frozen=True)
class Policy:
    """One sampling policy: how a group's three plans are drawn, and which patches it calls
    degradation-positive (the quality half is the same for every policy: the same image).

    Attributes:
        plans: ``(preset, generator) -> (x1, x2, y)``.
        degradation: ``(same_image, same_recipe, same_types) -> mask``, boolean (N, N) tensors.
    """

    name: str
    description: str
    plans: Callable[[Preset, torch.Generator], tuple[Plan, Plan, Plan]]
    degradation: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


POLICIES: dict[str, Policy] = {p.name: p for p in (
    Policy("dri", "x2 = x1's types in order at other levels; degradation-positive: the same types in order",
           _dri_plans, lambda image, recipe, types: types),
    Policy("qpt", "x2 of other types; degradation-positive: the same image only",
           _qpt_plans, lambda image, recipe, types: image.clone()),
    Policy("arniqa", "y = x1's identical recipe on other content; degradation-positive: the identical recipe",
           _arniqa_plans, lambda image, recipe, types: recipe),
)}


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose from {sorted(POLICIES)}")
    return POLICIES[name]


def group_plans(preset: str | Preset, policy: str, generator: torch.Generator) -> GroupPlans:
    """Draw the plans of one group."""
    x1, x2, y = get_policy(policy).plans(get_preset(preset), generator)
    return GroupPlans(x1, x2, y, policy)


def sample_groups(
    n: int,
    preset: str | Preset = "arniqa",
    policy: str = "dri",
    generator: torch.Generator | None = None,
    *,
    seed: int | None = None,
) -> list[GroupPlans]:
    """Draw the plans of ``n`` groups from one generator (or a seed; default 0)."""
    generator = _generator(generator, seed)
    return [group_plans(preset, policy, generator) for _ in range(n)]


def relation(a: Plan, b: Plan) -> str:
    """How two recipes relate, from the strongest match down.

    Returns:
        ``"identical"`` (same steps, parameters and seeds), ``"same_levels"`` (same types,
        order and levels), ``"same_types"`` (same types in the same order) or ``"different"``.
    """
    if a == b:
        return "identical"
    if a.names != b.names:
        return "different"
    return "same_levels" if a.levels == b.levels else "same_types"


def relation_masks(contents: Sequence[str], plans: Sequence[Plan], policy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive-pair masks for the quality and the degradation halves, from recorded metadata only.

    Args:
        contents: for each patch, the id of the clean content it was cut from (source image
            and crop); patches of one image share it.
        plans: for each patch, the plan of the image it was cut from.
        policy: ``dri``, ``qpt`` or ``arniqa`` (see the module docstring).

    Returns:
        ``(quality, degradation)``: boolean (N, N) masks, ``[i, j]`` true when patch j is a
        positive for anchor i; the diagonal is false. Two patches are quality-positive when they
        come from the same image (same content, identical plan) under every policy. They are
        degradation-positive when the image is the same (``qpt``), when the recipes are
        identical whatever the content (``arniqa``), or when the distortion types match in order
        whatever the levels and content (``dri``).

    Example:
        >>> q, d = relation_masks(["a", "a", "b"], [p1, p1, p2], "dri")
    """
    rule = get_policy(policy)
    if len(contents) != len(plans):
        raise ValueError(f"{len(contents)} content ids but {len(plans)} plans")
    n = len(plans)
    content_ids = {c: i for i, c in enumerate(dict.fromkeys(contents))}
    recipe_ids = {p: i for i, p in enumerate(dict.fromkeys(plans))}
    type_ids = {t: i for i, t in enumerate(dict.fromkeys(p.names for p in plans))}
    content = torch.tensor([content_ids[c] for c in contents])
    recipe = torch.tensor([recipe_ids[p] for p in plans])
    types = torch.tensor([type_ids[p.names] for p in plans])
    same_recipe = recipe[:, None] == recipe[None, :]
    same_image = (content[:, None] == content[None, :]) & same_recipe
    degradation = rule.degradation(same_image, same_recipe, types[:, None] == types[None, :])
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    return same_image & off_diagonal, degradation & off_diagonal
