"""Presets named after a paper draw that paper's values, by its composition rules."""
from __future__ import annotations

import collections
import math

import pytest

from degrade import info, list_distortions, sample_plans
from degrade.registry import get

# ARNIQA's distortion_range (utils/utils_data.py of its published code), by its names, levels 1..5.
ARNIQA_TABLE = {
    "gaublur": [0.1, 0.5, 1, 2, 5], "lensblur": [1, 2, 4, 6, 8], "motionblur": [1, 2, 4, 6, 10],
    "colordiff": [1, 3, 6, 8, 12], "colorshift": [1, 3, 6, 8, 12], "colorsat1": [0.4, 0.2, 0.1, 0, -0.4],
    "colorsat2": [1, 2, 3, 6, 9], "jpeg2000": [16, 32, 45, 120, 170], "jpeg": [43, 36, 24, 7, 4],
    "whitenoise": [0.001, 0.002, 0.003, 0.005, 0.01], "whitenoiseCC": [0.0001, 0.0005, 0.001, 0.002, 0.003],
    "impulsenoise": [0.001, 0.005, 0.01, 0.02, 0.03], "multnoise": [0.001, 0.005, 0.01, 0.02, 0.05],
    "brighten": [0.1, 0.2, 0.4, 0.7, 1.1], "darken": [0.05, 0.1, 0.2, 0.4, 0.8],
    "meanshift": [0, 0.08, -0.08, 0.15, -0.15], "jitter": [0.05, 0.1, 0.2, 0.5, 1],
    "noneccpatch": [20, 40, 60, 80, 100], "pixelate": [0.01, 0.05, 0.1, 0.2, 0.5],
    "quantization": [20, 16, 13, 10, 7], "colorblock": [2, 4, 6, 8, 10], "highsharpen": [1, 2, 3, 6, 12],
    "lincontrchange": [0.0, 0.15, -0.4, 0.3, -0.6], "nonlincontrchange": [0.4, 0.3, 0.2, 0.1, 0.05],
}
ARNIQA_GROUPS = {
    "blur": {"gaublur", "lensblur", "motionblur"},
    "color_distortion": {"colordiff", "colorshift", "colorsat1", "colorsat2"},
    "jpeg": {"jpeg2000", "jpeg"},
    "noise": {"whitenoise", "whitenoiseCC", "impulsenoise", "multnoise"},
    "brightness_change": {"brighten", "darken", "meanshift"},
    "spatial_distortion": {"jitter", "noneccpatch", "pixelate", "quantization", "colorblock"},
    "sharpness_contrast": {"highsharpen", "lincontrchange", "nonlincontrchange"},
}
ARNIQA_NAME = {name: info(name).arniqa for name in list_distortions() if info(name).arniqa}  # ours -> ARNIQA's


@pytest.fixture(scope="module")
def arniqa_plans():
    return sample_plans(4000, "arniqa", seed=11)


def test_the_arniqa_preset_draws_arniqas_values(arniqa_plans):
    assert set(ARNIQA_NAME.values()) == set(ARNIQA_TABLE)  # the same 24 distortions
    for plan in arniqa_plans:
        for step in plan.steps:
            table = ARNIQA_TABLE[ARNIQA_NAME[step.name]]
            value = step.params[get(step.name).parameter]
            assert value == pytest.approx(table[int(step.level) - 1]), (step.name, step.level, value)


def test_the_arniqa_preset_follows_arniqas_composition(arniqa_plans):
    pristine = sum(len(p) == 0 for p in arniqa_plans) / len(arniqa_plans)
    assert 0.035 < pristine < 0.065  # 5%
    counts = collections.Counter(len(p) for p in arniqa_plans if len(p))
    assert set(counts) == {1, 2, 3, 4} and min(counts.values()) > 0.2 * sum(counts.values())  # uniform 1..4
    for plan in arniqa_plans:
        groups = [g for name in plan.names for g, members in ARNIQA_GROUPS.items() if ARNIQA_NAME[name] in members]
        assert len(groups) == len(set(groups)) == len(plan)  # one distortion per group
    levels = collections.Counter(int(s.level) for p in arniqa_plans for s in p.steps)
    total = sum(levels.values())
    weights = [math.exp(-(i**2) / 12.5) for i in range(5)]
    for level, weight in zip(range(1, 6), weights):
        assert levels[level] / total == pytest.approx(weight / sum(weights), abs=0.02)


