"""The engine, plans and presets: batching by op, determinism, JSON, presets, errors."""
from __future__ import annotations

import collections
import json

import pytest
import torch

import degrade
from degrade import engine
from degrade.plan import Plan, Step
from degrade.sampling import PRESETS, Preset, make_step, sample_plan
from tests.conftest import photo


def step(name: str, level: float, seed: int = 0) -> Step:
    return make_step(name, level, torch.Generator().manual_seed(seed))


@pytest.fixture
def pool_threads(monkeypatch):
    """Set the engine's CPU pool size for one test (torch's thread count is left alone)."""
    from degrade.ops import _cpu

    return lambda n: monkeypatch.setattr(_cpu, "_THREADS", n)


@pytest.fixture
def op_calls(monkeypatch):
    """(distortion, batch size, torch threads) of every op call the engine makes during a test."""
    calls = []
    original = engine._run_step

    def spy(entry, backend, x, steps, gradients="error"):
        calls.append((entry.name, x.shape[0], torch.get_num_threads()))
        return original(entry, backend, x, steps, gradients)

    monkeypatch.setattr(engine, "_run_step", spy)
    return calls


def test_one_op_call_per_distortion_and_step(op_calls, pool_threads):
    pool_threads(1)  # one thread: the whole batch is one part
    plans = [
        Plan((step("jpeg", 2), step("gaussian_blur", 1))),
        Plan((step("gaussian_blur", 3), step("jpeg", 4))),
        Plan((step("jpeg", 5),)),
        Plan(),
        Plan((step("gaussian_blur", 2), step("white_noise", 1), step("jpeg", 1))),
    ]
    x = torch.stack([photo("coffee", 32)] * 5)
    out = degrade.apply_plans(x, plans)
    assert collections.Counter((name, size) for name, size, _ in op_calls) == collections.Counter(
        [("jpeg", 2), ("gaussian_blur", 2), ("gaussian_blur", 1), ("jpeg", 1), ("white_noise", 1), ("jpeg", 1)]
    )
    assert torch.equal(out[3], x[3])  # the pristine plan leaves its image alone
    for i, plan in enumerate(plans):
        torch.testing.assert_close(out[i], degrade.apply_plans(x[i], plan), atol=1e-5, rtol=0)


def test_a_cpu_batch_is_cut_into_parts_with_the_same_bytes(op_calls, pool_threads):
    calls = op_calls
    x = torch.stack([photo(name, 48) for name in ("coffee", "astronaut", "chelsea", "rocket")] * 3)
    plans = degrade.sample_plans(12, "broad", seed=3)
    pool_threads(1)
    whole = degrade.apply_plans(x, plans)
    one_part = len(calls)
    calls.clear()
    pool_threads(3)
    threads = torch.get_num_threads()
    parts = degrade.apply_plans(x, plans)
    assert torch.equal(parts, whole)  # each sample depends on its own plan only
    assert len(calls) > one_part  # each part batched its own steps
    assert {n for _, _, n in calls} == {1}  # torch single-threaded inside the parts
    assert torch.get_num_threads() == threads  # and restored afterwards
    assert sum(size for _, size, _ in calls) == sum(len(p) for p in plans)


def test_parts_are_cache_sized_and_whole_batch_steps_share_one_part_per_thread(monkeypatch, op_calls, pool_threads):
    from degrade.ops import _cpu

    pool_threads(2)
    monkeypatch.setattr(engine, "_CPU_SECONDS", {})  # no costs learnt yet: the parts keep their order
    monkeypatch.setattr(_cpu, "PART_ELEMENTS", 2 * 3 * 40 * 40)  # two 40 px images per part
    x = torch.stack([photo("coffee", 40)] * 9)
    palette = (1, 4, 5, 8)  # colour quantisation costs per call: its samples are batched
    plans = [Plan((step("white_noise", 2), step("color_quantization", 3))) if i in palette
             else Plan((step("gaussian_blur", 2),)) for i in range(9)]
    parts = engine._parts(x, plans)
    assert parts == [[1, 4], [5, 8], [0, 2], [3, 6], [7]]
    out = degrade.apply_plans(x, plans)
    assert collections.Counter((name, size) for name, size, _ in op_calls) == collections.Counter(
        [("white_noise", 2), ("color_quantization", 2)] * 2 + [("gaussian_blur", 2)] * 2 + [("gaussian_blur", 1)])
    pool_threads(1)
    for i in (0, 4):
        assert torch.equal(out[i], degrade.apply_plans(x[i], plans[i]))


