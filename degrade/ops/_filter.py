"""Per-sample 2-D filtering: every sample is convolved with its own kernel in one grouped call."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import _cpu
from ._batch import map_groups


def _pad_amounts(kh: int, kw: int) -> tuple[int, int, int, int]:
    return (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)


# Measured on CPU (oneDNN): depthwise convolution is several times faster on channels-last
# input for separable taps and small 2-D kernels, slower for large 2-D kernels; from
# FFT_MIN_SIDE taps on, the FFT beats both.
CHANNELS_LAST_MAX_SIDE = 13
FFT_MIN_SIDE = 25


def _fft_conv(xp: torch.Tensor, kernels: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Valid correlation of padded images (B, C, H', W') with per-sample kernels, via the FFT."""
    kh, kw = kernels.shape[-2:]
    size = xp.shape[-2:]
    spectrum = torch.fft.rfft2(xp) * torch.fft.rfft2(kernels.flip(-2, -1), s=size).unsqueeze(1)
    return torch.fft.irfft2(spectrum, s=size)[..., kh - 1 : kh - 1 + out_h, kw - 1 : kw - 1 + out_w]


def conv_per_sample(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter each sample of ``x`` (B, C, H, W) with its own kernel (B, kh, kw), replicate borders.

    Batch and channels are folded into one depthwise convolution of B*C groups: on CPU this
    layout is several times faster than a (B, C, H, W) call with ``groups=C`` and it is what
    per-sample parameters need anyway. Kernels are applied as correlation; every kernel built
    in this package is point-symmetric, for which correlation and convolution coincide.
    """
    b, c, h, w = x.shape
    kh, kw = kernels.shape[-2:]
    xp = F.pad(x, _pad_amounts(kh, kw), mode="replicate")
    if min(kh, kw) >= FFT_MIN_SIDE:
        return _fft_conv(xp, kernels.to(x), h, w).contiguous()
    weight = kernels.to(x).repeat_interleave(c, dim=0).unsqueeze(1)
    folded = xp.reshape(1, b * c, *xp.shape[-2:])
    if max(kh, kw) <= CHANNELS_LAST_MAX_SIDE:
        folded = folded.contiguous(memory_format=torch.channels_last)
    return F.conv2d(folded, weight, groups=b * c).reshape(b, c, h, w)


def separable_per_sample(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter each sample with the separable kernel ``k k^T`` given its 1-D taps (B, k)."""
    b, c, h, w = x.shape
    k = kernels.shape[-1]
    left, right = k // 2, k - 1 - k // 2
    taps = kernels.to(x).repeat_interleave(c, dim=0)
    xp = F.pad(x, (left, right, left, right), mode="replicate").reshape(1, b * c, h + k - 1, w + k - 1)
    xp = xp.contiguous(memory_format=torch.channels_last)
    xp = F.conv2d(xp, taps.view(b * c, 1, 1, k), groups=b * c)
    xp = F.conv2d(xp, taps.view(b * c, 1, k, 1), groups=b * c)
    return xp.reshape(b, c, h, w)


def filter_cpu(x: torch.Tensor, kernels: Sequence[torch.Tensor], separable: bool = False) -> torch.Tensor:
    """The same filtering with OpenCV, one image plane at a time on the engine's pool (replicated borders).

    OpenCV's ``filter2D`` correlates, as :func:`conv_per_sample` does, and switches to the DFT for
    large kernels by itself; results agree with the torch path to float rounding.
    """
    import cv2

    dtype = np.float64 if x.dtype == torch.float64 else np.float32
    taps = [np.ascontiguousarray(k.numpy().astype(dtype)) for k in kernels]

    def one(plane: np.ndarray, out: np.ndarray, i: int) -> None:
        if separable:  # written straight into the output plane
            cv2.sepFilter2D(plane, -1, taps[i], taps[i], dst=out, borderType=cv2.BORDER_REPLICATE)
        else:
            cv2.filter2D(plane, -1, taps[i], dst=out, borderType=cv2.BORDER_REPLICATE)

    return _cpu.map_planes(x, one)


def filter_by_size(x: torch.Tensor, kernels: Sequence[torch.Tensor], separable: bool = False) -> torch.Tensor:
    """Filter sample i with ``kernels[i]``; samples whose kernels share a size share one call.

    Grouping by size (rather than zero-padding every kernel to the largest) keeps each
    sample's result independent of what else is in the batch. On the CPU (no gradient wanted)
    OpenCV filters each image plane instead (:func:`filter_cpu`).
    """
    if _cpu.use(x):
        return filter_cpu(x, kernels, separable)
    op = separable_per_sample if separable else conv_per_sample

    def run(sub: torch.Tensor, idx: list[int], _size) -> torch.Tensor:
        return op(sub, torch.stack([kernels[i] for i in idx]))

    return map_groups(x, [tuple(k.shape) for k in kernels], run)
