"""The record type every IQA reader produces, and the logic they share: normalisation, problems, splits.

Readers only translate a native layout into calls to :class:`Builder`; checking files,
normalising scores, collecting problems and splitting by content all live here, once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path



# Published scores may overshoot their nominal range a little (LIVE's realigned DMOS does); more
# than this fraction of the range is an error in the label file.
OVERSHOOT = 0.25


class DatasetError(Exception):
    """A dataset cannot be read as laid out; the message names the file and what was expected."""


@dataclass(frozen=True)
class Scale:
    """The published score scale of a dataset.

    Attributes:
        low, high: the range of the raw score.
        higher_is_better: direction of the raw score (False for DMOS-style scores).
        kind: ``"mos"``, ``"dmos"`` or ``"elo"``.
    """

    low: float
    high: float
    higher_is_better: bool
    kind: str = "mos"

    def quality(self, score: float) -> float:
        """The raw score mapped to [0, 1] with 1 best, clipped (some published scores overshoot a little)."""
        t = (score - self.low) / (self.high - self.low)
        return min(1.0, max(0.0, t if self.higher_is_better else 1.0 - t))

    def problem(self, score: float) -> str | None:
        """Why ``score`` cannot be a score on this scale (not finite, or beyond the range by more than
        :data:`OVERSHOOT` of its width), or None."""
        if not math.isfinite(score):
            return f"score {score!r} is not a finite number"
        margin = OVERSHOOT * (self.high - self.low)
        if not self.low - margin <= score <= self.high + margin:
            return f"score {score:g} is outside the scale {self.low:g}..{self.high:g}"
        return None


@dataclass(frozen=True)
class Record:
    """One rated image.

    Attributes:
        image: path of the image file.
        score: the raw score as published.
        quality: ``score`` normalised to [0, 1], higher = better, whatever the dataset's direction.
        ref: path of the pristine reference, or None (authentic datasets).
        content: content id: the reference for synthetic datasets, the image for authentic ones.
        distortion: distortion type, where the dataset defines one.
        level: distortion level, where the dataset defines one.
        official: ``"train"``, ``"val"`` or ``"test"`` when the dataset has an official split.
    """

    image: Path
    score: float
    quality: float
    ref: Path | None
    content: str
    distortion: str | None = None
    level: int | None = None
    official: str | None = None


@dataclass(frozen=True)
class Problem:
    """Something wrong in a dataset: what kind, in which file, on which line, and details."""

    kind: str
    file: str
    line: int | None
    detail: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.kind.replace('_', ' ')}: {self.detail}"


class Table(Sequence[Record]):
    """The records of one dataset, with its scale and the problems met while reading it."""

    def __init__(
        self, dataset: str, root: Path, scale: Scale, records: Sequence[Record], problems: Sequence[Problem] = ()
    ) -> None:
        self.dataset = dataset
        self.root = root
        self.scale = scale
        self.records = tuple(records)
        self.problems = tuple(problems)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return self.subset(range(len(self.records))[index])
        return self.records[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __repr__(self) -> str:
        return f"Table({self.dataset!r}, {len(self)} records, {len(self.contents())} contents)"

    def subset(self, indices: Sequence[int]) -> Table:
        return Table(self.dataset, self.root, self.scale, [self.records[i] for i in indices], self.problems)

    def contents(self) -> list[str]:
        """Distinct content ids, sorted."""
        return sorted({r.content for r in self.records})

    @property
    def has_official_split(self) -> bool:
        return any(r.official for r in self.records)

    def splits(
        self, n: int = 10, seed: int = 0, train: float = 0.8, val: float = 0.0, official: bool | None = None
    ) -> list[Split]:
        """``n`` seeded train/val/test splits that never put one content on two sides.

        Contents (references for synthetic datasets, images for authentic ones) are ordered by
        a hash of (seed, split index, content id), so the same seed gives the same splits on
        every machine and Python version. ``train`` and ``val`` are fractions of the contents;
        the rest is test. Where the dataset has an official split (KonIQ-10k) it is returned
        instead, as the only split, unless ``official=False``.
        """
        if not 0 < train < 1 or not 0 <= val < 1 or train + val >= 1:
            raise ValueError(f"need 0 < train, 0 <= val and train + val < 1; got train={train}, val={val}")
        if official is None:
            official = self.has_official_split
        if official:
            if not self.has_official_split:
                raise ValueError(f"{self.dataset} has no official split")
            part = {k: [i for i, r in enumerate(self.records) if r.official == k] for k in ("train", "val", "test")}
            return [Split(0, self.subset(part["train"]), self.subset(part["val"]), self.subset(part["test"]))]
        contents = self.contents()
        if len(contents) < 2:
            raise ValueError(f"{self.dataset}: {len(contents)} content(s) cannot be split")
        result = []
        for k in range(n):
            side = split_contents(contents, seed, k, train, val)
            pick = {s: [i for i, r in enumerate(self.records) if side[r.content] == s] for s in ("train", "val", "test")}
            result.append(Split(k, self.subset(pick["train"]), self.subset(pick["val"]), self.subset(pick["test"])))
        return result

    def folds(self, n: int = 10, seed: int = 0, train: float = 0.8, val: float = 0.0) -> dict[str, list[str]]:
        """For each content id, its side (``"train"``/``"val"``/``"test"``) in each of the ``n`` splits."""
        sides: dict[str, list[str]] = {c: [] for c in self.contents()}
        for split in self.splits(n, seed, train, val, official=False):
            for name, part in (("train", split.train), ("val", split.val), ("test", split.test)):
                for content in part.contents():
                    sides[content].append(name)
        return sides


def split_contents(contents: Sequence[str], seed: int, index: int, train: float, val: float = 0.0) -> dict[str, str]:
    """The side (``train``/``val``/``test``) of each content in split ``index`` of ``seed``.

    Contents are ordered by sha256 of (seed, index, id): the same on every machine and version, and
    the same as in every earlier release (published splits stay reproducible).
    At least one content goes to train and one to test.
    """
    order = sorted(set(contents), key=lambda c: hashlib.sha256(f"{seed}/{index}/{c}".encode()).digest())
    n_train = min(len(order) - 1, max(1, round(train * len(order))))
    n_val = min(len(order) - 1 - n_train, round(val * len(order)))
    side = dict.fromkeys(order, "test")
    side.update(dict.fromkeys(order[:n_train], "train"))
    side.update(dict.fromkeys(order[n_train : n_train + n_val], "val"))
    return side


@dataclass(frozen=True)
class Split:
    """One split of a table; ``val`` is empty unless asked for."""

    index: int
    train: Table
    val: Table
    test: Table


class Folder:
    """File lookup inside one folder, optionally case-insensitive (for datasets that mix cases)."""

    def __init__(self, path: Path, ignore_case: bool = False) -> None:
        self.path = path
        self.ignore_case = ignore_case
        self._names: dict[str, str] | None = None

    def find(self, name: str) -> Path:
        """The path of ``name`` in this folder; if not found, the path as named (so it is reported missing)."""
        if not self.ignore_case:
            return self.path / name
        if self._names is None:
            try:
                self._names = {n.lower(): n for n in os.listdir(self.path)}
            except OSError:
                self._names = {}
        return self.path / self._names.get(name.lower(), name)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{path}: missing {what}")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: missing {what} folder")
    return path


def read_text(path: Path) -> str:
    """A label file's text: UTF-8 (a byte-order mark is dropped) or UTF-16 with its byte-order mark.

    Raises:
        DatasetError: naming the file, when it is neither.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error.strerror or error})") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not a text file in UTF-8 or UTF-16 (byte {error.start} cannot be decoded); "
                           "save it as UTF-8") from None


