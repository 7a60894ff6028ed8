"""The engine: apply per-sample plans to a batch, one op call per distinct distortion at each step."""
from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ._checks import _to_uint8, in_range, to_batch
from ._version import ENGINE_VERSION  # noqa: F401 - part of the engine's public face
from .ops import _cpu
from .ops._batch import map_groups
from .plan import Plan, Step
from .registry import DEFAULT_TABLE, Distortion, get
from .sampling import _generator, make_step

_LOW_PRECISION = (torch.float16, torch.bfloat16)



def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest of the 256 values an 8-bit image can hold."""
    return torch.round(x * 255.0) / 255.0


GRADIENT_POLICIES = ("error", "detach", "straight_through")


def _run_step(entry: Distortion, backend: str | None, x: torch.Tensor, steps: Sequence[Step],
              gradients: str = "error") -> torch.Tensor:
    expected = {entry.parameter, *entry.extras}
    for step in steps:
        if set(step.params) != expected:
            raise ValueError(
                f"{entry.name}: plan parameters {sorted(step.params)} do not match the registry's {sorted(expected)}"
            )
    tracked = x.requires_grad and torch.is_grad_enabled()
    if tracked and not entry.differentiable_with(backend):
        if gradients == "error":
            raise ValueError(
                f"{entry.name} ({backend or entry.default_backend or 'default'}) is not differentiable, and the "
                "images require gradients; pass gradients='straight_through' (identity gradient through it), "
                "gradients='detach' (no gradient through those samples)"
                + (" or use backend='differentiable'" if entry.differentiable_backends else ""))
        result = _run_step(entry, backend, x.detach(), steps)
        return x + (result - x).detach() if gradients == "straight_through" else result
    device = x.device
    run_on = device if device.type in entry.devices else torch.device("cpu")
    sub = x.to(run_on)
    params = {key: [float(s.params[key]) for s in steps] for key in expected}
    op = entry.op_for(backend)
    if entry.stochastic:
        params["generators"] = [torch.Generator(device=run_on).manual_seed(s.seed) for s in steps]
    return op(sub, **params).to(device)


def apply_plans(x, plans: Sequence[Plan] | Plan, *, quantize: bool = False, gradients: str = "error"):
    """Degrade each image of a batch by its own plan.

    At step t the samples whose t-th step is the same distortion (and backend) form one
    sub-batch and that op runs once on it; samples with shorter plans are left as they are.
    Every random draw comes from the plans (recorded parameters and seeds), so the same plans
    on the same device give the same output, bit for bit (on the CPU whatever else is in the
    batch; on a GPU within float rounding). On the CPU the batch is cut into cache-sized parts that
    the threads of the engine's pool take in turn, each run single-threaded (see ``degrade.set_threads``).

    Args:
        x: images, (B, 3, H, W) or (3, H, W), on any device: float in [0, 1], uint8, or a PIL
            image (mode RGB).
        plans: one plan per image (a single :class:`Plan` for a single image).
        quantize: round the result to 8-bit steps, as a saved image would be (uint8 and PIL
            results are always rounded).
        gradients: what happens when ``x`` requires gradients and a step is not differentiable
            (codecs, quantisation, palettes, denoising, Poisson noise): ``"error"`` (the default)
            refuses, naming the step; ``"straight_through"`` passes the gradient through that step
            unchanged (the identity: the usual estimator for codecs in training graphs);
            ``"detach"`` gives those samples no gradient. Differentiable steps always keep theirs.

    Returns:
        The degraded images, in the type, shape, dtype and device of ``x``.

    Example:
        >>> plans = sample_plans(4, "arniqa", seed=7)
        >>> apply_plans(torch.rand(4, 3, 64, 64), plans).shape
        torch.Size([4, 3, 64, 64])
    """
    if isinstance(plans, Plan):
        plans = [plans]
    plans = list(plans)
    if gradients not in GRADIENT_POLICIES:
        raise ValueError(f"gradients must be one of {GRADIENT_POLICIES}, got {gradients!r}")
    if _uint8_batch(x) and _cpu.split_batch(x):  # the parts convert their own samples, in cache
        _check_count(plans, x)
        return _apply_batch(x, plans, quantize, gradients)
    batch, _, restore = to_batch(x, check_range=False)  # values are checked in _apply_batch
    _check_count(plans, batch)
    return restore(_apply_batch(batch, plans, quantize, gradients))


def _uint8_batch(x: object) -> bool:
    """A well-formed (B, 3, H, W) uint8 tensor (anything else goes through ``to_batch``'s checks)."""
    return (isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.ndim == 4 and x.shape[1] == 3
            and x.numel() > 0)


def _check_count(plans: list[Plan], batch: torch.Tensor) -> None:
    if len(plans) != batch.shape[0]:
        raise ValueError(f"need one plan per image: got {len(plans)} plans for {batch.shape[0]} images")


def _apply_batch(batch: torch.Tensor, plans: list[Plan], quantize: bool, gradients: str = "error") -> torch.Tensor:
    """Check the batch's values, then run the plans: on the CPU in parts that the pool's threads take in turn.

    A uint8 batch (CPU only) gives a uint8 result: each part converts its samples to [0, 1] and its
    result back to 8 bits (rounded), exactly as ``to_batch`` and its restore would on the whole batch.
    """
    if _cpu.split_batch(batch):
        # Everything single-threaded inside the parts, the value check included (a parallel torch op
        # before them would leave OpenMP workers spinning on the pool's cores); each sample's result
        # depends only on its own plan, so the parts give the same bytes as one batch.
        out = torch.empty_like(batch)
        parts = _parts(batch, plans)
        as_uint8 = batch.dtype == torch.uint8

        def run(images: torch.Tensor, index: Sequence[int]) -> torch.Tensor:
            images = images.float().div_(255.0) if as_uint8 else in_range(images)
            result = _run_plans(images, [plans[i] for i in index], quantize, gradients)
            return _to_uint8(result) if as_uint8 else result

        def part(k: int) -> None:
            index = parts[k]
            start, stop = index[0], index[-1] + 1
            if stop - start == len(index):  # consecutive samples: a view in, one copy out
                out[start:stop] = run(batch[start:stop], index)
                return
            rows = torch.tensor(index)  # whole-image copies (indexing with a list goes element by element)
            out.index_copy_(0, rows, run(batch.index_select(0, rows), index))

        _cpu.map_parts(part, len(parts))
        return out
    return _run_plans(in_range(batch), plans, quantize, gradients)


# Seconds per image of each distortion and backend on the CPU, learnt as batches run (a moving average). The
# parts of a CPU batch are handed out costliest first, so that the pool's threads do not end on one
# long part while the others wait (a JPEG 2000 image costs as much as fifteen blurs). It sets the
# order of work only: each sample's bytes do not depend on which part or thread runs it.
_CPU_SECONDS: dict[tuple[str, str | None], float] = {}


def _op(step: Step) -> tuple[str, str | None]:
    """What runs a step: its distortion and backend. Steps of one op at one position run as one call,
    and costs are learnt per op."""
    return step.name, step.backend


def _learn_cost(key: tuple[str, str | None], seconds: float, images: int) -> None:
    per_image = seconds / max(1, images)
    before = _CPU_SECONDS.get(key)
    _CPU_SECONDS[key] = per_image if before is None else 0.8 * before + 0.2 * per_image


def _part_cost(plans: list[Plan], index: list[int]) -> float:
    return sum(_CPU_SECONDS.get(_op(step), 0.0) for i in index for step in plans[i].steps)


def _parts(batch: torch.Tensor, plans: list[Plan]) -> list[list[int]]:
    """Sample indices of each part of a CPU batch: cache-sized parts (``_cpu.part_images``), at least one
    per pool thread; samples with a whole-batch step (its cost is per call) go in parts of their own.
    The parts come costliest first, by what each distortion and backend has cost so far (``_CPU_SECONDS``)."""
    whole, rest = [], []
    for i, plan in enumerate(plans):
        (whole if any(get(s.name).whole_batch for s in plan.steps) else rest).append(i)
    parts = []
    for indices, most in ((whole, len(whole)), (rest, _cpu.part_images(batch))):
        size = max(1, min(most, -(-len(indices) // _cpu.threads())))
        parts += [indices[k:k + size] for k in range(0, len(indices), size)]
    return sorted(parts, key=lambda index: -_part_cost(plans, index))  # stable: unknown costs keep the order


def _run_plans(batch: torch.Tensor, plans: list[Plan], quantize: bool, gradients: str) -> torch.Tensor:
    dtype = batch.dtype
    if dtype in _LOW_PRECISION:
        batch = batch.float()
    for t in range(max((len(p) for p in plans), default=0)):
        keys = [_op(p.steps[t]) if t < len(p) else None for p in plans]

        def run(sub: torch.Tensor, idx: list[int], key: tuple[str, str | None], t: int = t) -> torch.Tensor:
            name, backend = key
            start = time.perf_counter()
            result = _run_step(get(name), backend, sub, [plans[i].steps[t] for i in idx], gradients)
            if sub.device.type == "cpu":
                _learn_cost(key, time.perf_counter() - start, len(idx))
            return result

        batch = map_groups(batch, keys, run)
    if quantize:
        batch = quantize_8bit(batch)
    return batch.to(dtype)


def apply(
    x,
    name: str,
    level: float | Sequence[float] | torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    backend: str | None = None,
    table: str = DEFAULT_TABLE,
    quantize: bool = False,
    return_plans: bool = False,
    gradients: str = "error",
):
    """Apply one distortion at a level, or at one level per sample.

    Args:
        x: images, (B, 3, H, W) or (3, H, W): float in [0, 1], uint8, or a PIL image (mode RGB).
        name: registered distortion (see :func:`list_distortions`).
        level: in [1, 5] (1 mildest; fractions interpolate the level table); a number, or one
            per sample as a sequence or (B,) tensor.
        generator: CPU generator for the random draws (angles, seeds), advanced by the call.
        seed: alternatively a seed for a fresh generator; with neither, seed 0 (deterministic).
        backend: implementation for distortions that have several (e.g. ``"differentiable"`` JPEG).
        table: level table (``"default"``, ``"kadid-exact"``, ``"arniqa"``).
        quantize: round the result to 8-bit steps.
        return_plans: also return the plans that were applied (to replay or store them).
        gradients: see :func:`apply_plans`.

    Returns:
        The degraded images in ``x``'s type (and the plans, if asked).

    Example:
        >>> y = apply(torch.rand(2, 3, 32, 32), "gaussian_blur", torch.tensor([1.0, 4.5]))
    """
    batch, _, restore = to_batch(x, check_range=False)  # values are checked in _apply_batch
    get(name)
    levels = torch.as_tensor(level, dtype=torch.float64).flatten().tolist()
    if len(levels) == 1:
        levels = levels * batch.shape[0]
    if len(levels) != batch.shape[0]:
        raise ValueError(f"need one level or one per image: got {len(levels)} for {batch.shape[0]} images")
    gen = _generator(generator, seed)
    plans = [Plan((make_step(name, lv, gen, table, backend),)) for lv in levels]
    if gradients not in GRADIENT_POLICIES:
        raise ValueError(f"gradients must be one of {GRADIENT_POLICIES}, got {gradients!r}")
    out = restore(_apply_batch(batch, plans, quantize, gradients))
    return (out, plans) if return_plans else out
