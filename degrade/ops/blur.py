"""Blur: Gaussian, lens (disk), motion, anisotropic, generalised-Gaussian and ringing (sinc) kernels.

All ops take x of shape (B, 3, H, W), float in [0, 1], and per-sample parameters given as a
number or a (B,) tensor. Borders are replicated.
"""
from __future__ import annotations

import torch

from . import _kernels
from ._batch import ParamLike, batch_values
from ._filter import filter_by_size


def gaussian_blur(x: torch.Tensor, sigma: ParamLike) -> torch.Tensor:
    """Gaussian blur with KADID's kernel size 2*ceil(2*sigma)+1 (MATLAB's rule, not Kornia's 3 sigma).

    Args:
        x: images in [0, 1].
        sigma: standard deviation in pixels, per sample.

    Returns:
        The blurred images, same shape and dtype.

    Shape:
        x: (B, 3, H, W); sigma: () or (B,); output: (B, 3, H, W).

    Example:
        >>> gaussian_blur(torch.rand(2, 3, 32, 32), torch.tensor([0.5, 2.0])).shape
        torch.Size([2, 3, 32, 32])
    """
    taps = [_kernels.gaussian_taps(s) for s in batch_values(sigma, x, "sigma")]
    return filter_by_size(x, taps, separable=True)


def lens_blur(x: torch.Tensor, radius: ParamLike) -> torch.Tensor:
    """Out-of-focus blur with an anti-aliased disk (MATLAB ``fspecial('disk', radius)``).

    Shape:
        x: (B, 3, H, W); radius: () or (B,) in pixels; output: (B, 3, H, W).
    """
    kernels = [_kernels.disk(r) for r in batch_values(radius, x, "radius")]
    return filter_by_size(x, kernels)


def motion_blur(x: torch.Tensor, length: ParamLike, angle: ParamLike) -> torch.Tensor:
    """Linear motion blur along a line of ``length`` px at ``angle`` degrees (anti-aliased line kernel).

    Shape:
        x: (B, 3, H, W); length, angle: () or (B,); output: (B, 3, H, W).
    """
    lengths = batch_values(length, x, "length")
    angles = batch_values(angle, x, "angle")
    kernels = [_kernels.motion_line(n, a) for n, a in zip(lengths, angles)]
    return filter_by_size(x, kernels)


def anisotropic_blur(x: torch.Tensor, sigma: ParamLike, ratio: ParamLike, angle: ParamLike) -> torch.Tensor:
    """Rotated elliptical Gaussian blur: ``sigma`` along the major axis, ``ratio * sigma`` across it.

    Shape:
        x: (B, 3, H, W); sigma, ratio (in (0, 1]), angle (degrees): () or (B,); output: (B, 3, H, W).
    """
    kernels = [
        _kernels.anisotropic_gaussian(s, s * r, a)
        for s, r, a in zip(
            batch_values(sigma, x, "sigma"), batch_values(ratio, x, "ratio"), batch_values(angle, x, "angle")
        )
    ]
    return filter_by_size(x, kernels)


def generalized_blur(x: torch.Tensor, sigma: ParamLike, beta: ParamLike) -> torch.Tensor:
    """Isotropic generalised-Gaussian blur exp(-0.5 (r/sigma)^(2 beta)).

    ``beta`` < 1 gives a peaked, heavy-tailed kernel; ``beta`` > 1 a flat-topped plateau.

    Shape:
        x: (B, 3, H, W); sigma, beta: () or (B,); output: (B, 3, H, W).
    """
    kernels = [
        _kernels.anisotropic_gaussian(s, s, 0.0, b)
        for s, b in zip(batch_values(sigma, x, "sigma"), batch_values(beta, x, "beta"))
    ]
    return filter_by_size(x, kernels)


def ringing(x: torch.Tensor, cutoff: ParamLike) -> torch.Tensor:
    """Band-limiting with a truncated ideal low-pass (2-D sinc) filter: blur plus ringing at edges.

    Shape:
        x: (B, 3, H, W); cutoff (angular frequency in (0, pi]): () or (B,); output: (B, 3, H, W).
    """
    kernels = [_kernels.circular_lowpass(c) for c in batch_values(cutoff, x, "cutoff")]
    return filter_by_size(x, kernels).clamp(0.0, 1.0)
