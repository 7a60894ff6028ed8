"""Validation of images at the public boundary of the engine."""
from __future__ import annotations

import torch

RANGE_TOLERANCE = 1e-4


def as_image_batch(x: object) -> tuple[torch.Tensor, bool]:
    """Check that ``x`` is a float RGB image or batch in [0, 1]; return it as (B, 3, H, W).

    Returns:
        The batch, and whether the input was a single (3, H, W) image.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected a torch.Tensor, got {type(x).__name__}; convert arrays with degrade.io.to_tensor"
        )
    if not x.is_floating_point():
        raise TypeError(f"images must be floating point in [0, 1], got dtype {x.dtype}; use x.float() / 255")
    single = x.ndim == 3
    if single:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"expected an image (3, H, W) or a batch (B, 3, H, W), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    if channels != 3:
        hint = {
            1: "grayscale: repeat the channel, e.g. x.expand(-1, 3, -1, -1)",
            4: "RGBA: drop the alpha channel, e.g. x[:, :3]",
        }.get(channels, "channels must come before height and width (B, 3, H, W)")
        raise ValueError(f"expected 3 RGB channels in dimension 1, got shape {tuple(x.shape)}; {hint}")
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"empty batch or image: shape {tuple(x.shape)}")
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if not (lo >= -RANGE_TOLERANCE and hi <= 1.0 + RANGE_TOLERANCE):
        raise ValueError(
            f"image values must lie in [0, 1], got min {lo:.4g} and max {hi:.4g}"
            + ("; images in [0, 255] need x / 255" if hi > 1.5 else "")
        )
    if lo < 0.0 or hi > 1.0:
        x = x.clamp(0.0, 1.0)
    return x, single
