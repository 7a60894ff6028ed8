"""KADID-10k: ``kadid10k/images/`` (references I01.png..I81.png, distorted IXX_YY_ZZ.png) and ``dmos.csv``.

``dmos.csv`` has ``dist_img, ref_img, dmos, var``; despite its name ``dmos`` is higher-is-better
on 1..5. Distortion types are named as in ``degrade`` (KADID type YY is ``degrade`` entry YY).
"""
from __future__ import annotations

from pathlib import Path

import degrade

from .options import NoOptions
from .table import Builder, DatasetError, Scale, parse_float, read_csv, require_dir

SCALE = Scale(1.0, 5.0, higher_is_better=True, kind="mos")
def kadid_types() -> dict[int, str]:
    """KADID-10k's type index -> the ``degrade`` distortion name."""
    return {degrade.info(n).kadid: n for n in degrade.list_distortions() if degrade.info(n).kadid}


def _labels(root: Path) -> Path:
    for candidate in (root / "dmos.csv", root / "kadid10k" / "dmos.csv"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{root / 'dmos.csv'}: missing label file (also looked in {root / 'kadid10k'})")


def read(root: Path, strict: bool, options: NoOptions) -> Builder:
    labels = _labels(root)
    images = require_dir(labels.parent / "images", "images")
    b = Builder("kadid10k", root, SCALE, strict)
    types = kadid_types()
    for line, row in read_csv(labels, ["dist_img", "ref_img", "dmos"]):
        name = row["dist_img"].strip()
        try:
            score = parse_float(row["dmos"])
            _, kind, level = Path(name).stem.split("_")
            distortion, level_number = types[int(kind)], int(level)
        except (ValueError, KeyError):
            b.problem("unparsable_row", labels, line, f"expected IXX_YY_ZZ.png and a number, got {name!r}, {row['dmos']!r}")
            continue
        ref = row["ref_img"].strip()
        b.add(images / name, score, content=Path(ref).stem, ref=images / ref, distortion=distortion,
              level=level_number, source=(labels, line))
    return b
