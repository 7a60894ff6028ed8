"""Any dataset described by one CSV file: ``image,score[,ref]``, with a declared scale.

Paths are relative to the CSV's folder. ``content`` is the reference when there is one (so
splits keep a reference's images together), otherwise the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .table import Builder, DatasetError, Scale, parse_float, read_csv


@dataclass(frozen=True)
class Options:
    """``low`` and ``high``: the score range (required); ``higher_is_better``: its direction;
    ``file``: the CSV's name when ``root`` is its folder."""

    low: float | None = None
    high: float | None = None
    higher_is_better: bool = True
    file: str = "labels.csv"

    def __post_init__(self) -> None:
        if self.low is None or self.high is None:
            raise ValueError("the csv reader needs the score range: options low and high (e.g. low=0 high=10)")
        if not self.high > self.low:
            raise ValueError(f"the csv reader needs high > low; got low={self.low}, high={self.high}")


def read(root: Path, strict: bool, options: Options) -> Builder:
    labels = root if root.is_file() else root / options.file
    if not labels.is_file():
        raise DatasetError(f"{labels}: missing label file (a CSV with columns image,score[,ref])")
    base = labels.parent
    b = Builder("csv", base, Scale(options.low, options.high, options.higher_is_better, "mos"), strict)
    for line, row in read_csv(labels, ["image", "score"]):
        try:
            score = parse_float(row["score"])
        except ValueError:
            b.problem("unparsable_row", labels, line, f"expected a number in column score, got {row['score']!r}")
            continue
        image = row["image"].strip()
        ref = (row.get("ref") or "").strip()
        b.add(base / image, score, content=Path(ref or image).with_suffix("").as_posix(),
              ref=base / ref if ref else None, source=(labels, line))
    return b
