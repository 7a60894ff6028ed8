"""Spatial: jitter, displaced patches, pixelation, quantisation, colour blocks and down-up resizing.

x is (B, 3, H, W) RGB in [0, 1]; parameters are numbers or (B,) tensors. Random positions
and displacement fields come from each sample's own generator.
"""
from __future__ import annotations

from collections.abc import Sequence

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from . import _cpu
from ._batch import ParamLike, batch_scale, batch_values, check_generators, map_groups, per_sample_draw

Generators = Sequence[torch.Generator]

RESIZE_METHODS = ("bilinear", "bicubic", "area")


def _identity_grid(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def jitter(x: torch.Tensor, amount: ParamLike, generators: Generators, iterations: int = 5) -> torch.Tensor:
    """Per-pixel random displacement: ``iterations`` rounds of N(0, amount^2) px offsets, bilinear resampling.

    Shape:
        x: (B, 3, H, W); amount: () or (B,) in pixels; generators: B; output: (B, 3, H, W).
    """
    check_generators(generators, x)
    b, _, h, w = x.shape
    fields = per_sample_draw(
        generators, lambda g: torch.randn(iterations, h, w, 2, generator=g, device=g.device, dtype=x.dtype)
    )
    to_grid = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=x.dtype, device=x.device)
    scale = batch_scale(amount, x, "amount")
    base = _identity_grid(x)
    out = x
    for i in range(iterations):
        grid = base + fields[:, i] * scale * to_grid
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out


def _patch_side(x: torch.Tensor, side: int) -> int:
    return max(1, min(side, x.shape[-2], x.shape[-1]))


def _uniform_rows(generators: Generators, counts: list[int], width: int) -> list[list[list[float]]]:
    """Per sample, ``count`` rows of ``width`` uniforms: one row per pasted patch or block.

    One row per item (rather than one tensor per quantity) means the first n items of a
    sample are the same whatever its count, so a higher level adds items to a lower one.
    """
    return [
        torch.rand(n, width, generator=g, device=g.device, dtype=torch.float64).tolist()
        for n, g in zip(counts, generators)
    ]


def _corner(u: float, limit: int) -> int:
    """An integer position in [0, limit] from a uniform in [0, 1)."""
    return min(int(u * (limit + 1)), limit)


def non_eccentricity_patch(
    x: torch.Tensor, patches: ParamLike, generators: Generators, side: int = 16, reach: int = 8
) -> torch.Tensor:
    """Copy ``patches`` random ``side``-px patches, one after another, to places up to ``reach`` px away.

    Later copies may read regions changed by earlier ones, as in KADID's sequential generator.

    Shape:
        x: (B, 3, H, W); patches: () or (B,) integers; generators: B; output: (B, 3, H, W).
    """
    check_generators(generators, x)
    _, _, h, w = x.shape
    p = _patch_side(x, side)
    counts = [int(round(n)) for n in batch_values(patches, x, "patches")]
    out = x.clone()
    for i, rows in enumerate(_uniform_rows(generators, counts, 4)):
        image = out[i]
        for u in rows:  # a few dozen small slice copies: cheaper than batched gathers
            y, x0 = _corner(u[0], h - p), _corner(u[1], w - p)
            ty = min(max(y + int(u[2] * (2 * reach + 1)) - reach, 0), h - p)
            tx = min(max(x0 + int(u[3] * (2 * reach + 1)) - reach, 0), w - p)
            image[:, ty : ty + p, tx : tx + p] = image[:, y : y + p, x0 : x0 + p].clone()
    return out


def _nearest_down_up(size: int, small: int, device: torch.device) -> torch.Tensor:
    """Source index of each output pixel after nearest resizing ``size`` -> ``small`` -> ``size``."""
    i = torch.arange(size, dtype=torch.float64)
    down = torch.floor(i * small / size)
    return torch.floor(down * size / small).clamp(max=size - 1).long().to(device)


@lru_cache(maxsize=256)
def _opencv_agrees(size: int, small: int) -> bool:
    """Whether two OpenCV nearest resizes (``size`` -> ``small`` -> ``size``) pick exactly the pixels
    :func:`_nearest_down_up` picks (checked on an index ramp, once per pair of sizes)."""
    import cv2

    ramp = np.arange(size, dtype=np.float32)[None, :]
    down = cv2.resize(ramp, (small, 1), interpolation=cv2.INTER_NEAREST)
    up = cv2.resize(down, (size, 1), interpolation=cv2.INTER_NEAREST)
    return np.array_equal(up[0].astype(np.int64), _nearest_down_up(size, small, torch.device("cpu")).numpy())


