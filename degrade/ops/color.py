"""Colour: diffusion, shift, palette quantisation and two kinds of saturation change.

x is (B, 3, H, W) RGB in [0, 1]; parameters are numbers or (B,) tensors.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F

from . import _cpu, _kernels
from ._batch import (
    ParamLike,
    batch_param,
    batch_scale,
    batch_values,
    check_generators,
    map_groups,
    per_sample_draw,
)
from ._color import lab_to_rgb, rgb_to_lab
from ._filter import filter_by_size
from ._palette import floyd_steinberg, kmeans_palette


def _gaussian(x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    return filter_by_size(x, [_kernels.gaussian_taps(s) for s in sigmas], separable=True)


def color_diffusion(x: torch.Tensor, amount: ParamLike) -> torch.Tensor:
    """Colour bleeding: Lab chroma (a, b) blurred with sigma = 1.5*amount + 2, then scaled by ``amount``.

    Shape:
        x: (B, 3, H, W); amount: () or (B,); output: (B, 3, H, W).
    """
    amounts = batch_values(amount, x, "amount")
    lab = rgb_to_lab(x)
    chroma = _gaussian(lab[:, 1:], [1.5 * a + 2.0 for a in amounts])
    chroma = chroma * batch_scale(amount, x, "amount")
    return lab_to_rgb(torch.cat([lab[:, :1], chroma], dim=1))


def _tail_values(flat: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the values with ``fraction`` of the row below / above them (nearest rank)."""
    k = max(1, math.ceil(fraction * flat.shape[1]))
    lo = flat.topk(k, dim=1, largest=False).values[:, -1]
    hi = flat.topk(k, dim=1).values[:, -1]
    return lo, hi


def _normalise(e: torch.Tensor) -> torch.Tensor:
    flat = e.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    return ((flat - lo[:, None]) / (hi - lo).clamp(min=1e-12)[:, None]).view_as(e)


def _sobel_magnitude(grey: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of (B, 1, H, W) with kornia's normalised 3x3 Sobel (replicated borders);
    on the CPU OpenCV's Sobel per plane (colour shift 1.2x faster on one thread), equal to float rounding."""
    if _cpu.use(grey):
        import cv2

        def one(plane, out, _i):
            dx = cv2.Sobel(plane, -1, 1, 0, ksize=3, scale=0.125, borderType=cv2.BORDER_REPLICATE)
            dy = cv2.Sobel(plane, -1, 0, 1, ksize=3, scale=0.125, borderType=cv2.BORDER_REPLICATE)
            cv2.magnitude(dx, dy, magnitude=out)

        return _cpu.map_planes(grey, one)
    gradient = kornia.filters.spatial_gradient(grey, mode="sobel")
    return torch.sqrt(gradient[:, :, 0] ** 2 + gradient[:, :, 1] ** 2)  # .norm(dim=2) is 30x slower here


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """Smoothed, robustly normalised gradient magnitude of the grey image, in [0, 1]; (B, 1, H, W)."""
    magnitude = _sobel_magnitude(kornia.color.rgb_to_grayscale(x))
    e = _normalise(_gaussian(magnitude, [4.0] * x.shape[0]))
    flat = e.flatten(1)
    lo, hi = _tail_values(flat, 0.01)
    return _normalise(torch.minimum(torch.maximum(flat, lo[:, None]), hi[:, None]).view_as(e))


def color_shift(x: torch.Tensor, amount: ParamLike, direction: ParamLike) -> torch.Tensor:
    """Chromatic misregistration: green shifted by ``amount`` px towards ``direction`` (degrees), at edges.

    The shifted green replaces the original in proportion to an edge map, so flat regions keep
    their colour and edges show colour fringes.

    Shape:
        x: (B, 3, H, W); amount, direction: () or (B,); output: (B, 3, H, W).
    """
    b, _, h, w = x.shape
    theta = torch.deg2rad(batch_param(direction, x, "direction"))
    shift = batch_param(amount, x, "amount")
    dx, dy = shift * torch.cos(theta), -shift * torch.sin(theta)
    ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    # sampling at p - shift moves content by +shift
    grid = torch.stack(
        [gx - (2.0 * dx / max(w - 1, 1))[:, None, None], gy - (2.0 * dy / max(h - 1, 1))[:, None, None]], dim=-1
    )
    green = x[:, 1:2]
    moved = F.grid_sample(green, grid, mode="bilinear", padding_mode="border", align_corners=True)
    e = edge_map(x)
    return torch.cat([x[:, :1], moved * e + green * (1.0 - e), x[:, 2:]], dim=1)


def color_quantization(
    x: torch.Tensor, colors: ParamLike, generators: Sequence[torch.Generator], fit_pixels: int = 4096
) -> torch.Tensor:
    """Reduce each image to a ``colors``-entry palette with Floyd-Steinberg dithering.

    Stands in for MATLAB's ``rgb2ind(I, n)`` (minimum-variance palette, dithering on): the
    palette is fitted by k-means on ``fit_pixels`` pixels drawn from each sample's generator.

    Shape:
        x: (B, 3, H, W); colors: () or (B,) integers; output: (B, 3, H, W).
    """
    check_generators(generators, x)
    b, _, h, w = x.shape
    n = min(fit_pixels, h * w)
    picks = per_sample_draw(generators, lambda g: torch.randint(h * w, (n,), generator=g, device=g.device))
    pixels = x.flatten(2).transpose(1, 2).gather(1, picks.unsqueeze(-1).expand(b, n, 3))
    counts = [int(round(c)) for c in batch_values(colors, x, "colors")]

    def run(sub: torch.Tensor, idx: list[int], k: int) -> torch.Tensor:
        palette = kmeans_palette(pixels[idx], k, [generators[i] for i in idx])
        return floyd_steinberg(sub, palette)

    return map_groups(x, counts, run)


def color_saturation_hsv(x: torch.Tensor, factor: ParamLike) -> torch.Tensor:
    """HSV saturation multiplied by ``factor``; 0 gives grey, a negative factor inverts hue.

    In HSV every channel is V * (1 - S * w(hue)), so scaling S by f (hue and value kept) is
    exactly V + f * (x - V) with V the largest channel; no round trip through HSV is needed.
    A negative factor (KADID's level 5) pushes channels beyond V, as MATLAB's ``hsv2rgb`` does.

    Shape:
        x: (B, 3, H, W); factor: () or (B,); output: (B, 3, H, W).
    """
    value = x.amax(dim=1, keepdim=True)
    return (value + batch_scale(factor, x, "factor") * (x - value)).clamp(0.0, 1.0)


def color_saturation_lab(x: torch.Tensor, factor: ParamLike) -> torch.Tensor:
    """Lab chroma (a, b) multiplied by ``factor``.

    Shape:
        x: (B, 3, H, W); factor: () or (B,); output: (B, 3, H, W).
    """
    lab = rgb_to_lab(x)
    chroma = lab[:, 1:] * batch_scale(factor, x, "factor")
    return lab_to_rgb(torch.cat([lab[:, :1], chroma], dim=1))
