"""Noise: white (RGB and YCbCr), impulse, multiplicative, Poisson, and noise-then-denoise.

Every noise field is drawn from that sample's own generator (one per sample, on the device
of x), so a recorded seed reproduces it and the rest of the batch has no influence on it.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import kornia
import numpy as np
import torch

from ._batch import ParamLike, batch_scale, batch_values, check_generators, per_sample_draw
from .compression import per_image_uint8

Generators = Sequence[torch.Generator]


def _normal(x: torch.Tensor, generators: Generators) -> torch.Tensor:
    check_generators(generators, x)
    shape = x.shape[1:]
    return per_sample_draw(generators, lambda g: torch.randn(shape, generator=g, device=g.device, dtype=x.dtype))


def white_noise(x: torch.Tensor, variance: ParamLike, generators: Generators) -> torch.Tensor:
    """Additive i.i.d. Gaussian noise per pixel and channel, clipped to [0, 1].

    Shape:
        x: (B, 3, H, W); variance: () or (B,) on the [0, 1] scale; generators: B; output: (B, 3, H, W).
    """
    std = batch_scale(variance, x, "variance").sqrt()
    return (x + std * _normal(x, generators)).clamp(0.0, 1.0)


def white_noise_cc(x: torch.Tensor, variance: ParamLike, generators: Generators) -> torch.Tensor:
    """Gaussian noise added in YCbCr (to Y, Cb and Cr, as ARNIQA does), back to RGB, clipped.

    Shape:
        x: (B, 3, H, W); variance: () or (B,); generators: B; output: (B, 3, H, W).
    """
    std = batch_scale(variance, x, "variance").sqrt()
    ycbcr = kornia.color.rgb_to_ycbcr(x) + std * _normal(x, generators)
    return kornia.color.ycbcr_to_rgb(ycbcr).clamp(0.0, 1.0)


def impulse_noise(x: torch.Tensor, density: ParamLike, generators: Generators) -> torch.Tensor:
    """Salt-and-pepper noise drawn per channel (coloured impulses, as MATLAB's ``imnoise``).

    A fraction ``density`` of all channel values is replaced: half by 0, half by 1.

    Shape:
        x: (B, 3, H, W); density: () or (B,); generators: B; output: (B, 3, H, W).
    """
    check_generators(generators, x)
    d = batch_scale(density, x, "density")
    u = per_sample_draw(generators, lambda g: torch.rand(x.shape[1:], generator=g, device=g.device, dtype=x.dtype))
    return torch.where(u < d / 2, torch.zeros_like(x), torch.where(u < d, torch.ones_like(x), x))


def multiplicative_noise(x: torch.Tensor, variance: ParamLike, generators: Generators) -> torch.Tensor:
    """Speckle: x + x * n with n ~ N(0, variance), clipped.

    Shape:
        x: (B, 3, H, W); variance: () or (B,); generators: B; output: (B, 3, H, W).
    """
    std = batch_scale(variance, x, "variance").sqrt()
    return (x + x * std * _normal(x, generators)).clamp(0.0, 1.0)


def poisson_noise(x: torch.Tensor, photons: ParamLike, generators: Generators) -> torch.Tensor:
    """Photon shot noise: each value becomes Poisson(x * photons) / photons.

    ``photons`` is the expected count at full scale: fewer photons, noisier image.

    Shape:
        x: (B, 3, H, W); photons: () or (B,); generators: B; output: (B, 3, H, W).
    """
    check_generators(generators, x)
    scale = batch_scale(photons, x, "photons")
    rates = (x * scale).clamp(min=0.0)
    counts = torch.stack([torch.poisson(r, generator=g) for r, g in zip(rates, generators)])
    return (counts / scale).clamp(0.0, 1.0)


def denoise(
    x: torch.Tensor, variance: ParamLike, generators: Generators, strength: float = 0.8
) -> torch.Tensor:
    """Gaussian noise of ``variance`` followed by denoising: the smudged, over-smoothed look of a denoiser.

    KADID denoises with MATLAB's pretrained DnCNN; this uses OpenCV's non-local means
    (``fastNlMeansDenoisingColored``, filter strength ``strength`` x the noise std in 8-bit units,
    5x5 patches, 13x13 search window) on the CPU, so the artefacts are of the same kind
    (texture loss, blotches) but not identical.

    Shape:
        x: (B, 3, H, W); variance: () or (B,); generators: B; output: (B, 3, H, W), 8-bit steps.
    """
    noisy = white_noise(x, variance, generators)

    def one(image: np.ndarray, var: float) -> np.ndarray:
        h = strength * 255.0 * var**0.5
        return cv2.fastNlMeansDenoisingColored(image, None, h, h, 5, 13)

    return per_image_uint8(noisy, one, batch_values(variance, x, "variance"))