def _pixelate_cpu(x: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Pixelation of each CPU image plane at its sample's small size, written in place of the output
    (OpenCV's nearest resizing where it picks the pixels of :func:`_nearest_down_up`, else a gather)."""
    import cv2

    h, w = x.shape[-2:]

    def one(plane: np.ndarray, out: np.ndarray, i: int) -> None:
        small_h, small_w = sizes[i]
        if _opencv_agrees(h, small_h) and _opencv_agrees(w, small_w):
            tiny = cv2.resize(plane, (small_w, small_h), interpolation=cv2.INTER_NEAREST)
            cv2.resize(tiny, (w, h), dst=out, interpolation=cv2.INTER_NEAREST)
        else:
            rows = _nearest_down_up(h, small_h, torch.device("cpu")).numpy()
            cols = _nearest_down_up(w, small_w, torch.device("cpu")).numpy()
            out[...] = plane[rows[:, None], cols]

    return _cpu.map_planes(x, one)


def pixelate(x: torch.Tensor, strength: ParamLike) -> torch.Tensor:
    """Nearest-neighbour down-scaling by z = 0.95 - strength^0.6 and back up.

    Samples of one strength share one gather of rows and one of columns (on the CPU: each image
    plane through OpenCV's nearest resizing where it picks exactly the same pixels, which is checked).

    Shape:
        x: (B, 3, H, W); strength: () or (B,); output: (B, 3, H, W).
    """
    h, w = x.shape[-2:]
    keys = []
    for s in batch_values(strength, x, "strength"):
        z = 0.95 - s**0.6
        keys.append((max(1, int(h * z)), max(1, int(w * z))))

    if _cpu.use(x):
        return _pixelate_cpu(x, keys)

    def run(sub: torch.Tensor, _idx: list[int], key: tuple[int, int]) -> torch.Tensor:
        rows, cols = _nearest_down_up(h, key[0], x.device), _nearest_down_up(w, key[1], x.device)
        return sub.index_select(2, rows).index_select(3, cols)

    return map_groups(x, keys, run)


def quantization(x: torch.Tensor, levels: ParamLike) -> torch.Tensor:
    """Uniform quantisation of each channel into ``levels`` bins, each represented by its centre.

    ARNIQA (and KADID's generator) output the bin *index*, min-max stretched per image; that
    stretch also shifts brightness by an amount that does not grow with the level, so the error
    is not monotone in ``levels``. Bin centres keep the distortion a pure quantisation.

    Shape:
        x: (B, 3, H, W); levels: () or (B,) integers; output: (B, 3, H, W).
    """
    n = batch_scale(levels, x, "levels").round()
    q = torch.minimum(torch.floor(x * n), n - 1.0)
    return (q + 0.5) / n


def color_block(x: torch.Tensor, blocks: ParamLike, generators: Generators, side: int = 32) -> torch.Tensor:
    """Paste ``blocks`` squares of ``side`` px, each of one uniformly random colour, at random places.

    Shape:
        x: (B, 3, H, W); blocks: () or (B,) integers; generators: B; output: (B, 3, H, W).
    """
    check_generators(generators, x)
    _, _, h, w = x.shape
    p = _patch_side(x, side)
    counts = [int(round(n)) for n in batch_values(blocks, x, "blocks")]
    out = x.clone()
    for i, rows in enumerate(_uniform_rows(generators, counts, 5)):
        for u in rows:
            y, x0 = _corner(u[0], h - p), _corner(u[1], w - p)
            out[i, :, y : y + p, x0 : x0 + p] = torch.tensor(u[2:], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return out


def resize(x: torch.Tensor, scale: ParamLike, method: ParamLike) -> torch.Tensor:
    """Down-scale by ``scale`` and back to the original size: the softness of an up-scaled image.

    ``method`` indexes :data:`RESIZE_METHODS` (0 bilinear, 1 bicubic, 2 area) for the down-scaling,
    which is anti-aliased; the up-scaling is bicubic for bicubic and bilinear otherwise.

    Shape:
        x: (B, 3, H, W); scale: () or (B,) in (0, 1]; method: () or (B,) integers; output: (B, 3, H, W).
    """
    h, w = x.shape[-2:]
    keys = []
    for s, m in zip(batch_values(scale, x, "scale"), batch_values(method, x, "method")):
        keys.append((max(1, round(h * s)), max(1, round(w * s)), RESIZE_METHODS[int(m)]))

    def run(sub: torch.Tensor, _idx: list[int], key: tuple[int, int, str]) -> torch.Tensor:
        small_h, small_w, name = key
        antialias = name != "area"
        small = F.interpolate(sub, size=(small_h, small_w), mode=name, antialias=antialias,
                              **({} if name == "area" else {"align_corners": False}))
        up = "bicubic" if name == "bicubic" else "bilinear"
        return F.interpolate(small, size=(h, w), mode=up, align_corners=False).clamp(0.0, 1.0)

    return map_groups(x, keys, run)
