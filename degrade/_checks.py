"""The engine's public boundary: what image types it takes, checked once, and how results go back.

Accepted: float tensors in [0, 1], uint8 tensors (0..255) and PIL images in mode RGB; each as one
image (3, H, W) or, for tensors, a batch (B, 3, H, W). Results come back in the type they came
in: uint8 tensors and PIL images rounded to 8 bits, as a saved image would be.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

RANGE_TOLERANCE = 1e-4

Restore = Callable[[torch.Tensor], Any]


def _is_pil(x: object) -> bool:
    module = type(x).__module__
    return module.startswith("PIL.") and hasattr(x, "mode") and hasattr(x, "size")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def to_batch(x: object, check_range: bool = True) -> tuple[torch.Tensor, bool, Restore]:
    """``x`` as a float (B, 3, H, W) batch in [0, 1], whether it was one image, and how to give a
    result back in ``x``'s own type and shape. ``check_range=False`` leaves the value check of a
    float tensor to the caller (:func:`in_range`, e.g. on parts of the batch in parallel).

    Raises:
        TypeError: for other types and dtypes, saying what to pass instead.
        ValueError: for wrong shapes or values out of range, with the fix.
    """
    if _is_pil(x):
        if x.mode != "RGB":
            raise ValueError(f"PIL images must be in mode RGB, got {x.mode!r}; use image.convert('RGB')")
        import numpy as np

        array = torch.from_numpy(np.array(x, dtype=np.uint8, copy=True)).permute(2, 0, 1)
        batch, _ = as_image_batch(array.float().div_(255.0))

        def to_pil(y: torch.Tensor) -> Any:
            from PIL import Image

            return Image.fromarray(_to_uint8(y[0].detach().cpu()).permute(1, 2, 0).numpy(), "RGB")

        return batch, True, to_pil
    if isinstance(x, torch.Tensor) and x.dtype == torch.uint8:
        batch, single = as_image_batch(x.float().div(255.0))
        return batch, single, lambda y: _to_uint8(y[0] if single else y)
    batch, single = as_image_batch(x, check_range)
    return batch, single, lambda y: y[0] if single else y


def as_image_batch(x: object, check_range: bool = True) -> tuple[torch.Tensor, bool]:
    """Check that ``x`` is a float RGB image or batch in [0, 1]; return it as (B, 3, H, W).

    Returns:
        The batch, and whether the input was a single (3, H, W) image.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected a torch.Tensor or a PIL image, got {type(x).__name__}; convert arrays with "
            "degrade.io.to_tensor"
        )
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 (0..255) or floating point in [0, 1], got dtype {x.dtype}; "
                        "use x.float() / 255 for other integer types")
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
    return (in_range(x) if check_range else x), single


def in_range(x: torch.Tensor) -> torch.Tensor:
    """``x`` if its values lie in [0, 1]; clamped if they overshoot by float rounding only.

    Raises:
        ValueError: values further out, with the fix.
    """
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if not (lo >= -RANGE_TOLERANCE and hi <= 1.0 + RANGE_TOLERANCE):
        raise ValueError(
            f"image values must lie in [0, 1], got min {lo:.4g} and max {hi:.4g}"
            + ("; images in [0, 255] need x / 255 (or pass a uint8 tensor)" if hi > 1.5 else "")
        )
    if lo < 0.0 or hi > 1.0:
        x = x.clamp(0.0, 1.0)
    return x