def test_the_monotone_variant_keeps_the_composition_with_the_default_tables():
    plans = sample_plans(3000, "arniqa-monotone", seed=11)
    shifts = {abs(s.params["offset"]) for p in plans for s in p.steps if s.name == "mean_shift"}
    assert shifts <= set(get("mean_shift").levels) and 0.0 not in shifts  # every level shifts
    ratios = {s.params["ratio"] for p in plans for s in p.steps if s.name == "jpeg2000"}
    assert 400.0 in ratios and 170.0 not in ratios
    signs = {math.copysign(1, s.params["offset"]) for p in plans for s in p.steps if s.name == "mean_shift"}
    assert signs == {-1.0, 1.0}


def test_presets_never_produce_values_outside_their_tables():
    for preset in ("kadid", "arniqa", "arniqa-monotone", "broad", "balanced"):
        for plan in sample_plans(500, preset, seed=2):
            for step in plan.steps:
                d = get(step.name)
                table = d.table("arniqa" if preset == "arniqa" else "default")
                value = step.params[d.parameter]
                if d.signed_around is not None and preset != "arniqa":
                    value = abs(value - d.signed_around)
                assert any(value == pytest.approx(v) for v in table), (preset, step.name, value)


def test_the_broad_preset_draws_every_distortion_with_single_ones_most_often():
    from degrade.sampling import Preset

    plans = sample_plans(4000, "broad", seed=5)
    counts = collections.Counter(len(p) for p in plans)
    composed = sum(counts[k] for k in (1, 2, 3, 4))
    for steps, share in zip((1, 2, 3, 4), (0.5, 0.25, 0.15, 0.1)):
        assert counts[steps] / composed == pytest.approx(share, abs=0.03), counts
    assert {s.name for p in plans for s in p.steps} == set(list_distortions())  # extras such as webp included
    for plan in plans:
        groups = [get(name).group for name in plan.names]
        assert len(groups) == len(set(groups))
    with pytest.raises(ValueError, match="step_probs needs one non-negative weight per count"):
        Preset("bad", ("jpeg", "gaussian_blur"), max_steps=2, step_probs=(1.0,), by_group=True)


def test_group_weights_make_a_group_likelier_and_keep_groups_distinct():
    from degrade.sampling import Preset

    names = ("gaussian_blur", "jpeg", "webp", "white_noise")
    even = Preset("even", names, max_steps=2, by_group=True)
    heavy = Preset("heavy", names, max_steps=2, by_group=True, group_weights={"compression": 4.0})
    singles = {}
    for preset in (even, heavy):
        plans = [p for p in sample_plans(3000, preset, seed=3) if len(p) == 1]
        singles[preset.name] = collections.Counter(get(p.names[0]).group for p in plans)
    share = {k: c["compression"] / sum(c.values()) for k, c in singles.items()}
    assert share["even"] == pytest.approx(1 / 3, abs=0.04)
    assert share["heavy"] == pytest.approx(4 / 6, abs=0.04)  # weight 4 against 1 + 1
    for plan in sample_plans(1000, heavy, seed=4):
        groups = [get(name).group for name in plan.names]
        assert len(groups) == len(set(groups))
    zero = Preset("zero", names, max_steps=2, by_group=True, group_weights={"noise": 0})
    assert "white_noise" not in {n for p in sample_plans(500, zero, seed=1) for n in p.names}
    assert sample_plans(50, heavy, seed=9) == sample_plans(50, heavy, seed=9)
    assert heavy == Preset("heavy", names, max_steps=2, by_group=True, group_weights={"compression": 4})


@pytest.mark.parametrize("options, message", [
    ({"group_weights": {"compression": 2.0}}, "need by_group=True"),
    ({"by_group": True, "group_weights": {"colour": 2.0}}, "no distortion of"),
    ({"by_group": True, "group_weights": {"blur": -1.0}}, "finite and non-negative"),
    ({"by_group": True, "max_steps": 2, "group_weights": {"blur": 0.0}}, "groups of positive weight"),
])
def test_bad_group_weights_are_refused(options, message):
    from degrade.sampling import Preset

    with pytest.raises(ValueError, match=message):
        Preset("bad", ("gaussian_blur", "jpeg"), **options)


def test_the_balanced_preset_favours_compression_alone_at_every_level():
    plans = [p for p in sample_plans(4000, "balanced", seed=6) if len(p)]
    single = [p for p in plans if len(p) == 1]
    assert len(single) / len(plans) == pytest.approx(0.5, abs=0.03)
    compression = collections.Counter(p.names[0] for p in single if get(p.names[0]).group == "compression")
    assert sum(compression.values()) / len(single) == pytest.approx(4 / 10, abs=0.03)  # weight 4 of 4 + 6
    assert set(compression) == {"jpeg", "jpeg2000", "webp"}
    levels = collections.Counter(int(s.level) for p in plans for s in p.steps if s.name == "jpeg")
    assert min(levels.values()) > 0.15 * sum(levels.values())  # uniform levels: heavy JPEG is common
