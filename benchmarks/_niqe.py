"""NIQE, a classical no-reference baseline for the transfer benchmark (Mittal, Soundararajan and Bovik,
"Making a 'completely blind' image quality analyzer", IEEE SPL 2013).

No network and no labels: the natural-scene statistics of an image's patches (the shape and spread of
its mean-subtracted, contrast-normalised coefficients and of their products with each neighbour, at
two scales: 36 numbers per patch) are modelled by one Gaussian, and its distance to the Gaussian of
sharp patches of pristine photos is the image's distortion. Here the pristine model is fitted on the
photos a model of this toolkit trains on, so the baseline sees the same content; with the published
model (125 photos) its numbers would differ.

Written for this benchmark from the paper: the halving between scales is an area filter, not
MATLAB's bicubic ``imresize``, so the values differ in detail from the reference implementation.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np
from scipy.special import gamma

PATCH = 96
SHARPNESS = 0.75  # pristine patches kept: sharpness above this share of the sharpest patch of their photo

_SHAPES = np.arange(0.2, 10.0, 0.001)
_GGD_RATIO = gamma(1 / _SHAPES) * gamma(3 / _SHAPES) / gamma(2 / _SHAPES) ** 2  # E[x^2] / E[|x|]^2
_AGGD_RATIO = gamma(2 / _SHAPES) ** 2 / (gamma(1 / _SHAPES) * gamma(3 / _SHAPES))


def _mscn(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted, contrast-normalised coefficients of a float grey image in [0, 255], and the local deviation."""
    mu = cv2.GaussianBlur(grey, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(grey * grey, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu
    sigma = np.sqrt(np.abs(var))
    return (grey - mu) / (sigma + 1.0), sigma


def _ggd(x: np.ndarray) -> list[float]:
    """Shape and variance of a zero-mean generalised Gaussian (moment matching)."""
    second = float(np.mean(x * x))
    ratio = second / max(float(np.mean(np.abs(x))) ** 2, 1e-12)
    return [float(_SHAPES[np.argmin(np.abs(_GGD_RATIO - ratio))]), second]


def _aggd(x: np.ndarray) -> list[float]:
    """Shape, mean and left and right variances of an asymmetric generalised Gaussian."""
    left, right = x[x < 0], x[x > 0]
    sl = math.sqrt(float(np.mean(left * left))) if left.size else 1e-6
    sr = math.sqrt(float(np.mean(right * right))) if right.size else 1e-6
    g = sl / max(sr, 1e-12)
    r = float(np.mean(np.abs(x))) ** 2 / max(float(np.mean(x * x)), 1e-12)
    ratio = r * (g**3 + 1) * (g + 1) / (g * g + 1) ** 2
    shape = float(_SHAPES[np.argmin(np.abs(_AGGD_RATIO - ratio))])
    scale = math.sqrt(gamma(1 / shape) / gamma(3 / shape))
    mean = (sr - sl) * scale * gamma(2 / shape) / gamma(1 / shape)
    return [shape, mean, sl * sl, sr * sr]


def _patch_features(m: np.ndarray) -> list[float]:
    """The 18 statistics of one MSCN patch: its own GGD and the AGGD of its products with each neighbour."""
    features = _ggd(m.ravel())
    for a, b in ((m[:, :-1], m[:, 1:]), (m[:-1, :], m[1:, :]), (m[:-1, :-1], m[1:, 1:]), (m[:-1, 1:], m[1:, :-1])):
        features += _aggd((a * b).ravel())
    return features


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) or grey (H, W) to float64 luma in [0, 255], cut to whole patches."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = (grey.shape[0] // PATCH) * PATCH, (grey.shape[1] // PATCH) * PATCH
    if h == 0 or w == 0:
        raise ValueError(f"NIQE needs images of at least {PATCH} x {PATCH} px, got {grey.shape[1]} x {grey.shape[0]}")
    return grey[:h, :w].astype(np.float64)


def patch_features(image: np.ndarray, stride: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """36 statistics per patch (two scales) and each patch's sharpness: (N, 36), (N,)."""
    grey = _grey(image)
    scales = [grey, cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)]
    maps = [_mscn(s) for s in scales]
    rows, sharpness = [], []
    for top in range(0, grey.shape[0] - PATCH + 1, stride):
        for left in range(0, grey.shape[1] - PATCH + 1, stride):
            row = []
            for k, (m, _) in enumerate(maps):
                p, t, l = PATCH >> k, top >> k, left >> k
                row += _patch_features(m[t : t + p, l : l + p])
            rows.append(row)
            sharpness.append(float(maps[0][1][top : top + PATCH, left : left + PATCH].mean()))
    return np.asarray(rows), np.asarray(sharpness)


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
