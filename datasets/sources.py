"""Pristine image sources: folders of images, the built-in photos, procedural content, and mixtures.

``open_source(spec)`` reads a source specification:

* ``samples``: the built-in photos (``degrade.samples``);
* ``textures``: scikit-image's grey brick, grass and gravel textures and its cell micrograph
  (``degrade.samples.TEXTURES``): surfaces without a scene;
* ``synthetic[:COUNT[:SEED]]``: ``COUNT`` procedural images (default 1000, seed 0; see
  ``datasets.synthetic``), rendered on demand at the crop size;
* any other text: a folder, scanned recursively;
* several of these joined by commas, each optionally ``=WEIGHT``: a mixture in which a group's
  content comes from each part with that probability (default: in proportion to the part's size),
  e.g. ``samples=0.3,synthetic:5000=0.7``.

Images come back as uint8 RGB tensors (3, H, W) through ``datasets.decoding`` (regular files
inside the folder only, bounded bytes and pixels). A file that cannot be decoded is put in
quarantine with its path and the reason, and the run goes on; so is an image smaller than the
crops it must provide, and so is every file a folder scan leaves out (hidden files, links that
leave the folder, FIFOs and other non-regular files, unknown suffixes), in ``skipped``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from degrade.samples import SAMPLE_PHOTOS, TEXTURES, sample_path

from . import synthetic
from .decoding import ImageError, check_file, read

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SYNTHETIC_SIDE = 256


@dataclass(frozen=True)
class SourceImage:
    """One candidate image.

    Attributes:
        id: stable and unique within its source: the relative path *with* its suffix for a folder
            (``a.jpg`` and ``a.png`` are two contents), the name for a built-in photo,
            ``synthetic/<seed>/<index>`` for procedural content.
        path: the file, or None for procedural content.
        uri: how a worker loads it again (the path, or ``synthetic://seed/index``).
        part: index of the mixture part it belongs to.
        root: the folder every read of it must stay inside (its source folder, or the built-in
            photos' folder); None for procedural content.
        cite: how metadata names it: the path relative to its folder, ``samples/<file>`` for a
            built-in photo, the id for procedural content.
    """

    id: str
    path: Path | None
    uri: str
    part: int = 0
    root: Path | None = None
    cite: str = ""


@dataclass(frozen=True)
class Rejected:
    """An input left out, and why. ``kind``: ``"unreadable"``, ``"too_small"`` or ``"skipped"``;
    ``cite``: how metadata names it (as :attr:`SourceImage.cite`)."""

    path: str
    reason: str
    kind: str = "unreadable"
    cite: str = ""


def load_uri(uri: str, *, root: str | os.PathLike | None = None, size: int = SYNTHETIC_SIDE) -> torch.Tensor:
    """The uint8 (3, H, W) image behind a :attr:`SourceImage.uri` (synthetic images at ``size``)."""
    if uri.startswith("synthetic://"):
        seed, index = (int(v) for v in uri.removeprefix("synthetic://").split("/"))
        return synthetic.render(seed, index, size)
    return read(uri, root=root)


class Source:
    """An ordered collection of pristine images; subclasses say which images they hold.

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

    def weights(self) -> list[float]:
        """The probability that a group's content comes from each part (one part unless mixed)."""
        return [1.0]

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
            image = load_uri(item.uri, root=item.root, size=self.min_side or SYNTHETIC_SIDE)
        except ImageError as error:
            return self._reject(item, str(error).removeprefix(f"{item.uri}: "), "unreadable")
        h, w = image.shape[-2:]
        if min(h, w) < self.min_side:
            return self._reject(item, f"{w}x{h} is smaller than the {self.min_side} px crop", "too_small")
        return image

    def _reject(self, item: SourceImage, reason: str, kind: str) -> None:
        self._bad.add(item.id)
        self.rejected.append(Rejected(str(item.path or item.uri), reason, kind, item.cite))
        return None


class FolderSource(Source):
    """Every image file under ``root`` (recursive), in sorted order of relative path.

    Files are matched by suffix (jpg, jpeg, png, bmp, webp, tif, tiff; any case). Hidden files
    and folders, symbolic links that leave ``root`` (or dangle, or loop), FIFOs and other
    non-regular files are left out and listed in ``rejected`` (kind ``"skipped"``) with the reason.
    """

    name = "folder"

    def __init__(self, root: str | os.PathLike, min_side: int = 0) -> None:
        super().__init__(min_side)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: not a folder of images")
        self._items: list[SourceImage] | None = None

    def _skip(self, path: Path, reason: str) -> None:
        self.rejected.append(Rejected(str(path), reason, "skipped", path.relative_to(self.root.resolve()).as_posix()))

    def items(self) -> list[SourceImage]:
        if self._items is None:
            root = self.root.resolve()
            found = []
            for folder, dirs, files in os.walk(root):
                for d in sorted(dirs):
                    if d.startswith("."):
                        self._skip(Path(folder) / d, "hidden folder")
                    elif (Path(folder) / d).is_symlink():
                        self._skip(Path(folder) / d, "symbolic link to a folder (not followed)")
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(folder) / d).is_symlink())
                for file in sorted(files):
                    path = Path(folder) / file
                    if file.startswith("."):
                        self._skip(path, "hidden file")
                        continue
                    if path.suffix.lower() not in IMAGE_SUFFIXES:
                        self._skip(path, f"not an image suffix ({', '.join(IMAGE_SUFFIXES)})")
                        continue
                    try:
                        check_file(path, root)
                    except ImageError as error:
                        self._skip(path, str(error).removeprefix(f"{path}: "))
                        continue
                    rel = path.relative_to(root).as_posix()
                    found.append(SourceImage(rel, path, str(path), root=root, cite=rel))
            self._items = sorted(found, key=lambda s: s.id)
        return self._items


