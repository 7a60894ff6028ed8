"""Compression: JPEG (libjpeg, or Kornia's differentiable model), JPEG 2000 and WebP.

The real codecs run through OpenCV on the CPU whatever the device of the batch: images are
rounded to 8 bits, encoded, decoded and moved back. They are exact (bit-identical to saving the
image with the same codec) but not differentiable; ``jpeg_differentiable`` is the variant for
training graphs.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import kornia
import numpy as np
import torch

from ._batch import ParamLike, batch_param, batch_values


def to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float RGB in [0, 1] to a (B, H, W, 3) uint8 BGR array (OpenCV's layout)."""
    u8 = (x.detach() * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
    return u8.flip(1).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8_hwc(images: list[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_uint8_hwc`: BGR uint8 images back to RGB floats on ``like``'s device."""
    batch = torch.from_numpy(np.stack(images)).to(like.device)
    return batch.permute(0, 3, 1, 2).flip(1).to(like.dtype) / 255.0


def _roundtrip(
    x: torch.Tensor, ext: str, flags: Callable[[float], list[int]], values: list[float], min_side: int = 1
) -> torch.Tensor:
    """Encode and decode each image; images smaller than ``min_side`` are edge-padded, then cropped back."""
    images = to_uint8_hwc(x)
    h, w = images.shape[1:3]
    pad_h, pad_w = max(0, min_side - h), max(0, min_side - w)

    def one(image: np.ndarray, value: float) -> np.ndarray:
        if pad_h or pad_w:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        ok, buffer = cv2.imencode(ext, image, flags(value))
        if not ok:
            raise RuntimeError(f"OpenCV could not encode a {image.shape[1]}x{image.shape[0]} image as {ext}")
        return cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:h, :w]

    return from_uint8_hwc(per_image(one, images, values), x)


def per_image(fn: Callable[..., np.ndarray], *columns: Sequence) -> list[np.ndarray]:
    """Map ``fn`` over images on as many threads as torch may use (OpenCV codecs release the GIL).

    A fresh pool per call keeps this safe in processes forked later (DataLoader and Ray workers).
    """
    threads = min(torch.get_num_threads(), len(columns[0]))
    if threads <= 1:
        return [fn(*args) for args in zip(*columns)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, *columns))


def jpeg(x: torch.Tensor, quality: ParamLike) -> torch.Tensor:
    """JPEG round trip through libjpeg (OpenCV; 4:2:0 chroma subsampling, standard tables).

    Shape:
        x: (B, 3, H, W); quality: () or (B,) in [1, 100]; output: (B, 3, H, W), 8-bit steps.
    """
    qualities = [int(round(q)) for q in batch_values(quality, x, "quality")]
    return _roundtrip(x, ".jpg", lambda q: [cv2.IMWRITE_JPEG_QUALITY, int(q)], qualities)


def jpeg_differentiable(x: torch.Tensor, quality: ParamLike) -> torch.Tensor:
    """Differentiable JPEG model (Kornia); close to libjpeg but not identical (about 39 dB apart at q=30).

    Shape:
        x: (B, 3, H, W); quality: () or (B,); output: (B, 3, H, W).
    """
    return kornia.enhance.jpeg_codec_differentiable(x, batch_param(quality, x, "quality"))


_JPEG2000_MIN_SIDE = 32


def jpeg2000_rate(ratio: float) -> int:
    """OpenCV's JPEG 2000 rate argument for a compression ratio: rate = 1000 / ratio, an integer.

    The realised ratio is therefore 1000 / round(1000 / ratio): exact for ratios that divide
    1000 well (16 -> 62.5 -> 63 gives 15.9) and coarse for strong compression (400 -> 3 gives 333).
    """
    return int(min(1000, max(1, math.floor(1000.0 / ratio + 0.5))))


def jpeg2000(x: torch.Tensor, ratio: ParamLike) -> torch.Tensor:
    """JPEG 2000 round trip through OpenJPEG (OpenCV) at a target compression ``ratio``.

    OpenJPEG's six resolution levels need at least 32 px per side: smaller images are
    edge-padded to 32 px for encoding (the ratio then applies to the padded image).

    Shape:
        x: (B, 3, H, W); ratio: () or (B,); output: (B, 3, H, W), 8-bit steps.
    """
    ratios = batch_values(ratio, x, "ratio")
    flags = lambda r: [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, jpeg2000_rate(r)]  # noqa: E731
    return _roundtrip(x, ".jp2", flags, ratios, min_side=_JPEG2000_MIN_SIDE)


def webp(x: torch.Tensor, quality: ParamLike) -> torch.Tensor:
    """Lossy WebP round trip through libwebp (OpenCV).

    Shape:
        x: (B, 3, H, W); quality: () or (B,) in [1, 100]; output: (B, 3, H, W), 8-bit steps.
    """
    qualities = [int(round(q)) for q in batch_values(quality, x, "quality")]
    return _roundtrip(x, ".webp", lambda q: [cv2.IMWRITE_WEBP_QUALITY, int(q)], qualities)
