"""Sharpness and contrast: over-sharpening, S-curve contrast change and contrast compression.

x is (B, 3, H, W) RGB in [0, 1]; parameters are numbers or (B,) tensors.
"""
from __future__ import annotations

import torch

from . import _kernels
from ._batch import ParamLike, batch_scale, batch_values
from ._color import lab_to_rgb, rgb_to_lab, spline_curve
from ._filter import filter_by_size

_SHARPEN_TAPS = _kernels.gaussian_taps(6.0, radius=6)  # 13 x 13 Gaussian, sigma 6
_CONTRAST_KNOTS = (0.0, 0.3, 0.5, 0.7, 1.0)


def high_sharpen(x: torch.Tensor, amount: ParamLike) -> torch.Tensor:
    """Unsharp masking of Lab lightness: L + amount * (L - G * L), G a 13x13 Gaussian of sigma 6.

    Shape:
        x: (B, 3, H, W); amount: () or (B,); output: (B, 3, H, W).
    """
    lab = rgb_to_lab(x)
    lightness = lab[:, :1]
    blurred = filter_by_size(lightness, [_SHARPEN_TAPS] * x.shape[0], separable=True)  # per plane on the CPU
    sharp = (lightness + batch_scale(amount, x, "amount") * (lightness - blurred)).clamp(0.0, 100.0)
    return lab_to_rgb(torch.cat([sharp, lab[:, 1:]], dim=1))


def contrast_change(x: torch.Tensor, a: ParamLike) -> torch.Tensor:
    """Tone curve through (0,0), (0.3, 0.25 - a/4), (0.5,0.5), (0.7, 0.75 + a/4), (1,1) (cubic spline).

    a > 0 raises contrast, a < 0 lowers it; a = 0 is a mild S-curve, not the identity.

    Shape:
        x: (B, 3, H, W); a: () or (B,); output: (B, 3, H, W).
    """
    knots_y = [(0.0, 0.25 - v / 4.0, 0.5, 0.75 + v / 4.0, 1.0) for v in batch_values(a, x, "a")]
    return spline_curve(x, _CONTRAST_KNOTS, knots_y)


def contrast_compression(x: torch.Tensor, half_range: ParamLike) -> torch.Tensor:
    """Map [0, 1] linearly onto [0.5 - v, 0.5 + v]: contrast squeezed towards mid-grey.

    ARNIQA calls this "non-linear contrast change" (``nonlincontrchange``), though the map is linear.

    Shape:
        x: (B, 3, H, W); half_range: () or (B,) in (0, 0.5]; output: (B, 3, H, W).
    """
    v = batch_scale(half_range, x, "half_range")
    return 0.5 - v + 2.0 * v * x