def test_parts_are_handed_out_costliest_first_once_costs_are_learnt(monkeypatch, pool_threads):
    """The engine times each distortion as it runs on the CPU and hands the costliest parts out first
    (JPEG 2000 costs many blurs), so the threads do not end on one long part; the bytes stay the same."""
    from degrade.ops import _cpu

    pool_threads(2)
    monkeypatch.setattr(engine, "_CPU_SECONDS", {})
    monkeypatch.setattr(_cpu, "PART_ELEMENTS", 3 * 48 * 48)  # one 48 px image per part
    x = torch.stack([photo("coffee", 48)] * 6)
    plans = [Plan((step("gaussian_blur", 2),))] * 4 + [Plan((step("jpeg2000", 4),)), Plan((step("brighten", 3),))]
    first = degrade.apply_plans(x, plans)
    engine._CPU_SECONDS.clear()  # learn again, past any first-call costs (caches, lazy imports)
    assert torch.equal(degrade.apply_plans(x, plans), first)
    assert set(engine._CPU_SECONDS) == {("gaussian_blur", None), ("jpeg2000", None), ("brighten", None)}
    assert engine._CPU_SECONDS["jpeg2000", None] > engine._CPU_SECONDS["gaussian_blur", None]
    assert engine._parts(x, plans)[0] == [4]
    assert torch.equal(degrade.apply_plans(x, plans), first)


def test_costs_are_learnt_per_backend(monkeypatch):
    """One distortion's backends cost apart (libjpeg against the differentiable JPEG in torch), so
    each is timed under its own key and a cheap backend does not inherit the other's cost."""
    monkeypatch.setattr(engine, "_CPU_SECONDS", {})
    x = torch.stack([photo("coffee", 48)] * 2)
    for backend in ("libjpeg", "differentiable"):
        degrade.apply(x, "jpeg", 3, backend=backend)
    assert set(engine._CPU_SECONDS) == {("jpeg", "libjpeg"), ("jpeg", "differentiable")}
    assert all(seconds > 0 for seconds in engine._CPU_SECONDS.values())


def test_map_parts_finishes_every_part_before_raising(pool_threads):
    from degrade.ops import _cpu

    pool_threads(2)
    done = []

    def part(k: int) -> int:
        if k == 0:
            raise RuntimeError("part 0 failed")
        done.append(k)
        return k

    with pytest.raises(RuntimeError, match="part 0 failed"):
        _cpu.map_parts(part, 6)
    assert sorted(done) == [1, 2, 3, 4, 5]
    assert _cpu.map_parts(lambda k: k * k, 5) == [0, 1, 4, 9, 16]


def test_a_split_batch_checks_the_values_of_every_part(pool_threads):
    pool_threads(2)
    x = torch.stack([photo("coffee", 32)] * 4)
    plans = [Plan((step("gaussian_blur", 2),))] * 4
    bad = x.clone()
    bad[3, 0, 0, 0] = 2.0  # in the second part
    with pytest.raises(ValueError, match=r"\[0, 1\].*max 2"):
        degrade.apply_plans(bad, plans)
    rounding = x.clone()
    rounding[3, 0, 0, 0] = 1.0 + 1e-6  # float rounding only: clamped, as for an unsplit batch
    assert torch.equal(degrade.apply_plans(rounding, plans), degrade.apply_plans(rounding.clamp(0, 1), plans))


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_the_parts_run_in_the_callers_grad_mode(mode, pool_threads):
    pool_threads(2)
    x = torch.stack([photo("coffee", 32), photo("rocket", 32)]).requires_grad_(mode == "no_grad")
    plans = [Plan((step("jpeg", 3),)), Plan((step("gaussian_blur", 2),))]
    with getattr(torch, mode)():  # a codec needs no gradient question here, and inference tensors stay writable
        out = degrade.apply_plans(x, plans)
    assert not out.requires_grad
    assert torch.equal(out, degrade.apply_plans(x.detach(), plans))


@pytest.mark.parametrize("threads", [1, 3])
def test_on_the_cpu_a_plan_gives_the_same_bytes_alone_and_in_any_batch(threads, pool_threads):
    pool_threads(threads)
    x = torch.stack([photo(name, 40) for name in ("coffee", "astronaut", "chelsea", "rocket")] * 2)
    for name in degrade.list_distortions():
        g = torch.Generator().manual_seed(1)
        plans = [Plan((make_step(name, 1 + i % 5, g),)) for i in range(8)]
        batched = degrade.apply_plans(x, plans)
        for i in (0, 5, 7):
            assert torch.equal(degrade.apply_plans(x[i], plans[i]), batched[i]), name


