"""PIPAL (NTIRE 2021/22 release): ``<Part>_Ref/A0001.bmp``, ``<Part>_Dist/A0001_TT_SS.bmp``, ``<Part>_Label/*.txt``.

``part`` is ``Train``, ``Val`` or ``Test``. Label lines are ``<dist_name>,<elo>``; the
reference is the text before the first ``_`` + ``.bmp``; TT is the distortion group (00..06)
and SS the subtype within it. Scores are Elo ratings (observed about 870..1860), normalised on
the fixed range 850..1900, higher is better.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .table import Builder, DatasetError, Scale, parse_float, read_text, require_dir

SCALE = Scale(850.0, 1900.0, higher_is_better=True, kind="elo")
PARTS = ("Train", "Val", "Test")


@dataclass(frozen=True)
class Options:
    """``part``: which release part to read."""

    part: Literal["Train", "Val", "Test"] = "Train"


def read(root: Path, strict: bool, options: Options) -> Builder:
    part = options.part
    label_dir = require_dir(root / f"{part}_Label", f"{part}_Label")
    label_files = sorted(label_dir.glob("*.txt"))
    if not label_files:
        raise DatasetError(f"{label_dir}: no label .txt files")
    distorted = require_dir(root / f"{part}_Dist", f"{part}_Dist")
    references = require_dir(root / f"{part}_Ref", f"{part}_Ref")
    b = Builder("pipal", root, SCALE, strict)
    for labels in label_files:
        for line, text in enumerate(read_text(labels).splitlines(), start=1):
            if not text.strip():
                continue
            try:
                name, elo = (t.strip() for t in text.split(","))
                score = parse_float(elo)
                ref_id, group, _subtype = Path(name).stem.split("_")
            except ValueError:
                b.problem("unparsable_row", labels, line, f"expected 'A0001_TT_SS.bmp,<elo>', got {text.strip()!r}")
                continue
            b.add(distorted / name, score, content=ref_id, ref=references / f"{ref_id}.bmp",
                  distortion=f"group_{group}", source=(labels, line))
    return b
