"""Brightness: tone-curve brightening and darkening, and a constant mean shift.

x is (B, 3, H, W) RGB in [0, 1]; parameters are numbers or (B,) tensors.
"""
from __future__ import annotations

import torch

from ._batch import ParamLike, batch_param, batch_scale
from ._color import lab_to_rgb, midpoint_curve, rgb_to_lab


def brighten(x: torch.Tensor, amount: ParamLike) -> torch.Tensor:
    """Brighten with the tone curve through (0,0), (0.5, 0.5 + amount/2), (1,1).

    The curve is applied to RGB and to Lab lightness; the result mixes them 2:1 (RGB:Lab),
    as KADID's generator does.

    Shape:
        x: (B, 3, H, W); amount: () or (B,); output: (B, 3, H, W).
    """
    midpoint = 0.5 + batch_param(amount, x, "amount") / 2.0
    via_rgb = midpoint_curve(x, midpoint)
    lab = rgb_to_lab(x)
    lightness = 100.0 * midpoint_curve(lab[:, :1] / 100.0, midpoint)
    via_lab = lab_to_rgb(torch.cat([lightness, lab[:, 1:]], dim=1))
    return (2.0 * via_rgb + via_lab) / 3.0


def darken(x: torch.Tensor, amount: ParamLike) -> torch.Tensor:
    """Darken with the tone curve through (0,0), (0.5, 0.5 - amount/2), (1,1), applied to RGB.

    Shape:
        x: (B, 3, H, W); amount: () or (B,); output: (B, 3, H, W).
    """
    return midpoint_curve(x, 0.5 - batch_param(amount, x, "amount") / 2.0)


def mean_shift(x: torch.Tensor, offset: ParamLike) -> torch.Tensor:
    """Add a constant ``offset`` to every value, clipped to [0, 1].

    Shape:
        x: (B, 3, H, W); offset: () or (B,); output: (B, 3, H, W).
    """
    return (x + batch_scale(offset, x, "offset")).clamp(0.0, 1.0)
