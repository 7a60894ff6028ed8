"""Dual-representation group plans: the relations each policy promises."""
from __future__ import annotations

import json

import pytest
import torch

from degrade.pairs import POLICIES, GroupPlans, relation, sample_groups, vary_levels
from degrade.plan import Plan
from degrade.sampling import sample_plans


@pytest.mark.parametrize("preset", ["arniqa", "kadid"])
def test_dri_policy_varies_levels_only(preset):
    for g in sample_groups(200, preset, "dri", seed=3):
        assert len(g.x1) > 0
        assert g.x2.names == g.x1.names
        for a, b in zip(g.x1.steps, g.x2.steps):
            assert a.level != b.level
            assert a.seed == b.seed and a.backend == b.backend
            extras = set(a.params) - {next(iter(set(a.params) - set(b.params) or {None}))}
            assert {k: a.params[k] for k in extras if k != _parameter(a.name)} == {
                k: b.params[k] for k in extras if k != _parameter(a.name)
            }
        assert relation(g.x1, g.x2) == "same_types"


def _parameter(name: str) -> str:
    import degrade

    return degrade.info(name).parameter


def test_two_sided_distortions_keep_their_direction_across_levels():
    plan = Plan((next(s for p in sample_plans(400, "arniqa", seed=0) for s in p.steps if s.name == "mean_shift"),))
    varied = vary_levels(plan, "arniqa", torch.Generator().manual_seed(1))
    a, b = plan.steps[0].params["offset"], varied.steps[0].params["offset"]
    assert (a > 0) == (b > 0) and a != b


def test_qpt_policy_uses_other_types_for_x2():
    for g in sample_groups(200, "arniqa", "qpt", seed=1):
        assert len(g.x1) > 0 and len(g.x2) > 0 and g.x2.names != g.x1.names
        assert relation(g.x1, g.x2) == "different"


def test_arniqa_policy_repeats_the_recipe_on_other_content():
    for g in sample_groups(200, "arniqa", "arniqa", seed=2):
        assert g.y == g.x1 and relation(g.x1, g.y) == "identical"
        assert g.x2 != g.x1


def test_groups_are_deterministic_and_serialisable():
    for policy in POLICIES:
        a = sample_groups(30, "arniqa", policy, seed=9)
        assert a == sample_groups(30, "arniqa", policy, generator=torch.Generator().manual_seed(9))
        assert [GroupPlans.from_dict(json.loads(json.dumps(g.to_dict()))) for g in a] == a


def test_relation_levels():
    p = sample_plans(1, "kadid", seed=0)[0]
    other_levels = vary_levels(p, "kadid", torch.Generator().manual_seed(0))
    assert relation(p, p) == "identical"
    assert relation(p, other_levels) == "same_types"
    assert relation(p, Plan()) == "different"


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown policy"):
        sample_groups(1, "arniqa", "simclr")