class SampleSource(Source):
    """The built-in photographs that ship with scikit-image (see ``degrade.samples``)."""

    name = "samples"
    names = SAMPLE_PHOTOS

    def items(self) -> list[SourceImage]:
        out = []
        for name in self.names:
            path = sample_path(name)
            out.append(SourceImage(name, path, str(path), root=path.parent.resolve(), cite=f"{self.name}/{path.name}"))
        return out


class TextureSource(SampleSource):
    """scikit-image's greyscale textures and cell micrograph (``degrade.samples.TEXTURES``)."""

    name = "textures"
    names = TEXTURES


class SyntheticSource(Source):
    """``count`` procedural images of ``seed`` (``datasets.synthetic``): unlimited, offline, deterministic."""

    name = "synthetic"

    def __init__(self, count: int = 1000, seed: int = 0, min_side: int = 0) -> None:
        super().__init__(min_side)
        if count < 1:
            raise ValueError(f"synthetic:{count}: the count must be at least 1")
        self.count, self.seed = count, seed

    def items(self) -> list[SourceImage]:
        ids = (f"synthetic/{self.seed}/{i:06d}" for i in range(self.count))
        return [SourceImage(uid, None, f"synthetic://{self.seed}/{i}", cite=uid) for i, uid in enumerate(ids)]


class MixedSource(Source):
    """Several sources as one; a group draws its part by ``weights``, then an image of that part."""

    name = "mixed"

    def __init__(self, parts: Sequence[Source], weights: Sequence[float] | None = None, min_side: int = 0) -> None:
        super().__init__(min_side)
        self.parts = list(parts)
        if weights is None:
            weights = [float(len(p)) for p in self.parts]
        if len(weights) != len(self.parts) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"need one non-negative weight per part, not all zero; got {list(weights)}")
        self._weights = [w / sum(weights) for w in weights]

    def weights(self) -> list[float]:
        return list(self._weights)

    def items(self) -> list[SourceImage]:
        out, seen = [], set()
        for k, part in enumerate(self.parts):
            for item in part.items():
                uid = item.id if item.id not in seen else f"{k}:{item.id}"
                seen.add(uid)
                out.append(replace(item, id=uid, part=k))
        return out

    @property
    def rejected(self) -> list[Rejected]:  # type: ignore[override]
        return self._own + [r for p in self.parts for r in p.rejected]

    @rejected.setter
    def rejected(self, value: list[Rejected]) -> None:
        self._own = value


def _part(spec: str, min_side: int) -> Source:
    if spec == "samples":
        return SampleSource(min_side)
    if spec == "textures":
        return TextureSource(min_side)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        fields = spec.split(":")[1:]
        try:
            values = [int(v) for v in fields]
        except ValueError:
            raise ValueError(f"{spec!r}: expected synthetic[:COUNT[:SEED]] with integers") from None
        if len(values) > 2:
            raise ValueError(f"{spec!r}: expected synthetic[:COUNT[:SEED]]")
        return SyntheticSource(*values, min_side=min_side)
    return FolderSource(spec, min_side)


def open_source(spec: str | os.PathLike, min_side: int = 0) -> Source:
    """The source a specification names (see the module docstring)."""
    text = str(spec)
    if "," not in text and "=" not in text:
        return _part(text, min_side)
    parts, weights = [], []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            raise ValueError(f"{text!r}: empty part in the source list")
        name, sep, weight = piece.rpartition("=") if "=" in piece else (piece, "", "")
        try:
            weights.append(float(weight) if sep else None)
        except ValueError:
            raise ValueError(f"{piece!r}: the weight after '=' must be a number") from None
        parts.append(_part(name, min_side))
    if any(w is None for w in weights) and not all(w is None for w in weights):
        raise ValueError(f"{text!r}: give a weight to every part or to none")
    return MixedSource(parts, None if weights[0] is None else weights, min_side)