def test_steps_apply_in_order():
    x = photo("astronaut", 48)
    a = Plan((step("gaussian_blur", 5), step("white_noise", 5)))
    b = Plan((step("white_noise", 5), step("gaussian_blur", 5)))
    noisy_last, blurred_last = degrade.apply_plans(x, a), degrade.apply_plans(x, b)
    # high-frequency energy survives only when the noise comes last
    hf = lambda t: float((t[:, 1:, :] - t[:, :-1, :]).abs().mean())  # noqa: E731
    assert hf(noisy_last) > 2 * hf(blurred_last)


def test_quantize_rounds_to_8_bit():
    y = degrade.apply(photo("coffee", 32), "gaussian_blur", 3, quantize=True)
    assert torch.equal(torch.round(y * 255) / 255, y)


def test_half_precision_is_computed_in_float32_and_returned_as_half():
    x = photo("coffee", 32).half()
    y = degrade.apply(x, "color_saturation_lab", 3)
    assert y.dtype == torch.float16
    ref = degrade.apply(x.float(), "color_saturation_lab", 3)
    torch.testing.assert_close(y.float(), ref, atol=2e-3, rtol=0)


def test_apply_returns_plans_that_replay():
    x = torch.stack([photo("rocket", 32), photo("coffee", 32)])
    y, plans = degrade.apply(x, "motion_blur", [2, 4.5], seed=3, return_plans=True)
    assert [p.steps[0].level for p in plans] == [2, 4.5]
    assert torch.equal(degrade.apply_plans(x, plans), y)


def test_apply_is_deterministic_by_default_and_seeded():
    x = photo("coffee", 32)
    assert torch.equal(degrade.apply(x, "white_noise", 3), degrade.apply(x, "white_noise", 3))
    assert not torch.equal(degrade.apply(x, "white_noise", 3, seed=1), degrade.apply(x, "white_noise", 3, seed=2))


def test_backend_is_recorded_and_selectable():
    x = photo("chelsea", 32)
    _, (plan,) = degrade.apply(x, "jpeg", 3, return_plans=True)
    assert plan.steps[0].backend == "libjpeg"
    x = x.clone().requires_grad_(True)
    y, (plan,) = degrade.apply(x, "jpeg", 3, backend="differentiable", return_plans=True)
    assert plan.steps[0].backend == "differentiable"
    y.mean().backward()
    assert float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="unknown backend"):
        degrade.apply(x, "jpeg", 3, backend="mozjpeg")


def test_level_tables():
    _, (plan,) = degrade.apply(photo("coffee", 32), "mean_shift", 5, table="kadid-exact", return_plans=True)
    assert plan.steps[0].params["offset"] == pytest.approx(-0.15)
    _, plans = degrade.apply(torch.stack([photo("coffee", 32)] * 8), "mean_shift", 5, return_plans=True)
    offsets = {p.steps[0].params["offset"] for p in plans}
    assert offsets <= {0.15, -0.15} and len(offsets) == 2  # default: |offset| by level, random direction


# --- plans and presets -----------------------------------------------------------------


def test_plan_json_format():
    plan = Plan((step("motion_blur", 3, seed=1), step("jpeg", 2)))
    d = json.loads(plan.to_json())
    assert d["version"] == 1
    assert d["steps"][0]["name"] == "motion_blur" and set(d["steps"][0]["params"]) == {"length", "angle"}
    assert d["steps"][1] == {"name": "jpeg", "level": 2, "params": {"quality": 36}, "seed": d["steps"][1]["seed"],
                             "backend": "libjpeg"}
    assert Plan.from_dict(d) == plan


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"version": 9, "steps": []}, "version 9"),
        ({"version": 1}, "list under 'steps'"),
        ({"steps": [{"name": "jpeg", "level": 1, "params": {}}]}, "lacks \\['seed'\\]"),
        ({"steps": [{"name": "jpeg", "level": 1, "params": {"quality": "high"}, "seed": 1}]}, "must be a number"),
        ({"steps": [{"name": "jpeg", "level": 1, "params": {}, "seed": -4}]}, "non-negative integer"),
    ],
)
def test_plan_from_dict_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        Plan.from_dict(bad)


def test_sample_plans_is_deterministic():
    a = degrade.sample_plans(50, "arniqa", seed=4)
    b = degrade.sample_plans(50, "arniqa", generator=torch.Generator().manual_seed(4))
    assert a == b
    assert a != degrade.sample_plans(50, "arniqa", seed=5)


