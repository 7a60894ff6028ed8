"""Compression: JPEG (libjpeg, or Kornia's differentiable model), JPEG 2000 and WebP.

The real codecs run through OpenCV on the CPU whatever the device of the batch: images are
rounded to 8 bits, encoded, decoded and moved back. They are exact (bit-identical to saving the
image with the same codec) but not differentiable; ``jpeg_differentiable`` is the variant for
training graphs.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import kornia
import numpy as np
import torch

from . import _cpu
from ._batch import ParamLike, batch_param, batch_values


def per_image_uint8(x: torch.Tensor, fn: Callable[..., np.ndarray], *columns: Sequence) -> torch.Tensor:
    """``fn(bgr_uint8_image, *values) -> bgr_uint8_image`` on every image of a batch, on the engine's pool.

    Each thread converts its own image to 8-bit BGR (rounding half up, as a saved image would)
    and its result back to float RGB, straight into the output: no batch-wide copies.
    """
    source = x.detach().to("cpu").contiguous()
    out = torch.empty_like(source)
    planes = source.numpy()
    scale = planes.dtype.type(255.0)

    def one(i: int) -> None:
        # numpy and OpenCV on whole planes: several times faster than small torch ops per image
        level = planes[i] * scale
        level += 0.5
        u8 = np.clip(level, 0, 255, out=level).astype(np.uint8)  # floor(x * 255 + 0.5): round half up
        result = fn(cv2.merge([u8[2], u8[1], u8[0]]), *(column[i] for column in columns))
        for c, plane in enumerate(reversed(cv2.split(result))):  # BGR -> R, G, B
            out[i, c].copy_(torch.from_numpy(plane))
        out[i].div_(255.0)

    _cpu.run(one, source.shape[0])
    return out.to(x.device)


def _roundtrip(
    x: torch.Tensor, ext: str, flags: Callable[[float], list[int]], values: list[float], min_side: int = 1
) -> torch.Tensor:
    """Encode and decode each image; images smaller than ``min_side`` are edge-padded, then cropped back."""
    h, w = x.shape[-2:]
    pad_h, pad_w = max(0, min_side - h), max(0, min_side - w)

    def one(image: np.ndarray, value: float) -> np.ndarray:
        if pad_h or pad_w:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        ok, buffer = cv2.imencode(ext, image, flags(value))
        if not ok:
            raise RuntimeError(f"OpenCV could not encode a {image.shape[1]}x{image.shape[0]} image as {ext}")
        return cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:h, :w]

    return per_image_uint8(x, one, values)


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
