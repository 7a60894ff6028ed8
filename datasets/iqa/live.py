"""LIVE Image Quality Assessment Database, Release 2.

Layout: ``refimgs/*.bmp``; ``jp2k/ jpeg/ wn/ gblur/ fastfading/`` with ``img<N>.bmp``;
``dmos.mat`` (``dmos``, ``orgs``) or ``dmos_realigned.mat`` (``dmos_new``, ``dmos_std``,
``orgs``); ``refnames_all.mat`` (``refnames_all``). The 982 entries of each array follow the
folder order jp2k (227), jpeg (233), wn, gblur, fastfading (174 each); ``orgs == 1`` marks the
reference copies, which are dropped. DMOS is on about 0..100, lower is better.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .table import Builder, DatasetError, Scale, require_file

SCALE = Scale(0.0, 100.0, higher_is_better=False, kind="dmos")
FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
ENTRIES = sum(n for _, n in FOLDERS)


def _array(path: Path, key: str) -> np.ndarray:
    try:
        import scipy.io

        data = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several types for damaged files
        raise DatasetError(f"{path}: not a readable MATLAB file ({error})") from None
    if key not in data:
        raise DatasetError(f"{path}: missing variable {key!r}; found {sorted(k for k in data if not k.startswith('__'))}")
    values = np.asarray(data[key]).reshape(-1)
    if values.size != ENTRIES:
        raise DatasetError(f"{path}: {key!r} has {values.size} entries, expected {ENTRIES}")
    return values


def _text(cell: object) -> str:
    while isinstance(cell, np.ndarray):
        cell = cell.reshape(-1)[0]
    return str(cell).strip()


@dataclass(frozen=True)
class Options:
    """``realigned``: use ``dmos_realigned.mat`` when it is present (else ``dmos.mat``)."""

    realigned: bool = True


def read(root: Path, strict: bool, options: Options) -> Builder:
    realigned_file = root / "dmos_realigned.mat"
    if options.realigned and realigned_file.is_file():
        scores_file, key = realigned_file, "dmos_new"
    else:
        scores_file, key = require_file(root / "dmos.mat", "label file dmos.mat"), "dmos"
    scores = _array(scores_file, key)
    originals = _array(scores_file, "orgs")
    names = _array(require_file(root / "refnames_all.mat", "label file refnames_all.mat"), "refnames_all")
    b = Builder("live", root, SCALE, strict)
    entry = 0
    for folder, count in FOLDERS:
        for number in range(1, count + 1):
            if not originals[entry]:
                ref = _text(names[entry])
                b.add(root / folder / f"img{number}.bmp", float(scores[entry]), content=Path(ref).stem,
                      ref=root / "refimgs" / ref, distortion=folder, source=(scores_file, None))
            entry += 1
    return b
