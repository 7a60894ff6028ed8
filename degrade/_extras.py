"""Which optional dependencies a part of the toolkit needs, and a clear error when they are missing.

The core install is what ``degrade`` needs (torch, kornia, numpy, OpenCV, scikit-image for the
built-in photos). Reading and writing shards and datasets needs the ``data`` extra (webdataset,
Ray, ...); the model and its training the ``train`` extra (timm, safetensors, PyYAML, matplotlib,
TensorBoard, piq).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

PACKAGE = "dri-toolkit"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(feature: str, extra: str, *modules: str) -> None:
    """Raise ImportError naming the extra to install when any of ``modules`` is missing."""
    missing = [m for m in modules if not _installed(m)]
    if missing:
        raise ImportError(f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                          f"installed: pip install '{PACKAGE}[{extra}]'")


def check_datasets_package() -> None:
    """This toolkit's ``datasets`` package shadows Hugging Face's (or is shadowed by it): say so clearly."""
    spec = importlib.util.find_spec("datasets")
    if spec is None or not spec.submodule_search_locations:
        return
    from pathlib import Path

    ours = any((Path(p) / "shardformat.py").is_file() for p in spec.submodule_search_locations)
    if not ours:
        raise ImportError(
            "the 'datasets' package found first is not this toolkit's (Hugging Face's datasets is installed in this "
            f"environment, at {list(spec.submodule_search_locations)[0]}); both use the name 'datasets'. Install "
            f"{PACKAGE} in its own virtual environment (the Makefile's .venv), or uninstall the other one")


def lazy_exports(package: str, table: dict[str, str], first_use: Callable[[], None] | None = None):
    """A module ``__getattr__`` for ``package`` that imports each name of ``table`` (name -> submodule)
    on first use, so importing the package stays cheap; ``first_use`` runs before the first import."""
    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if first_use is not None:
            first_use()
        value = getattr(importlib.import_module(table[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
