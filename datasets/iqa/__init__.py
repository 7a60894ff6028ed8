"""Standard IQA datasets in their native layouts, read into one record type.

>>> table = load("kadid10k", "/data/kadid10k")
>>> table[0].quality, table.scale
>>> for split in table.splits(n=10, seed=0): ...
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from . import csiq, generic, kadid10k, koniq10k, live, livec, pipal, spaq, tid2013
from .table import DatasetError, Problem, Record, Scale, Split, Table

_READERS = {
    "koniq10k": koniq10k.read,
    "kadid10k": kadid10k.read,
    "live": live.read,
    "csiq": csiq.read,
    "tid2013": tid2013.read,
    "livec": livec.read,
    "spaq": spaq.read,
    "pipal": pipal.read,
    "csv": generic.read,
}


def names() -> list[str]:
    """The datasets that can be read."""
    return list(_READERS)


def load(name: str, root: str | os.PathLike, *, strict: bool = True, **options) -> Table:
    """Read a dataset from ``root`` as its authors distribute it.

    Args:
        name: one of :func:`names`.
        root: the dataset's folder (for ``csv``: the CSV file or its folder).
        strict: refuse a dataset with any problem (missing images, duplicates, unparsable
            rows). With ``strict=False`` problem rows are skipped and listed in ``problems``.
        options: reader options, e.g. ``realigned`` (live), ``resolution``/``score`` (koniq10k),
            ``part`` (pipal), ``file``/``low``/``high``/``higher_is_better`` (csv).

    Raises:
        DatasetError: naming the file and what was expected, when the layout is not usable.
    """
    if name not in _READERS:
        close = difflib.get_close_matches(name, _READERS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown dataset {name!r}.{hint} Known: {', '.join(_READERS)}")
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    return _READERS[name](root, strict=strict, **options).table()


__all__ = ["DatasetError", "Problem", "Record", "Scale", "Split", "Table", "load", "names"]
