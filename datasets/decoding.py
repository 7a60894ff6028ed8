"""Reading image files safely: regular files inside their folder, bounded bytes and pixels, no silent truncation.

Every reader in the toolkit (pristine sources, IQA tables, shards, prediction) decodes through
:func:`decode` or :func:`read`, so one image can never cost more than the limits below:

* ``max_bytes`` (default 512 MiB): larger files are refused before they are read;
* ``max_pixels`` (default 100 megapixels, :data:`MAX_PIXELS`): the dimensions are read from the
  file's header first, and an image above the limit is refused *before* it is decoded (a
  decompression bomb, e.g. a 1 MB PNG of 20000 x 20000 pixels, costs nothing); set it per call,
  or for the process with :func:`set_limits` or the ``DRI_MAX_PIXELS`` environment variable;
* ``max_side``: a JPEG larger than needed is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's
  DCT scaling), so a 50-megapixel photo costs a fraction of its full decode.

Images come back as uint8 RGB tensors (3, H, W): grey is expanded to RGB, alpha is dropped (not
composited), 16-bit is scaled to 8 bits and EXIF orientation is applied.
"""
from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from degrade.io import to_uint8_rgb

MAX_PIXELS = int(os.environ.get("DRI_MAX_PIXELS", 100_000_000))
MAX_BYTES = 512 * 2**20
_READ = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


class ImageError(ValueError):
    """An image that cannot or must not be read; the message names the file and the reason."""


def set_limits(max_pixels: int | None = None, max_bytes: int | None = None) -> None:
    """Change the process-wide defaults of :func:`decode` and :func:`read`."""
    global MAX_PIXELS, MAX_BYTES
    if max_pixels is not None:
        MAX_PIXELS = int(max_pixels)
    if max_bytes is not None:
        MAX_BYTES = int(max_bytes)


def probe(data: bytes, name: str = "image") -> tuple[int, int, str]:
    """Width, height and format from the header alone (nothing is decoded)."""
    from PIL import Image

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the limit is ours, checked by the caller
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                return int(image.width), int(image.height), str(image.format or "")
    except Exception as error:  # noqa: BLE001 - any header Pillow cannot parse
        raise ImageError(f"{name}: not a decodable image ({type(error).__name__})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _looks_complete(data: bytes) -> bool:
    """End-of-stream checks that catch truncation some decoders forgive."""
    tail = data[-1024:].rstrip(b"\x00\r\n ")
    if data[:2] == b"\xff\xd8":
        return tail.endswith(b"\xff\xd9")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" in tail
    return True


def decode(data: bytes, name: str = "image", *, max_pixels: int | None = None,
           max_side: int | None = None) -> torch.Tensor:
    """Decode image bytes to uint8 RGB (3, H, W), refusing empty, truncated, oversized or undecodable data.

    Args:
        data: the encoded file.
        name: how the image is named in errors.
        max_pixels: refuse images of more pixels (default :data:`MAX_PIXELS`).
        max_side: the size the caller will shrink the image to (longer side): a JPEG whose longer
            side is at least twice this is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT
            scaling), keeping the longer side at or above ``max_side``.

    Raises:
        ImageError: naming ``name`` and the problem.
    """
    if not data:
        raise ImageError(f"{name}: empty file")
    width, height, fmt = probe(data, name)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    if width * height > limit:
        raise ImageError(f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, above the limit of "
                         f"{limit / 1e6:.0f} (raise it with --max-pixels or DRI_MAX_PIXELS)")
    if not _looks_complete(data):
        raise ImageError(f"{name}: truncated file (no end-of-image marker)")
    flags = _READ
    if max_side and fmt == "JPEG":
        factor = max((f for f in _REDUCED if max(width, height) // f >= max_side), default=None)
        if factor:
            flags = _REDUCED[factor]
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if array is None:
        raise ImageError(f"{name}: not a decodable image (truncated, corrupt or unsupported format)")
    return torch.from_numpy(to_uint8_rgb(array, bgr=True)).permute(2, 0, 1).contiguous()


def check_file(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """``path`` if it is a regular file (symbolic links followed) inside ``root``; else :class:`ImageError`.

    A FIFO, socket or device never reaches a decoder (reading one could block forever), and a
    path that resolves outside ``root`` (``../``, an absolute path, a symbolic link leaving the
    folder) is refused.
    """
    path = Path(path)
    if root is not None:
        base = Path(root).resolve()
        try:
            resolved = path.resolve(strict=False)
        except (OSError, RuntimeError):
            raise ImageError(f"{path}: a symbolic link loop") from None
        if not resolved.is_relative_to(base):
            raise ImageError(f"{path}: resolves to {resolved}, outside {base}")
    try:
        info = path.stat()
    except FileNotFoundError:
        kind = "a dangling symbolic link" if path.is_symlink() else "no such file"
        raise ImageError(f"{path}: {kind}") from None
    except (OSError, RuntimeError) as error:
        raise ImageError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{path}: not a regular file")
    return path


def read_bytes(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
               max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file inside ``root`` (see :func:`check_file`), refused above ``max_bytes``."""
    path = check_file(path, root)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    size = path.stat().st_size
    if size > limit:
        raise ImageError(f"{path}: {size / 2**20:.0f} MiB, above the limit of {limit / 2**20:.0f} MiB")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot be read ({error.strerror or error})") from None


def read(path: str | os.PathLike, *, root: str | os.PathLike | None = None, max_pixels: int | None = None,
         max_bytes: int | None = None, max_side: int | None = None) -> torch.Tensor:
    """Read an image file (see :func:`check_file` and :func:`decode`) as uint8 RGB (3, H, W)."""
    return decode(read_bytes(path, root=root, max_bytes=max_bytes), str(path), max_pixels=max_pixels,
                  max_side=max_side)
