"""Standard IQA datasets in their native layouts, read into one record type.

>>> table = load("kadid10k", "/data/kadid10k")
>>> table[0].quality, table.scale
>>> for split in table.splits(n=10, seed=0): ...
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from . import csiq, generic, kadid10k, koniq10k, live, livec, pipal, spaq, tid2013
from .options import NoOptions, OptionError, describe, key_values, parse
from .table import DatasetError, Problem, Record, Scale, Split, Table


class Reader(NamedTuple):
    """A dataset reader: the function that translates the native layout, and its options' dataclass."""

    read: Callable[..., Any]
    options: type = NoOptions


_READERS = {
    "koniq10k": Reader(koniq10k.read, koniq10k.Options),
    "kadid10k": Reader(kadid10k.read),
    "live": Reader(live.read, live.Options),
    "csiq": Reader(csiq.read),
    "tid2013": Reader(tid2013.read),
    "livec": Reader(livec.read),
    "spaq": Reader(spaq.read),
    "pipal": Reader(pipal.read, pipal.Options),
    "csv": Reader(generic.read, generic.Options),
}


def names() -> list[str]:
    """The datasets that can be read."""
    return list(_READERS)


def _reader(name: str) -> Reader:
    if name not in _READERS:
        close = difflib.get_close_matches(name, _READERS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown dataset {name!r}.{hint} Known: {', '.join(_READERS)}")
    return _READERS[name]


def parse_options(name: str, values: Mapping[str, Any] | None = None) -> Any:
    """The typed options of reader ``name`` from text or typed values; :class:`OptionError` names what is wrong."""
    return parse(_reader(name).options, values, name)


def options_help(name: str) -> str:
    """What reader ``name`` accepts, for help texts."""
    return describe(_reader(name).options)


def load(name: str, root: str | os.PathLike, *, strict: bool = True, **options: Any) -> Table:
    """Read a dataset from ``root`` as its authors distribute it.

    Args:
        name: one of :func:`names`.
        root: the dataset's folder (for ``csv``: the CSV file or its folder).
        strict: refuse a dataset with any problem (missing images, duplicates, unparsable or
            impossible scores, paths leaving the folder). With ``strict=False`` problem rows are
            skipped and listed in ``problems``.
        options: reader options (typed or text), e.g. ``realigned`` (live), ``resolution``/``score``
            (koniq10k), ``part`` (pipal), ``file``/``low``/``high``/``higher_is_better`` (csv).

    Raises:
        DatasetError: naming the file and what was expected, when the layout is not usable.
        OptionError: for an unknown option or a value it does not accept.
    """
    reader = _reader(name)
    parsed = parse(reader.options, options, name)
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    return reader.read(root, strict, parsed).table()


__all__ = ["DatasetError", "OptionError", "Problem", "Record", "Scale", "Split", "Table", "key_values", "load",
           "names", "options_help", "parse_options"]
