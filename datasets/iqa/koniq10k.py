"""KonIQ-10k: ``1024x768/*.jpg`` (or ``512x384/``) and ``koniq10k_scores_and_distributions.csv``.

The scores file has ``image_name, c1..c5, c_total, MOS, SD, MOS_zscore`` (MOS on 1..5; the
z-score column on 0..100). The official split comes from ``koniq10k_distributions_sets.csv``
(column ``set``: training / validation / test) when it is present, in the root or ``metadata/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .table import Builder, DatasetError, Scale, parse_float, read_csv, require_dir

SCORES = "koniq10k_scores_and_distributions.csv"
SETS = "koniq10k_distributions_sets.csv"
SCALES = {"MOS": Scale(1.0, 5.0, True, "mos"), "MOS_zscore": Scale(0.0, 100.0, True, "mos")}
SIDES = {"training": "train", "train": "train", "validation": "val", "val": "val", "test": "test"}


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / "metadata" / name):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Options:
    """``resolution``: the image folder; ``score``: the column (MOS on 1..5, MOS_zscore on 0..100)."""

    resolution: Literal["1024x768", "512x384"] = "1024x768"
    score: Literal["MOS", "MOS_zscore"] = "MOS"


def read(root: Path, strict: bool, options: Options) -> Builder:
    resolution, score = options.resolution, options.score
    labels = _find(root, SCORES)
    if labels is None:
        raise DatasetError(f"{root / SCORES}: missing label file (also looked in {root / 'metadata'})")
    images = require_dir(root / resolution, f"{resolution} image")
    official: dict[str, str] = {}
    sets = _find(root, SETS)
    if sets is not None:
        for line, row in read_csv(sets, ["image_name", "set"]):
            side = SIDES.get(row["set"].strip().lower())
            if side is None:
                raise DatasetError(f"{sets}:{line}: unknown set {row['set']!r}; expected training, validation or test")
            official[row["image_name"].strip()] = side
    b = Builder("koniq10k", root, SCALES[score], strict)
    for line, row in read_csv(labels, ["image_name", score]):
        name = row["image_name"].strip()
        try:
            value = parse_float(row[score])
        except ValueError:
            b.problem("unparsable_row", labels, line, f"expected a number in column {score}, got {row[score]!r}")
            continue
        b.add(images / name, value, content=Path(name).stem, official=official.get(name) if official else None,
              source=(labels, line))
    return b
