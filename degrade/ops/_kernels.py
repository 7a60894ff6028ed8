"""Blur kernels, built once per parameter value in float64 on the CPU and cached.

Every kernel is normalised to unit sum and point-symmetric about its centre.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

_F64 = torch.float64


def kadid_radius(sigma: float) -> int:
    """Half-width of a Gaussian kernel by MATLAB's ``fspecial``/``imgaussfilt`` rule: ceil(2 sigma)."""
    return max(1, math.ceil(2.0 * sigma))


@lru_cache(maxsize=512)
def gaussian_taps(sigma: float, radius: int | None = None) -> torch.Tensor:
    """1-D Gaussian taps of length 2*radius+1 (radius defaults to the KADID rule)."""
    radius = kadid_radius(sigma) if radius is None else radius
    t = torch.arange(-radius, radius + 1, dtype=_F64)
    taps = torch.exp(-0.5 * (t / sigma) ** 2)
    return taps / taps.sum()


@lru_cache(maxsize=256)
def disk(radius: float, subsamples: int = 64) -> torch.Tensor:
    """Anti-aliased pillbox: each tap is the area of its pixel covered by a disk of ``radius``.

    This is the kernel MATLAB's ``fspecial('disk', r)`` describes (area-weighted boundary
    pixels); the area is integrated on a ``subsamples`` x ``subsamples`` grid per pixel.
    """
    half = max(0, math.ceil(radius - 0.5))
    offsets = (torch.arange(subsamples, dtype=_F64) + 0.5) / subsamples - 0.5
    fine = (torch.arange(-half, half + 1, dtype=_F64)[:, None] + offsets[None, :]).reshape(-1)
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius**2
    n = 2 * half + 1
    area = inside.to(_F64).reshape(n, subsamples, n, subsamples).mean(dim=(1, 3))
    return area / area.sum()


def _trim(kernel: torch.Tensor) -> torch.Tensor:
    """Strip all-zero outer rings, keeping the kernel square and centred."""
    while kernel.shape[0] > 1 and (
        kernel[0].abs().sum() == 0
        and kernel[-1].abs().sum() == 0
        and kernel[:, 0].abs().sum() == 0
        and kernel[:, -1].abs().sum() == 0
    ):
        kernel = kernel[1:-1, 1:-1]
    return kernel


def _grid(radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(-radius, radius + 1, dtype=_F64)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return yy, xx


@lru_cache(maxsize=1024)
def motion_line(length: float, angle_deg: float) -> torch.Tensor:
    """Anti-aliased line of ``length`` px at ``angle_deg`` (counter-clockwise from +x, y up).

    A tap's weight falls linearly from 1 on the segment to 0 one pixel away from it, which is
    the construction of MATLAB's ``fspecial('motion', len, theta)``. Length 1 is the identity.
    """
    half = (max(length, 1.0) - 1.0) / 2.0
    yy, xx = _grid(math.ceil(half) + 1)
    a = math.radians(angle_deg)
    ux, uy = math.cos(a), -math.sin(a)  # image rows grow downwards
    along = (xx * ux + yy * uy).clamp(-half, half)
    dist = torch.hypot(xx - along * ux, yy - along * uy)
    weights = _trim((1.0 - dist).clamp(min=0.0))
    return weights / weights.sum()


@lru_cache(maxsize=1024)
def anisotropic_gaussian(sigma_major: float, sigma_minor: float, angle_deg: float, beta: float = 1.0) -> torch.Tensor:
    """Rotated (generalised) Gaussian: exp(-0.5 * (p^T S^-1 p)^beta); beta=1 is Gaussian.

    beta < 1 gives heavy tails, beta > 1 a flat-topped plateau (the kernels of camera and
    restoration degradation models such as Real-ESRGAN's). The half-width reaches where the
    kernel falls to 1e-3 of its peak (3.7 sigma for a Gaussian), at most 15.
    """
    reach = (2.0 * math.log(1000.0)) ** (1.0 / (2.0 * beta))
    yy, xx = _grid(min(15, max(1, math.ceil(reach * sigma_major))))
    a = math.radians(angle_deg)
    u = xx * math.cos(a) - yy * math.sin(a)
    v = xx * math.sin(a) + yy * math.cos(a)
    q = (u / sigma_major) ** 2 + (v / sigma_minor) ** 2
    kernel = torch.exp(-0.5 * q.pow(beta))
    return kernel / kernel.sum()


@lru_cache(maxsize=256)
def circular_lowpass(cutoff: float, radius: int = 10) -> torch.Tensor:
    """Ideal circular low-pass filter (2-D sinc / jinc) truncated to 2*radius+1 taps.

    ``cutoff`` is the angular cut-off frequency in (0, pi]; truncation of the jinc's side
    lobes is what produces the ringing and overshoot seen around edges.
    """
    yy, xx = _grid(radius)
    r = torch.hypot(xx, yy)
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe_r) / (2.0 * math.pi * safe_r)
    kernel = torch.where(r > 0, kernel, torch.full_like(r, cutoff**2 / (4.0 * math.pi)))
    return kernel / kernel.sum()
