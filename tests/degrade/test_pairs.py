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


def _patches(group):
    """The six patches of one group in loader order: x1a, x1b, x2a, x2b, ya, yb."""
    contents = ["A", "A", "A", "A", "B", "B"]
    plans = [group.x1, group.x1, group.x2, group.x2, group.y, group.y]
    return contents, plans


def test_relation_masks_follow_the_sampling_table():
    from degrade.pairs import relation_masks

    (g,) = sample_groups(1, "arniqa", "dri", seed=0)
    contents, plans = _patches(g)
    q, d = relation_masks(contents, plans, "dri")
    # anchor x1a (row 0): x1b positive for both halves; x2a/x2b degradation-positive only; y negative
    assert q[0].tolist() == [False, True, False, False, False, False]
    assert d[0].tolist() == [False, True, True, True, g.y.names == g.x1.names, g.y.names == g.x1.names]
    assert torch.equal(q, q.T) and torch.equal(d, d.T) and not q.diagonal().any()
    q, d = relation_masks(contents, plans, "qpt")
    assert torch.equal(q, d)  # under QPT x2 is a negative for both halves


def test_relation_masks_arniqa_and_other_groups():
    from degrade.pairs import relation_masks

    g1, g2 = sample_groups(2, "arniqa", "arniqa", seed=1)
    contents = ["A", "A", "B", "B", "C", "C"]
    plans = [g1.x1, g1.x1, g1.y, g1.y, g2.x1, g2.x1]
    q, d = relation_masks(contents, plans, "arniqa")
    assert d[0, 2] and d[0, 3] and not q[0, 2]  # same recipe on other content: degradation-positive
    assert not d[0, 4] or g2.x1 == g1.x1  # another group: negative unless the recipe matches
    # a different group whose recipe has the same types is degradation-positive under dri
    same_types = vary_levels(g1.x1, "arniqa", torch.Generator().manual_seed(3))
    q, d = relation_masks(["A", "Z"], [g1.x1, same_types], "dri")
    assert d[0, 1] and not q[0, 1]
    with pytest.raises(ValueError, match="unknown policy"):
        relation_masks(["A"], [g1.x1], "simclr")
