"""Image files and arrays to engine tensors and back (RGB, float in [0, 1], (3, H, W))."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

# Colour (grey expanded, alpha dropped), native bit depth, EXIF orientation applied.
_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH


def decode_image(data: bytes | np.ndarray, name: str = "image") -> torch.Tensor:
    """Decode encoded image bytes to a (3, H, W) float tensor in [0, 1].

    Grey images are expanded to RGB, an alpha channel is dropped (not composited), 16-bit
    images are scaled to [0, 1] and EXIF orientation is applied.

    Raises:
        ValueError: naming ``name``, when the bytes are empty or not a decodable image.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.size == 0:
        raise ValueError(f"{name}: empty file")
    image = cv2.imdecode(buffer, _READ_FLAGS)
    if image is None:
        raise ValueError(f"{name}: not a decodable image (truncated, corrupt or unsupported format)")
    return to_tensor(image, bgr=True)


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as a (3, H, W) float tensor in [0, 1] (see :func:`decode_image`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return decode_image(np.fromfile(path, dtype=np.uint8), str(path))


def _rgb(array: np.ndarray, bgr: bool) -> np.ndarray:
    """An (H, W) or (H, W, 1|3|4) array as (H, W, 3) RGB: grey expanded, alpha dropped."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1, 3, 4; got shape {array.shape}")
    array = array[:, :, :3]
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return array[:, :, ::-1] if bgr else array


def _scale(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise TypeError(f"unsupported image dtype {dtype}")


def to_tensor(array: np.ndarray, bgr: bool = False) -> torch.Tensor:
    """An (H, W), (H, W, 1|3|4) array (uint8, uint16 or float in [0, 1]) to a (3, H, W) float tensor."""
    rgb = _rgb(array, bgr)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb).astype(np.float32) / np.float32(_scale(rgb.dtype)))
    return tensor.permute(2, 0, 1).contiguous()


def to_uint8_rgb(array: np.ndarray, bgr: bool = False) -> np.ndarray:
    """The same conversion as :func:`to_tensor`, to an (H, W, 3) uint8 RGB array (16-bit rounded to 8)."""
    rgb = _rgb(array, bgr)
    if rgb.dtype != np.uint8:
        scale = 255.0 / _scale(rgb.dtype)
        rgb = np.clip(np.rint(rgb.astype(np.float32) * np.float32(scale)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A (3, H, W) float tensor in [0, 1] to an (H, W, 3) uint8 RGB array (rounded)."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got shape {tuple(x.shape)}")
    u8 = (x.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return u8.permute(1, 2, 0).cpu().numpy()


def encode_png(x: torch.Tensor | np.ndarray, compression: int = 3) -> bytes:
    """Lossless PNG bytes of a (3, H, W) float tensor or an (H, W, 3) uint8 RGB array."""
    rgb = to_uint8(x) if isinstance(x, torch.Tensor) else x
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def write_image(path: str | os.PathLike, x: torch.Tensor) -> None:
    """Write a (3, H, W) float tensor as an 8-bit image; the format follows the suffix (lossless for .png)."""
    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    rgb = to_uint8(x)
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot write {suffix} files")
    path.write_bytes(buffer.tobytes())