def test_arniqa_preset_statistics():
    plans = degrade.sample_plans(3000, "arniqa", seed=0)
    pristine = sum(len(p) == 0 for p in plans) / len(plans)
    assert 0.035 < pristine < 0.065
    levels = collections.Counter(s.level for p in plans for s in p.steps)
    total = sum(levels.values())
    expected = torch.tensor(PRESETS["arniqa"].level_probs) / sum(PRESETS["arniqa"].level_probs)
    for lv in range(1, 6):
        assert levels[lv] / total == pytest.approx(float(expected[lv - 1]), abs=0.02)
    for p in plans:
        groups = [degrade.info(s.name).group for s in p.steps]
        assert len(groups) == len(set(groups)) and len(p) <= 4
        assert all(degrade.info(s.name).arniqa for s in p.steps)
    assert {len(p) for p in plans} == {0, 1, 2, 3, 4}


def test_kadid_preset_draws_one_kadid_distortion_uniformly():
    plans = degrade.sample_plans(2500, "kadid", seed=1)
    assert all(len(p) == 1 and degrade.info(p.steps[0].name).kadid for p in plans)
    counts = collections.Counter(p.steps[0].name for p in plans)
    assert len(counts) == 25 and min(counts.values()) > 60


def test_custom_preset():
    preset = Preset.of(["jpeg", "webp"], continuous=True)
    plans = degrade.sample_plans(20, preset, seed=0)
    assert {p.steps[0].name for p in plans} == {"jpeg", "webp"}
    assert any(not float(p.steps[0].level).is_integer() for p in plans)
    with pytest.raises(ValueError, match="max_steps"):
        Preset("too-many", ("jpeg", "webp"), max_steps=3, by_group=True)
    with pytest.raises(KeyError, match="unknown distortion"):
        Preset.of("jpg")


def test_sample_plan_without_pristine():
    g = torch.Generator().manual_seed(0)
    assert all(len(sample_plan("arniqa", g, allow_pristine=False)) > 0 for _ in range(300))


# --- errors at the boundary --------------------------------------------------------------


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.rand(2, 1, 8, 8), "grayscale: repeat the channel"),
        (torch.rand(2, 4, 8, 8), "RGBA: drop the alpha"),
        (torch.rand(2, 8, 8, 3), "channels must come before"),
        (torch.rand(8, 8), "expected an image"),
        (torch.rand(1, 2, 3, 8, 8), "expected an image"),
        (torch.rand(1, 3, 8, 8) * 255, "divide by 255|x / 255"),
        (torch.rand(1, 3, 8, 8) - 0.5, "must lie in \\[0, 1\\]"),
        (torch.full((1, 3, 8, 8), float("nan")), "must lie in \\[0, 1\\]"),
        (torch.zeros(0, 3, 8, 8), "empty"),
    ],
)
def test_bad_images_get_a_clear_error(x, match):
    with pytest.raises(ValueError, match=match):
        degrade.apply(x, "jpeg", 1)


def test_other_integer_images_and_non_tensors_are_refused_with_a_hint():
    with pytest.raises(TypeError, match="float\\(\\) / 255"):
        degrade.apply(torch.zeros(1, 3, 8, 8, dtype=torch.int16), "jpeg", 1)
    with pytest.raises(TypeError, match="to_tensor"):
        degrade.apply([[0.0]], "jpeg", 1)


def test_unknown_distortion_suggests_the_closest():
    with pytest.raises(KeyError, match="Did you mean gaussian_blur"):
        degrade.apply(torch.rand(1, 3, 8, 8), "gausian_blur", 1)
    with pytest.raises(KeyError, match="Did you mean"):
        degrade.info("jepg")


@pytest.mark.parametrize("level", [0, 5.5, -1, float("nan")])
def test_level_out_of_range(level):
    with pytest.raises(ValueError, match="level must be a number in \\[1, 5\\]"):
        degrade.apply(torch.rand(1, 3, 8, 8), "jpeg", level)


def test_plan_mismatches():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="one plan per image"):
        degrade.apply_plans(x, [Plan()])
    with pytest.raises(ValueError, match="one level or one per image"):
        degrade.apply(x, "jpeg", [1, 2, 3])
    broken = Plan((Step("jpeg", 1, {"q": 40}, 0, "libjpeg"),))
    with pytest.raises(ValueError, match="do not match the registry"):
        degrade.apply_plans(x[0], broken)
    with pytest.raises(KeyError, match="unknown distortion"):
        degrade.apply_plans(x[0], Plan((Step("blurr", 1, {"sigma": 1}, 0),)))


def test_tiny_images_work_for_every_distortion():
    x = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    for name in degrade.list_distortions():
        y = degrade.apply(x, name, 5)
        assert y.shape == x.shape and torch.isfinite(y).all(), name
