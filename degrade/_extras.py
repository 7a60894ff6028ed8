"""Which optional dependencies a part of the toolkit needs, and a clear error when they are missing.

The core install is what ``degrade`` needs (torch, kornia, numpy, OpenCV, scikit-image for the
built-in photos). Reading and writing shards and datasets needs the ``data`` extra (webdataset,
Ray, ...); the model and its training the ``train`` extra (timm, safetensors, PyYAML, matplotlib,
TensorBoard, piq).
"""
from __future__ import annotations

import importlib.util

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
