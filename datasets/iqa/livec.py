"""LIVE In the Wild Image Quality Challenge (LIVEC / CLIVE).

Layout: ``Images/`` and ``Data/AllImages_release.mat`` (``AllImages_release``: file names),
``Data/AllMOS_release.mat`` (``AllMOS_release``): 1,169 parallel entries whose first 7 are the
practice images, dropped as everyone does. MOS is on 0..100, higher is better.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .options import NoOptions
from .table import Builder, DatasetError, Scale, require_dir, require_file

SCALE = Scale(0.0, 100.0, higher_is_better=True, kind="mos")
PRACTICE = 7


def _variable(path: Path, key: str) -> np.ndarray:
    try:
        import scipy.io

        data = scipy.io.loadmat(require_file(path, "label file"))
    except DatasetError:
        raise
    except Exception as error:
        raise DatasetError(f"{path}: not a readable MATLAB file ({error})") from None
    if key not in data:
        raise DatasetError(f"{path}: missing variable {key!r}")
    return np.asarray(data[key]).reshape(-1)


def _text(cell: object) -> str:
    while isinstance(cell, np.ndarray):
        cell = cell.reshape(-1)[0]
    return str(cell).strip()


def read(root: Path, strict: bool, options: NoOptions) -> Builder:
    names_file = root / "Data" / "AllImages_release.mat"
    names = _variable(names_file, "AllImages_release")
    scores = _variable(root / "Data" / "AllMOS_release.mat", "AllMOS_release")
    if len(names) != len(scores):
        raise DatasetError(f"{names_file}: {len(names)} names but {len(scores)} scores in AllMOS_release.mat")
    images = require_dir(root / "Images", "Images")
    b = Builder("livec", root, SCALE, strict)
    for entry in range(PRACTICE, len(names)):
        name = _text(names[entry])
        b.add(images / name, float(scores[entry]), content=Path(name).stem, source=(names_file, None))
    return b
