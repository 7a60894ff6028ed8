"""The linear quality head: a score from DRE-Net's two vectors and measured statistics of the image.

The score predictor (TGB + Swin over a ViT) reads the image itself and, trained on few photos, learns
their content along with their quality. This head reads only what is content-normalised or
label-free: the quality and degradation vectors ``f_q``, ``f_d`` of DRE-Net (trained contrastively in
stage 1, never on labels), the 36 NSS statistics of :mod:`dri.models.nss` and the 26 distortion cues
of :mod:`dri.models.cues` (tone, sharpness, spectrum, noise floor; the tone of the whole image the crop
comes from, when its crops are scored together). It is a linear map,
fitted in closed form (ridge regression on standardised features, the penalty chosen by the error on
whole sources left out, or on single images) to the labels of training images after stage 2
(``dri.train --stage head``); it has buffers, no parameters, and they stay in float32 when the
weights are exported in half precision.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .cues import CUES, distortion_cues
from .nss import PATCH, STATISTICS, nss_statistics

ALPHAS = tuple(float(a) for a in torch.logspace(-3, 4, 15, dtype=torch.float64))
FOLDS = 5
NSS_STRIDE = PATCH // 3  # overlapping patches: a 128 px input gives 2 x 2 of them


class LinearQualityHead(nn.Module):
    """``score = standardise([f_q, f_d, nss(x)]) @ weight + bias``; unfitted (all zeros) until :meth:`fit`."""

    def __init__(self, rep_dim: int) -> None:
        super().__init__()
        width = self.width(rep_dim)
        for name, size in (("mean", width), ("scale", width), ("weight", width), ("bias", 1), ("alpha", 1)):
            self.register_buffer(name, torch.zeros(size))

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
        return ((features.float() - self.mean) / self.scale) @ self.weight + self.bias

    @torch.no_grad()
    def fit(self, features: torch.Tensor, targets: torch.Tensor, groups: Sequence[str] | None = None,
            alphas: tuple[float, ...] = ALPHAS, folds: int = FOLDS) -> dict[str, float]:
        """Fit to ``features`` (N, F) and ``targets`` (N,); returns the chosen penalty and the fit's R^2 on
        these images and on images it did not see.

        With ``groups`` (each image's source photo) the penalty is the one that predicts best the
        sources left out, ``folds`` folds of whole sources: what the head must do on new photos.
        Without, each image is left out alone, which rewards what the training photos share."""
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
        self.mean.copy_(mean), self.scale.copy_(scale), self.weight.copy_(weight)
        self.bias.fill_(float(offset)), self.alpha.fill_(alpha)
        return {"alpha": alpha, "images": len(y), "r2": 1 - float((y - fitted).square().mean()) / variance,
                "r2_unseen": 1 - float(errors.min()) / variance,
                "unseen": "whole sources left out" if groups is not None else "one image left out"}


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


def _grouped_errors(z: torch.Tensor, y: torch.Tensor, groups: list[str], alphas: tuple[float, ...],
                    folds: int) -> torch.Tensor:
    """Mean squared error of each penalty on the images of sources left out: the sorted sources dealt
    into ``folds`` folds, each fold predicted by a fit on the others."""
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError(f"leaving sources out needs images of at least 2 sources, got {len(names)}")
    fold_of = {name: i % min(folds, len(names)) for i, name in enumerate(names)}
    fold = torch.tensor([fold_of[g] for g in groups])
    squared = torch.zeros(len(alphas), dtype=z.dtype)
    for k in fold.unique():
        test = fold == k
        ridge = _Ridge(z[~test], y[~test])
        for i, alpha in enumerate(alphas):
            weight, offset = ridge.solve(alpha)
            squared[i] += (z[test] @ weight + offset - y[test]).square().sum()
    return squared / len(y)
