"""Distortion cues of images, batched in PyTorch: 26 measurable signs of blur, noise and lost contrast.

The natural-scene statistics of :mod:`dri.models.nss` divide out local brightness and contrast, so they
cannot see an image darkened or washed out, and they read sharpness only through the shape of the
coefficients. These cues measure what the statistics leave out, each from the image alone:

* tone (12): the mean, deviation and 1st, 50th and 99th percentiles of luma (0-255), and the range
  between the outer two, each also as ``log(1 + v)``: contrast and gamma act by multiplying (a contrast
  cut by k scales the deviation and the range by k, a gamma raises luma to a power), so in logs a
  linear reader sees them as shifts of the same size whatever the photo's own contrast. Tone belongs
  to a whole image, not to a crop of it (a crop of sky is dull, a crop of a window bright): for crops
  of one image, :func:`tone_of_images` takes it over all their pixels and ``distortion_cues(crops,
  image_tone)`` uses it in place of each crop's own;
* sharpness (4): how much a Gaussian blur (sigma 0.5, 1, 2 px) lowers the mean absolute gradient (log
  ratio; a blurred image has little left to lose, Crete et al., SPIE 2007), and the log gradient;
* spectrum (7): the log energy of four bands of a Laplacian pyramid, and of each band against the next
  coarser one;
* noise (3): the log deviation of the finest diagonal Haar band from its median absolute value
  (Donoho's estimate), and the log 10th and 50th percentiles of the local energy of the detail left
  by a Gaussian blur (sigma 2) in 8 x 8 blocks: the flattest blocks show the noise floor.

Float64, no parameters, no gradient needed. The cues are not content-normalised; the linear quality
head (:mod:`dri.models.head`) that reads them beside the statistics and DRE-Net's vectors weighs them
by their labels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dre import LocalNormalize
from .nss import luma

CUES = 26
TONE = 12  # the first cues
MIN_SIDE = 16  # the pyramid halves an image three times
_EPS = 1e-3
_SHARPNESS_SIGMAS = (0.5, 1.0, 2.0)
_BANDS = 4


def _window(sigma: float) -> LocalNormalize:
    """A Gaussian of ``sigma`` px, three deviations either side."""
    return LocalNormalize(size=2 * int(3 * sigma + 0.5) + 1, sigma=sigma)


_SHARPNESS_BLURS = tuple(_window(s) for s in _SHARPNESS_SIGMAS)
_BAND_BLUR, _DETAIL_BLUR = _window(1.0), _window(2.0)


def _gradient(y: torch.Tensor) -> torch.Tensor:
    """Mean absolute horizontal plus vertical difference of each image: (B,)."""
    return ((y[..., :, 1:] - y[..., :, :-1]).abs().mean((1, 2, 3))
            + (y[..., 1:, :] - y[..., :-1, :]).abs().mean((1, 2, 3)))


def _quantiles(v: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """Quantiles of each row of (B, N), linearly interpolated: (B, len(qs)). (``torch.quantile`` refuses
    inputs of more than 2^24 elements, which a batch of crops exceeds.)"""
    s = v.sort(1).values
    out = []
    for q in qs:
        position = q * (s.shape[1] - 1)
        low = int(position)
        high = min(low + 1, s.shape[1] - 1)
        out.append(s[:, low] + (position - low) * (s[:, high] - s[:, low]))
    return torch.stack(out, 1)


def tone(y: torch.Tensor) -> torch.Tensor:
    """Luma (B, 1, H, W) -> (B, 12): mean, deviation, 1st, 50th and 99th percentiles, and their range,
    then the same six as ``log(1 + v)``."""
    flat = y.flatten(1)
    q = _quantiles(flat, (0.01, 0.5, 0.99))
    levels = torch.stack([flat.mean(1), flat.std(1), q[:, 0], q[:, 1], q[:, 2], q[:, 2] - q[:, 0]], 1)
    return torch.cat([levels, torch.log1p(levels.clamp_min(0))], 1)


def tone_of_images(crops: torch.Tensor) -> torch.Tensor:
    """The tone cues of whole images from their crops (B, K, 3 or 1, S, S) in [0, 1], over the pixels of
    all K crops of each together: (B, 12), float64."""
    b, k = crops.shape[:2]
    y = luma(crops.flatten(0, 1), whole=False)
    return tone(y.reshape(b, 1, k * y.shape[-2], y.shape[-1]))


def sharpness(y: torch.Tensor) -> torch.Tensor:
    """Luma -> (B, 4): the log share of the mean gradient left by each blur, and the log gradient."""
    g = _gradient(y) + _EPS
    ratios = [torch.log((_gradient(window.blur(y)) + _EPS) / g) for window in _SHARPNESS_BLURS]
    return torch.stack([*ratios, torch.log(g)], 1)


def spectrum(y: torch.Tensor) -> torch.Tensor:
    """Luma -> (B, 7): log band energies, finest first, and each against the next coarser one."""
    bands, level = [], y
    for _ in range(_BANDS):
        low = _BAND_BLUR.blur(level)
        bands.append(torch.log((level - low).square().mean((1, 2, 3)) + _EPS))
        level = F.avg_pool2d(low, 2)
    energy = torch.stack(bands, 1)
    return torch.cat([energy, energy[:, :-1] - energy[:, 1:]], 1)


def noise(y: torch.Tensor) -> torch.Tensor:
    """Luma -> (B, 3): log Donoho estimate, log 10th and 50th percentiles of the blocks' detail energy."""
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    a, b = y[..., 0:h:2, 0:w:2], y[..., 0:h:2, 1:w:2]
    c, d = y[..., 1:h:2, 0:w:2], y[..., 1:h:2, 1:w:2]
    diagonal = ((a - b - c + d) / 2).flatten(1)
    sigma = diagonal.abs().median(1).values / 0.6745
    local = F.avg_pool2d((y - _DETAIL_BLUR.blur(y)).square(), 8).flatten(1)
    floor = _quantiles(local, (0.1, 0.5))
    return torch.stack([torch.log(sigma + 1e-2), torch.log(floor[:, 0] + _EPS), torch.log(floor[:, 1] + _EPS)], 1)


def distortion_cues(x: torch.Tensor, image_tone: torch.Tensor | None = None) -> torch.Tensor:
    """The cues of images (B, 3 or 1, H, W) in [0, 1]: (B, 26), float64, in the order of the module's list.

    ``image_tone`` (B, 12): when ``x`` holds crops, the tone of the image each comes from
    (:func:`tone_of_images`), used in place of the crop's own."""
    if min(x.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"distortion cues need images of at least {MIN_SIDE} x {MIN_SIDE} px, got {tuple(x.shape[-2:])}")
    if image_tone is not None and image_tone.shape != (x.shape[0], TONE):
        raise ValueError(f"image_tone must be ({x.shape[0]}, {TONE}) for {x.shape[0]} images, got {tuple(image_tone.shape)}")
    with torch.no_grad():
        y = luma(x, whole=False)
        own = tone(y) if image_tone is None else image_tone.to(y)
        return torch.cat([own, sharpness(y), spectrum(y), noise(y)], 1)