def read_csv(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV file as (line number, row), after checking that ``columns`` are in its header."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; the header has {header}")
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, row


def parse_float(text: object) -> float:
    value = float(str(text).strip())
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


class Builder:
    """Collects a reader's records and problems, then makes the table.

    Checks every image exists (without opening it), catches duplicates and records each
    problem with its file and line. In strict mode :meth:`table` refuses a dataset with any
    problem; in lenient mode problem rows are left out and listed in ``table.problems``.
    """

    def __init__(self, dataset: str, root: Path, scale: Scale, strict: bool = True) -> None:
        self.dataset, self.root, self.scale, self.strict = dataset, root, scale, strict
        self._root = (root if root.is_dir() else root.parent).resolve()
        self.records: list[Record] = []
        self.problems: list[Problem] = []
        self._seen: set[Path] = set()

    def problem(self, kind: str, file: Path | str, line: int | None, detail: str) -> None:
        self.problems.append(Problem(kind, str(file), line, detail))

    def _outside(self, path: Path) -> str | None:
        """Why ``path`` leaves the dataset's folder (``..``, an absolute path, a link out of it), or None."""
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):
            return "is a symbolic link loop"
        if not resolved.is_relative_to(self._root):
            return f"resolves to {resolved}, outside the dataset folder {self._root}"
        return None

    def add(
        self,
        image: Path,
        score: float,
        *,
        content: str,
        ref: Path | None = None,
        distortion: str | None = None,
        level: int | None = None,
        official: str | None = None,
        source: tuple[Path | str, int | None] = ("", None),
    ) -> None:
        file, line = source
        if image in self._seen:
            self.problem("duplicate_row", file, line, f"{image.name} is listed more than once; the first is kept")
            return
        invalid = self.scale.problem(score)
        if invalid is not None:
            self.problem("invalid_score", file, line, f"{image.name}: {invalid}")
            return
        for path, what in ((image, "image"), (ref, "reference")):
            if path is None:
                continue
            outside = self._outside(path)
            if outside:
                self.problem("outside_dataset", file, line, f"{what} {path} {outside}; refused")
                return
        if not image.is_file():
            self.problem("missing_image", file, line, f"{image} does not exist")
            return
        if ref is not None and not ref.is_file():
            self.problem("missing_reference", file, line, f"{ref} (reference of {image.name}) does not exist")
            return
        self._seen.add(image)
        quality = self.scale.quality(score)
        self.records.append(Record(image, score, quality, ref, content, distortion, level, official))

    def table(self) -> Table:
        if self.strict and self.problems:
            shown = "\n  ".join(str(p) for p in self.problems[:10])
            more = f"\n  ... and {len(self.problems) - 10} more" if len(self.problems) > 10 else ""
            raise DatasetError(
                f"{self.dataset} at {self.root}: {len(self.problems)} problem(s):\n  {shown}{more}\n"
                "Fix the files, or load with strict=False to skip these rows "
                f"(`python -m datasets.iqa inspect {self.dataset} {self.root}` lists them all)."
            )
        if not self.records:
            raise DatasetError(f"{self.dataset} at {self.root}: no usable records")
        return Table(self.dataset, self.root, self.scale, self.records, self.problems)
