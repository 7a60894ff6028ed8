"""Natural-scene statistics of images, batched in PyTorch: the 36 numbers per patch of BRISQUE and NIQE.

Each image's luma (0-255) is divided into its MSCN coefficients (local mean subtracted, divided by the
local deviation plus 1; Gaussian window 7 x 7, sigma 7/6) at two scales, the second halved by 2 x 2
averaging. Per square patch (96 px at the first scale, 48 at the second) and scale, 18 statistics:
the shape and variance of a generalised Gaussian fitted to the coefficients, and the shape, mean and
left and right variances of an asymmetric generalised Gaussian fitted to their products with the
horizontal, vertical and both diagonal neighbours (moment matching, shapes on a grid of 0.001 in
[0.2, 10)). Mittal, Moorthy and Bovik, "No-reference image quality assessment in the spatial
domain", IEEE TIP 2012; Mittal, Soundararajan and Bovik, IEEE SPL 2013.

The statistics divide out what the content sets (local brightness and contrast) and keep what
distortions do to the coefficients' shape: they order compression and blur across photos where a
network trained on few photos learns the photos. No parameters; no gradient is needed through them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dre import LocalNormalize

PATCH = 96
STATISTICS = 36
_C = 1.0  # MSCN's constant on luma in [0, 255]; the window is LocalNormalize's (7 x 7, sigma 7/6)
_LOCAL = LocalNormalize(c=_C)
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as OpenCV's RGB2GRAY


def _shape_tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    shapes = torch.arange(0.2, 10.0, 0.001, dtype=torch.float64)
    g1, g2, g3 = (torch.lgamma(k / shapes) for k in (1.0, 2.0, 3.0))
    ggd = torch.exp(g1 + g3 - 2 * g2)  # E[x^2] / E[|x|]^2 of a GGD of each shape: decreasing in the shape
    aggd = torch.exp(2 * g2 - g1 - g3)  # its inverse, increasing
    return shapes, ggd, aggd


_SHAPES, _GGD_RATIO, _AGGD_RATIO = _shape_tables()


def _nearest_shape(ratio: torch.Tensor, table: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """The shape whose moment ratio in the increasing ``table`` (of ``shapes``) is nearest to ``ratio``."""
    i = torch.searchsorted(table, ratio.contiguous()).clamp(1, table.numel() - 1)
    below, above = table[i - 1], table[i]
    return shapes[torch.where((ratio - below).abs() <= (above - ratio).abs(), i - 1, i)]


def mscn(grey: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MSCN coefficients of luma (B, 1, H, W) in [0, 255], and the local deviation."""
    mu, sigma = _LOCAL.moments(grey)
    return (grey - mu) / (sigma + _C), sigma


def _ggd(x: torch.Tensor) -> torch.Tensor:
    """(..., n) samples -> (..., 2): shape and variance of a zero-mean generalised Gaussian."""
    second = x.square().mean(-1)
    ratio = second / x.abs().mean(-1).square().clamp_min(1e-12)
    return torch.stack([_nearest_shape(ratio, _GGD_RATIO.flip(0), _SHAPES.flip(0)), second], -1)


def _aggd(x: torch.Tensor) -> torch.Tensor:
    """(..., n) samples -> (..., 4): shape, mean, left and right variances of an asymmetric generalised Gaussian."""
    negative, positive = x < 0, x > 0
    left = ((x * x * negative).sum(-1) / negative.sum(-1).clamp_min(1)).sqrt()
    right = ((x * x * positive).sum(-1) / positive.sum(-1).clamp_min(1)).sqrt()
    left = torch.where(negative.any(-1), left, torch.full_like(left, 1e-6))
    right = torch.where(positive.any(-1), right, torch.full_like(right, 1e-6))
    g = left / right.clamp_min(1e-12)
    r = x.abs().mean(-1).square() / x.square().mean(-1).clamp_min(1e-12)
    ratio = r * (g**3 + 1) * (g + 1) / (g * g + 1).square()
    shape = _nearest_shape(ratio, _AGGD_RATIO, _SHAPES)
    lg1, lg2, lg3 = (torch.lgamma(k / shape) for k in (1.0, 2.0, 3.0))
    mean = (right - left) * torch.exp(0.5 * (lg1 - lg3) + lg2 - lg1)
    return torch.stack([shape, mean, left * left, right * right], -1)


def _patches(m: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, N, size, size), row by row."""
    p = m[:, 0].unfold(1, size, stride).unfold(2, size, stride)  # (B, rows, cols, size, size)
    return p.reshape(m.shape[0], -1, size, size)


def _statistics(p: torch.Tensor) -> torch.Tensor:
    """(B, N, s, s) MSCN patches -> (B, N, 18)."""
    parts = [_ggd(p.flatten(2))]
    for a, b in ((p[..., :, :-1], p[..., :, 1:]), (p[..., :-1, :], p[..., 1:, :]),
                 (p[..., :-1, :-1], p[..., 1:, 1:]), (p[..., :-1, 1:], p[..., 1:, :-1])):
        parts.append(_aggd((a * b).flatten(2)))
    return torch.cat(parts, -1)


def luma(x: torch.Tensor, whole: bool = True) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] (or grey, one channel) -> luma (B, 1, H, W) in [0, 255], float64: by
    default 8-bit, whole numbers, as the grey image these statistics were defined on; ``whole=False``
    keeps the weighted sum's fractions."""
    x = x.double() * 255
    if x.shape[1] != 1:
        x = (x * torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return x.round().clamp(0, 255) if whole else x


def patch_statistics(x: torch.Tensor, stride: int = PATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """The statistics of every whole patch of images (B, 3 or 1, H, W) in [0, 1]: (B, N, 36), and each
    patch's sharpness (its mean local deviation at the first scale): (B, N). Float64.

    Images smaller than a patch are read as one patch of their shorter side (cut to an even number).
    """
    grey = luma(x)
    size = min(PATCH, grey.shape[-2] // 2 * 2, grey.shape[-1] // 2 * 2)
    if size < 8:
        raise ValueError(f"natural-scene statistics need images of at least 8 x 8 px, got {tuple(x.shape[-2:])}")
    stride = max(2, min(stride, size) // 2 * 2)  # even, so that both scales cut the same patches
    rows, cols = (grey.shape[-2] - size) // stride, (grey.shape[-1] - size) // stride
    grey = grey[..., : rows * stride + size, : cols * stride + size]
    first, deviation = mscn(grey)
    second, _ = mscn(F.avg_pool2d(grey, 2))
    features = torch.cat([_statistics(_patches(first, size, stride)),
                          _statistics(_patches(second, size // 2, stride // 2))], -1)
    sharpness = _patches(deviation, size, stride).mean((-1, -2))
    return features, sharpness


def nss_statistics(x: torch.Tensor, stride: int = PATCH) -> torch.Tensor:
    """The mean statistics over each image's patches: (B, 3, H, W) in [0, 1] -> (B, 36), float64."""
    with torch.no_grad():
        return patch_statistics(x, stride)[0].mean(1)
