"""The built-in pristine photographs: the real photos that ship inside scikit-image.

Only the files are used (nothing of scikit-image is imported), so the engine itself does not
depend on it; scikit-image must be installed for these photos to be found.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from .io import read_image

SAMPLE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "motorcycle_right",
    "hubble_deep_field",
    "retina",
    "ihc",
)

# scikit-image's greyscale textures and one microscopy image: surfaces with no photographic scene,
# which the built-in photos lack (a content source for shards, ``datasets.sources``).
TEXTURES = ("brick", "cell", "grass", "gravel")


def _data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the built-in photos come with scikit-image: pip install scikit-image")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def sample_path(name: str) -> Path:
    """Path of one built-in photo, or of one of the ``TEXTURES``."""
    if name not in SAMPLE_PHOTOS + TEXTURES:
        raise KeyError(f"unknown sample photo {name!r}; choose from {', '.join(SAMPLE_PHOTOS + TEXTURES)}")
    matches = sorted(_data_dir().glob(f"{name}.*"))
    if not matches:
        raise FileNotFoundError(f"scikit-image's data folder {_data_dir()} has no {name} image")
    return matches[0]


def sample_paths() -> dict[str, Path]:
    """All built-in photos by name."""
    return {name: sample_path(name) for name in SAMPLE_PHOTOS}


def load_sample(name: str = "astronaut") -> torch.Tensor:
    """One built-in photo as a (3, H, W) float tensor in [0, 1]."""
    return read_image(sample_path(name))
