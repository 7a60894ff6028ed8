"""Pristine image sources: folders of images and the built-in photos, validated on first use.

Images come back as uint8 RGB tensors (3, H, W): grey images are expanded to RGB, an alpha
channel is dropped (not composited onto a background), 16-bit images are scaled to 8 bits and
EXIF orientation is applied. A file that cannot be decoded is put in quarantine with its path
and the reason, and the run goes on; so is an image smaller than the crops it must provide.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from degrade.io import decode_image
from degrade.samples import SAMPLE_PHOTOS, sample_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class SourceImage:
    """One candidate image: a stable id (relative path without suffix) and where it lives."""

    id: str
    path: Path


@dataclass(frozen=True)
class Rejected:
    """An image left out, and why. ``kind`` is ``"unreadable"`` or ``"too_small"``."""

    path: str
    reason: str
    kind: str = "unreadable"


def _looks_complete(data: bytes, suffix: str) -> bool:
    """Cheap end-of-stream checks that catch truncation some decoders forgive."""
    tail = data[-1024:].rstrip(b"\x00\r\n ")
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8":
        return tail.endswith(b"\xff\xd9")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" in tail
    return True


def decode_checked(data: bytes, name: str) -> torch.Tensor:
    """Decode image bytes to a uint8 (3, H, W) tensor, refusing empty, truncated or undecodable data.

    Raises:
        ValueError: naming ``name`` and the problem.
    """
    if not data:
        raise ValueError(f"{name}: empty file")
    if not _looks_complete(data, Path(name).suffix.lower()):
        raise ValueError(f"{name}: truncated file (no end-of-image marker)")
    image = decode_image(np.frombuffer(data, dtype=np.uint8), name)
    return (image * 255.0).round().to(torch.uint8)


class Source:
    """An ordered collection of pristine images; subclasses only say which files they hold.

    Args:
        min_side: images whose shorter side is below this are rejected as ``too_small``.

    Attributes:
        rejected: every image left out so far, with the reason.
    """

    name = "source"

    def __init__(self, min_side: int = 0) -> None:
        self.min_side = min_side
        self.rejected: list[Rejected] = []
        self._bad: set[str] = set()

    def items(self) -> list[SourceImage]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[SourceImage]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.items())

    @property
    def quarantine(self) -> list[Rejected]:
        """The files that could not be decoded."""
        return [r for r in self.rejected if r.kind == "unreadable"]

    def load(self, item: SourceImage) -> torch.Tensor | None:
        """The image as uint8 (3, H, W), or None when it is rejected (the reason is recorded once)."""
        if item.id in self._bad:
            return None
        try:
            image = decode_checked(item.path.read_bytes(), str(item.path))
        except (OSError, ValueError) as error:
            return self._reject(item, str(error).removeprefix(f"{item.path}: "), "unreadable")
        h, w = image.shape[-2:]
        if min(h, w) < self.min_side:
            return self._reject(item, f"{w}x{h} is smaller than the {self.min_side} px crop", "too_small")
        return image

    def _reject(self, item: SourceImage, reason: str, kind: str) -> None:
        self._bad.add(item.id)
        self.rejected.append(Rejected(str(item.path), reason, kind))
        return None


class FolderSource(Source):
    """Every image file under ``root`` (recursive), in sorted order of relative path.

    Files are matched by suffix (jpg, jpeg, png, bmp, webp, tif, tiff; any case); hidden files
    and folders are skipped; symbolic links are not followed out of ``root``.
    """

    name = "folder"

    def __init__(self, root: str | os.PathLike, min_side: int = 0) -> None:
        super().__init__(min_side)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: not a folder of images")
        self._items: list[SourceImage] | None = None

    def items(self) -> list[SourceImage]:
        if self._items is None:
            root = self.root.resolve()
            found = []
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for file in files:
                    path = Path(folder) / file
                    if file.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                        continue
                    if not path.resolve().is_relative_to(root):
                        continue
                    found.append(SourceImage(path.relative_to(root).with_suffix("").as_posix(), path))
            self._items = sorted(found, key=lambda s: s.path.relative_to(root).as_posix())
        return self._items


class SampleSource(Source):
    """The built-in photographs that ship with scikit-image (see ``degrade.samples``)."""

    name = "samples"

    def items(self) -> list[SourceImage]:
        return [SourceImage(name, sample_path(name)) for name in SAMPLE_PHOTOS]


def open_source(spec: str | os.PathLike, min_side: int = 0) -> Source:
    """``"samples"`` for the built-in photos, otherwise a folder path."""
    if str(spec) == "samples":
        return SampleSource(min_side)
    return FolderSource(spec, min_side)


def _generator(seed: int, image_id: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def crop_boxes(height: int, width: int, size: int, n: int, seed: int, image_id: str) -> list[tuple[int, int]]:
    """``n`` top-left corners of ``size`` x ``size`` crops, reproducible from (seed, image id) alone."""
    if size > min(height, width):
        raise ValueError(f"{image_id}: a {size} px crop does not fit in {width}x{height}")
    g = _generator(seed, image_id)
    tops = torch.randint(0, height - size + 1, (n,), generator=g).tolist()
    lefts = torch.randint(0, width - size + 1, (n,), generator=g).tolist()
    return list(zip(tops, lefts))


def sample_crops(image: torch.Tensor, size: int, n: int, seed: int, image_id: str) -> list[torch.Tensor]:
    """``n`` random ``size`` x ``size`` crops of a (C, H, W) image (see :func:`crop_boxes`)."""
    boxes = crop_boxes(image.shape[-2], image.shape[-1], size, n, seed, image_id)
    return [image[:, top : top + size, left : left + size] for top, left in boxes]
