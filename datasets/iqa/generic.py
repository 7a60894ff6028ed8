"""Any dataset described by one CSV file: ``image,score[,ref]``, with a declared scale.

Paths are relative to the CSV's folder. ``content`` is the reference when there is one (so
splits keep a reference's images together), otherwise the image.
"""
from __future__ import annotations

from pathlib import Path

from .table import Builder, DatasetError, Scale, parse_float, read_csv


def read(
    root: Path,
    strict: bool = True,
    file: str = "labels.csv",
    low: float | None = None,
    high: float | None = None,
    higher_is_better: bool = True,
) -> Builder:
    labels = root if root.is_file() else root / file
    if not labels.is_file():
        raise DatasetError(f"{labels}: missing label file (a CSV with columns image,score[,ref])")
    if low is None or high is None or not high > low:
        raise ValueError("the generic CSV reader needs the score range: low=..., high=... (high > low)")
    base = labels.parent
    b = Builder("csv", base, Scale(float(low), float(high), higher_is_better, "mos"), strict)
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
