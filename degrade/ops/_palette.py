"""Palette quantisation with Floyd-Steinberg dithering, batched on any device.

The palette is fitted per image by k-means (k-means++ initialisation) on a seeded subsample
of pixels. Error diffusion is inherently sequential, but pixel (y, x) only depends on pixels
with a smaller ``x + 2y``; all pixels on one such wavefront are processed together, for every
image of the batch at once (about W + 2H steps instead of W * H).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from ._batch import per_sample_draw

# (dy, dx, weight) of Floyd-Steinberg's error distribution.
_FS = ((0, 1, 7.0 / 16.0), (1, -1, 3.0 / 16.0), (1, 0, 5.0 / 16.0), (1, 1, 1.0 / 16.0))


def kmeans_palette(
    pixels: torch.Tensor, k: int, generators: Sequence[torch.Generator], iterations: int = 12
) -> torch.Tensor:
    """Fit a k-colour palette per image.

    Args:
        pixels: (B, N, 3) colour samples.
        k: palette size.
        generators: one per image, for the k-means++ draws.
        iterations: Lloyd iterations.

    Returns:
        (B, k, 3) palettes.
    """
    b, n, _ = pixels.shape
    u = per_sample_draw(generators, lambda g: torch.rand(k, generator=g, device=g.device)).to(pixels)
    centres = pixels[:, :1].clone()
    nearest = ((pixels - centres) ** 2).sum(-1)
    for j in range(1, k):  # k-means++: next centre drawn with probability proportional to d^2
        cdf = torch.cumsum(nearest + 1e-12, dim=1)
        pick = torch.searchsorted(cdf, (u[:, j] * cdf[:, -1]).unsqueeze(1).contiguous()).clamp(max=n - 1)
        new = pixels.gather(1, pick.unsqueeze(-1).expand(b, 1, 3))
        centres = torch.cat([centres, new], dim=1)
        nearest = torch.minimum(nearest, ((pixels - new) ** 2).sum(-1))
    for _ in range(iterations):
        assign = torch.cdist(pixels, centres).argmin(dim=2)
        sums = torch.zeros_like(centres).scatter_add_(1, assign.unsqueeze(-1).expand(b, n, 3), pixels)
        counts = torch.zeros(b, k, device=pixels.device, dtype=pixels.dtype).scatter_add_(
            1, assign, torch.ones_like(assign, dtype=pixels.dtype)
        )
        centres = torch.where(counts.unsqueeze(-1) > 0, sums / counts.clamp(min=1).unsqueeze(-1), centres)
    return centres


@lru_cache(maxsize=32)
def _wavefronts(h: int, w: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]]:
    """Per wavefront: flat pixel indices, and for each diffusion target its index in the padded error map."""
    fronts = []
    pw = w + 2  # error map is padded by one column each side and one row below
    for t in range(w + 2 * (h - 1)):
        ys = torch.arange(max(0, (t - w + 2) // 2), min(h - 1, t // 2) + 1)
        xs = t - 2 * ys
        keep = (xs >= 0) & (xs < w)
        ys, xs = ys[keep], xs[keep]
        if ys.numel() == 0:
            continue
        targets = tuple((ys + dy) * pw + (xs + 1 + dx) for dy, dx, _ in _FS)
        targets = tuple(t.to(device) for t in targets)
        fronts.append(((ys * w + xs).to(device), (ys * pw + xs + 1).to(device), targets))
    return fronts


def floyd_steinberg(x: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Map every pixel to a palette colour with Floyd-Steinberg error diffusion.

    Args:
        x: (B, 3, H, W) images.
        palette: (B, K, 3) colours per image.

    Returns:
        (B, 3, H, W) images whose pixels are all palette colours.
    """
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)
    out = torch.empty_like(flat)
    err = torch.zeros(b, c, (h + 1) * (w + 2), dtype=x.dtype, device=x.device)
    pal_t = palette.transpose(1, 2)  # (B, 3, K)
    for pix, here, targets in _wavefronts(h, w, x.device):
        value = flat[:, :, pix] + err[:, :, here]
        dist = ((value.unsqueeze(-1) - pal_t.unsqueeze(2)) ** 2).sum(1)  # (B, n, K)
        choice = pal_t.gather(2, dist.argmin(-1).unsqueeze(1).expand(b, c, -1))
        out[:, :, pix] = choice
        residual = value - choice
        for target, (_, _, weight) in zip(targets, _FS):
            err[:, :, target] = err[:, :, target] + weight * residual
    return out.view(b, c, h, w)
