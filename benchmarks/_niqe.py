"""NIQE, a classical no-reference baseline for the transfer benchmark (Mittal, Soundararajan and Bovik,
"Making a 'completely blind' image quality analyzer", IEEE SPL 2013).

No network and no labels: the natural-scene statistics of an image's patches (the shape and spread of
its mean-subtracted, contrast-normalised coefficients and of their products with each neighbour, at
two scales: 36 numbers per patch) are modelled by one Gaussian, and its distance to the Gaussian of
sharp patches of pristine photos is the image's distortion. Here the pristine model is fitted on the
photos a model of this toolkit trains on, so the baseline sees the same content; with the published
model (125 photos) its numbers would differ.

The statistics are :mod:`dri.models.nss`'s, written from the papers: the halving between scales is
an area filter, not MATLAB's bicubic ``imresize``, so the values differ in detail from the reference
implementation.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from dri.models.nss import PATCH, patch_statistics

SHARPNESS = 0.75  # pristine patches kept: sharpness above this share of the sharpest patch of their photo


def patch_features(image: np.ndarray, stride: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """36 statistics per patch (two scales) and each patch's sharpness: (N, 36), (N,); the features of
    :mod:`dri.models.nss`, which the linear quality head reads too."""
    if min(image.shape[:2]) < PATCH:
        raise ValueError(f"NIQE needs images of at least {PATCH} x {PATCH} px, got {image.shape[1]} x {image.shape[0]}")
    x = torch.from_numpy(np.array(image, dtype=np.float64)) / 255  # a copy: the input may be read-only
    x = x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]
    features, sharpness = patch_statistics(x, stride)
    return features[0].numpy(), sharpness[0].numpy()


class NIQE:
    """The pristine model: mean and covariance of the sharp patches of ``photos`` (overlapping by half)."""

    def __init__(self, photos: Iterable[np.ndarray]) -> None:
        kept = []
        for photo in photos:
            features, sharpness = patch_features(photo, stride=PATCH // 2)
            kept.append(features[sharpness > SHARPNESS * sharpness.max()])
        pristine = np.concatenate(kept)
        if len(pristine) <= pristine.shape[1]:
            raise ValueError(f"NIQE's pristine model needs more than {pristine.shape[1]} sharp patches, got {len(pristine)}")
        self.mean, self.cov = pristine.mean(axis=0), np.cov(pristine, rowvar=False)
        self.patches = len(pristine)

    def distance(self, image: np.ndarray) -> float:
        """NIQE of ``image``: larger is worse (0 would be the pristine model itself)."""
        features, _ = patch_features(image)
        cov = np.cov(features, rowvar=False) if len(features) > 1 else np.zeros_like(self.cov)
        d = features.mean(axis=0) - self.mean
        return float(math.sqrt(max(0.0, d @ np.linalg.pinv((self.cov + cov) / 2) @ d)))
