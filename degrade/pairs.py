"""Plans for the dual-representation groups of DRI-IQA training: x1, x2 of content A and y of content B.

A policy says how the three plans relate (see the SPEC's sampling table):

* ``dri`` (default): x2 has x1's distortion types in the same order at different levels
  (same parameters otherwise: random draws and noise seeds are kept); y is independent.
* ``qpt``: x2 is an independent recipe of other types (a negative for both halves); y independent.
* ``arniqa``: y is content B under x1's identical recipe (a degradation-positive); x2 independent.

Pure functions of a generator and plans; no images involved.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .plan import Plan
from .sampling import Preset, _generator, at_level, draw_level, get_preset, sample_plan

POLICIES = ("dri", "qpt", "arniqa")


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


def group_plans(preset: str | Preset, policy: str, generator: torch.Generator) -> GroupPlans:
    """Draw the plans of one group."""
    preset = get_preset(preset)
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {POLICIES}")
    x1 = _distorted(preset, generator)
    if policy == "dri":
        return GroupPlans(x1, vary_levels(x1, preset, generator), sample_plan(preset, generator), policy)
    if policy == "qpt":
        x2 = _distorted(preset, generator)
        while x2.names == x1.names:
            x2 = _distorted(preset, generator)
        return GroupPlans(x1, x2, sample_plan(preset, generator), policy)
    x2 = _distorted(preset, generator)
    while x2 == x1:
        x2 = _distorted(preset, generator)
    return GroupPlans(x1, x2, x1, policy)


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
