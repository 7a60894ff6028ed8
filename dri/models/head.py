"""The linear quality head: a score from DRE-Net's two vectors and measured statistics of the image.

The score predictor (TGB + Swin over a ViT) reads the image itself and, trained on few photos, learns
their content along with their quality. This head reads only what is content-normalised or
label-free: the quality and degradation vectors ``f_q``, ``f_d`` of DRE-Net (trained contrastively in
stage 1, never on labels), the 36 NSS statistics of :mod:`dri.models.nss` and the 26 distortion cues
of :mod:`dri.models.cues` (tone, sharpness, spectrum, noise floor; the tone of the whole image the crop
comes from, when its crops are scored together). It is a linear map plus a smooth correction of
what the map leaves, both fitted in closed form to the labels of training images after stage 2
(``dri.train --stage head``):

* the map: ridge regression on standardised features, the penalty chosen by the error on whole
  sources left out (or on single images);
* the correction: Gaussian-kernel ridge regression of the map's residuals over the same standardised
  features (width by the median heuristic: 1 / the median squared distance between training images),
  its penalty the largest whose error on the sources left out is within 1% of the lowest, and the
  correction left out unless it cuts that error by at least 1% (:data:`KERNEL_MARGIN`). It lets a
  distortion's weight depend on what else the image shows (a WebP or gamma cue that only means
  something beside the others), and it fades to zero away from the training images, where the map
  alone scores.

The head has buffers, no parameters (the correction keeps its training images' standardised features
and their coefficients), and they stay in float32 when the weights are exported in half precision.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from .cues import CUES, distortion_cues
from .nss import PATCH, STATISTICS, nss_statistics

ALPHAS = tuple(float(a) for a in torch.logspace(-3, 4, 15, dtype=torch.float64))
KERNEL_ALPHAS = tuple(float(a) for a in torch.logspace(-2, 2, 9, dtype=torch.float64))
KERNEL_IMAGES = 4096  # at most this many training images (evenly spaced) carry the correction and set its width
KERNEL_MARGIN = 0.01  # the kernel correction is kept where it cuts the error on images left out by this
# share, and its penalty is the largest whose error is within this share of the lowest: at small penalties
# the correction all but interpolates its training images, and its error on images left out is noisy
FOLDS = 5
NSS_STRIDE = PATCH // 3  # overlapping patches: a 128 px input gives 2 x 2 of them


class LinearQualityHead(nn.Module):
    """``score = z @ weight + bias + exp(-gamma |z - support|^2) @ dual`` for the standardised features
    ``z = (features - mean) / scale``; unfitted (all zeros, no support) until :meth:`fit`. (The name is
    the head's as configured, ``score_head: linear``: a linear map with a kernel correction, or without.)"""

    def __init__(self, rep_dim: int) -> None:
        super().__init__()
        width = self.width(rep_dim)
        for name, size in (("mean", width), ("scale", width), ("weight", width), ("bias", 1), ("alpha", 1),
                           ("gamma", 1), ("kernel_alpha", 1)):
            self.register_buffer(name, torch.zeros(size))
        self.register_buffer("support", torch.zeros(0, width))
        self.register_buffer("dual", torch.zeros(0))

    @staticmethod
    def width(rep_dim: int) -> int:
        """How many inputs the head reads: f_q, f_d, the NSS statistics and the distortion cues."""
        return 2 * rep_dim + STATISTICS + CUES

    @property
    def fitted(self) -> bool:
        return bool(self.scale.abs().sum() > 0)

    @staticmethod
    def features(f_q: torch.Tensor, f_d: torch.Tensor, x: torch.Tensor,
                 image_tone: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 2 d + 36 + 26) float32: the head's input for images ``x`` (B, 3, S, S) in [0, 1] with vectors
        f_q, f_d; for crops, ``image_tone`` (B, 12) is the tone of the image each comes from
        (:func:`dri.models.cues.tone_of_images`)."""
        return torch.cat([f_q.float(), f_d.float(), nss_statistics(x, NSS_STRIDE).to(f_q.device).float(),
                          distortion_cues(x, image_tone).to(f_q.device).float()], 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features.float() - self.mean) / self.scale
        score = z @ self.weight + self.bias
        if self.dual.numel():
            score = score + _gaussian(z, self.support, self.gamma) @ self.dual
        return score

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """The correction's support and coefficients take the saved size (how many images it was fitted on);
        weights saved before it existed load with none."""
        for name in ("support", "dual"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape[1:] == getattr(self, name).shape[1:]:
                own = getattr(self, name)
                setattr(self, name, own.new_zeros(saved.shape))
        for name in ("support", "dual", "gamma", "kernel_alpha"):
            state_dict.setdefault(prefix + name, getattr(self, name))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, targets: torch.Tensor, groups: Sequence[str] | None = None,
            alphas: tuple[float, ...] = ALPHAS, folds: int = FOLDS, kernel: bool = True,
            kernel_alphas: tuple[float, ...] = KERNEL_ALPHAS) -> dict[str, float]:
        """Fit to ``features`` (N, F) and ``targets`` (N,); returns the chosen penalties and the fit's R^2 on
        these images and on images it did not see.

        With ``groups`` (each image's source photo) each penalty is the one that predicts best the
        sources left out, ``folds`` folds of whole sources: what the head must do on new photos.
        Without, each image is left out alone, which rewards what the training photos share.
        ``kernel``: fit the kernel correction of the linear map's residuals after it (kept only where it
        predicts the images left out better by :data:`KERNEL_MARGIN`)."""
        x, y = features.double().cpu(), targets.double().cpu()
        if x.ndim != 2 or x.shape[1] != self.weight.numel() or y.shape != (x.shape[0],):
            raise ValueError(f"features must be (N, {self.weight.numel()}) and targets (N,), got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[0] < 10:
            raise ValueError(f"fitting the quality head needs at least 10 images, got {x.shape[0]}")
        mean, scale = x.mean(0), x.std(0)
        scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))  # a constant feature gets no weight
        z = (x - mean) / scale
        ridge = _Ridge(z, y)
        if groups is not None:
            errors = _grouped_errors(z, y, list(groups), alphas, folds)
        else:
            errors = ridge.leave_one_out(alphas)
        alpha = alphas[int(torch.argmin(errors))]
        weight, offset = ridge.solve(alpha)
        variance = float((y - y.mean()).square().mean())
        fitted = z @ weight + offset
        result = {"alpha": alpha, "images": len(y), "r2_linear": 1 - float((y - fitted).square().mean()) / variance,
                  "r2_unseen_linear": 1 - float(errors.min()) / variance,
                  "unseen": "whole sources left out" if groups is not None else "one image left out"}
        correction = _Correction(0.0, 0.0, z[:0], z.new_zeros(0), float(errors.min()))
        if kernel:
            correction = _fit_correction(z, y, y - fitted, None if groups is None else list(groups), alpha,
                                         kernel_alphas, folds, correction)
            if correction.dual.numel():
                fitted = fitted + _gaussian(z, correction.support, correction.gamma) @ correction.dual
        self.mean.copy_(mean), self.scale.copy_(scale), self.weight.copy_(weight)
        self.bias.fill_(float(offset)), self.alpha.fill_(alpha)
        self.gamma.fill_(correction.gamma), self.kernel_alpha.fill_(correction.alpha)
        self.support, self.dual = correction.support.to(self.mean), correction.dual.to(self.mean)
        return {**result, "kernel_alpha": correction.alpha, "gamma": correction.gamma,
                "kernel_images": correction.dual.numel(), "r2": 1 - float((y - fitted).square().mean()) / variance,
                "r2_unseen": 1 - correction.error / variance}


class _Ridge:
    """Ridge regression of ``y`` on standardised features ``z`` (intercept not penalised), one SVD for
    every penalty."""

    def __init__(self, z: torch.Tensor, y: torch.Tensor) -> None:
        self.center, self.offset = z.mean(0), y.mean()
        self.u, self.s, vt = torch.linalg.svd(z - self.center, full_matrices=False)
        self.v, self.uy, self.y = vt.T, self.u.T @ (y - self.offset), y

    def solve(self, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights and intercept."""
        weight = self.v @ (self.uy * self.s / (self.s * self.s + alpha))
        return weight, self.offset - self.center @ weight

    def leave_one_out(self, alphas: tuple[float, ...]) -> torch.Tensor:
        """Mean squared error of each penalty on each image left out in turn (closed form)."""
        errors = []
        for alpha in alphas:
            shrink = self.s * self.s / (self.s * self.s + alpha)
            fitted = self.u @ (shrink * self.uy) + self.offset
            leverage = (self.u * self.u) @ shrink + 1 / len(self.y)  # the intercept's share included
            errors.append(((self.y - fitted) / (1 - leverage)).square().mean())
        return torch.stack(errors)


def _gaussian(a: torch.Tensor, b: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """``exp(-gamma |a_i - b_j|^2)``: (len(a), len(b))."""
    return torch.exp(-gamma * torch.cdist(a, b).square())


class _Correction(NamedTuple):
    gamma: float  # the kernel's width; 0 without a correction
    alpha: float  # its penalty
    support: torch.Tensor  # (M, F) the standardised features of the images it is fitted on
    dual: torch.Tensor  # (M,) their coefficients; empty without a correction
    error: float  # the mean squared error of the head on images left out


def _fit_correction(z: torch.Tensor, y: torch.Tensor, residual: torch.Tensor, groups: list[str] | None,
                    alpha: float, kernel_alphas: tuple[float, ...], folds: int, none: _Correction) -> _Correction:
    """The kernel correction of the linear map's ``residual`` (penalty ``alpha``), or ``none`` (the map
    alone, with its error on images left out) where no penalty beats it by :data:`KERNEL_MARGIN`."""
    if len(z) > KERNEL_IMAGES:  # evenly spaced: the eigendecompositions cost the cube of the count
        keep = torch.linspace(0, len(z) - 1, KERNEL_IMAGES, dtype=torch.float64).round().long()
        z, y, residual = z[keep], y[keep], residual[keep]
        groups = None if groups is None else [groups[i] for i in keep.tolist()]
    gamma = 1.0 / _median_square_distance(z)
    k = _gaussian(z, z, gamma)
    if groups is not None:
        errors = _grouped_kernel_errors(z, y, k, groups, alpha, kernel_alphas, folds)
    else:
        errors = _KernelRidge(k, residual).leave_one_out(kernel_alphas)
    lowest = float(errors.min())
    if lowest >= (1 - KERNEL_MARGIN) * none.error:
        return none
    near = [i for i, e in enumerate(errors.tolist()) if e <= (1 + KERNEL_MARGIN) * lowest]
    best = max(near, key=lambda i: kernel_alphas[i])
    return _Correction(gamma, kernel_alphas[best], z, _KernelRidge(k, residual).solve(kernel_alphas[best]),
                       float(errors[best]))


def _median_square_distance(z: torch.Tensor) -> float:
    """The median squared distance between the rows of ``z``, pairs of distinct rows."""
    d = torch.cdist(z, z).square()
    upper = d[torch.triu_indices(len(z), len(z), 1, device=z.device).unbind()]
    return max(float(upper.median()), 1e-12)


class _KernelRidge:
    """Kernel ridge regression of ``y`` on a kernel matrix ``k``, one eigendecomposition for every penalty."""

    def __init__(self, k: torch.Tensor, y: torch.Tensor) -> None:
        self.values, self.vectors = torch.linalg.eigh(k)
        self.values = self.values.clamp_min(0)
        self.vy, self.y = self.vectors.T @ y, y

    def solve(self, alpha: float) -> torch.Tensor:
        """The coefficients of the training images (``prediction = k(x, train) @ them``)."""
        return self.vectors @ (self.vy / (self.values + alpha))

    def leave_one_out(self, alphas: tuple[float, ...]) -> torch.Tensor:
        """Mean squared error of each penalty on each image left out in turn (closed form)."""
        errors = []
        for alpha in alphas:
            shrink = self.values / (self.values + alpha)
            fitted = self.vectors @ (shrink * self.vy)
            leverage = (self.vectors * self.vectors) @ shrink
            errors.append(((self.y - fitted) / (1 - leverage).clamp_min(1e-12)).square().mean())
        return torch.stack(errors)


def _folds(groups: list[str], folds: int) -> torch.Tensor:
    """Each image's fold: the sorted sources dealt into ``folds`` folds."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError(f"leaving sources out needs images of at least 2 sources, got {len(names)}")
    fold_of = {name: i % min(folds, len(names)) for i, name in enumerate(names)}
    return torch.tensor([fold_of[g] for g in groups])


def _grouped_kernel_errors(z: torch.Tensor, y: torch.Tensor, k: torch.Tensor, groups: list[str], alpha: float,
                           kernel_alphas: tuple[float, ...], folds: int) -> torch.Tensor:
    """Mean squared error of the map (penalty ``alpha``) plus the correction (each of ``kernel_alphas``) on
    the images of sources left out, both fitted on the other folds."""
    fold = _folds(groups, folds)
    squared = torch.zeros(len(kernel_alphas), dtype=z.dtype)
    for f in fold.unique():
        test = fold == f
        weight, offset = _Ridge(z[~test], y[~test]).solve(alpha)
        linear_train, linear_test = z[~test] @ weight + offset, z[test] @ weight + offset
        ridge = _KernelRidge(k[~test][:, ~test], y[~test] - linear_train)
        for i, kernel_alpha in enumerate(kernel_alphas):
            squared[i] += (linear_test + k[test][:, ~test] @ ridge.solve(kernel_alpha) - y[test]).square().sum()
    return squared / len(y)


def _grouped_errors(z: torch.Tensor, y: torch.Tensor, groups: list[str], alphas: tuple[float, ...],
                    folds: int) -> torch.Tensor:
    """Mean squared error of each penalty on the images of sources left out: the sorted sources dealt
    into ``folds`` folds, each fold predicted by a fit on the others."""
    fold = _folds(groups, folds)
    squared = torch.zeros(len(alphas), dtype=z.dtype)
    for k in fold.unique():
        test = fold == k
        ridge = _Ridge(z[~test], y[~test])
        for i, alpha in enumerate(alphas):
            weight, offset = ridge.solve(alpha)
            squared[i] += (z[test] @ weight + offset - y[test]).square().sum()
    return squared / len(y)
