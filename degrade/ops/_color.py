"""Colour spaces and tone curves shared by the colour, brightness and contrast ops."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

from . import _cpu


# sRGB (D65) primaries to XYZ, rows divided by the white point so that white maps to (1, 1, 1).
_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
) / torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)[:, None]
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
# (L, a, b) = F (fx, fy, fz) + (-16, 0, 0)
_F_TO_LAB = torch.tensor([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]], dtype=torch.float64)
_LAB_TO_F = torch.linalg.inv(_F_TO_LAB)
_DELTA = 6.0 / 29.0


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix to the channel axis of (B, 3, H, W) (einsum is far faster than a 1x1 conv here)."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(x), x)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB in [0,1] to CIE Lab (D65): L in [0,100], a and b roughly in [-128,127]."""
    if _cpu.use(x):
        return _rgb_to_lab_planes(x)
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055).pow(2.4), x / 12.92)
    xyz = _mix(_RGB_TO_XYZ, linear)
    f = torch.where(xyz > _DELTA**3, xyz.clamp(min=_DELTA**3).pow(1.0 / 3.0), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    lab = _mix(_F_TO_LAB, f)
    return torch.cat([lab[:, :1] - 16.0, lab[:, 1:]], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab back to sRGB, clipped to [0,1]."""
    if _cpu.use(lab):
        return _lab_to_rgb_planes(lab)
    f = _mix(_LAB_TO_F, torch.cat([lab[:, :1] + 16.0, lab[:, 1:]], dim=1))
    xyz = torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    linear = _mix(_XYZ_TO_RGB, xyz).clamp(0.0, 1.0)
    return torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308).pow(1.0 / 2.4) - 0.055, 12.92 * linear)


# The CPU fast path of the two conversions: the same formulas on contiguous channel planes with
# numpy, powers as OpenCV's vectorised exp(p log t). Torch's pow, its where on the strided output
# of einsum and a temporary per step made each direction cost about 2.5 ms per 256 px image on one
# thread; these take about 0.7 ms and agree with the torch path to float rounding (about 1e-6 of
# the value). OpenCV's own Lab conversion is faster still but interpolates tables: 0.5 off in a
# and b and 1.2/255 after a round trip.


def _planes(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) as a contiguous numpy (B, 3, H*W) array (a view where ``x`` is contiguous)."""
    return x.detach().contiguous().numpy().reshape(x.shape[0], 3, -1)


_PLANE_MATRICES = {(name, dtype): matrix.to(dtype) for name, matrix in (("rgb_to_xyz", _RGB_TO_XYZ),
                   ("xyz_to_rgb", _XYZ_TO_RGB)) for dtype in (torch.float32, torch.float64)}


def _matmul(name: str, planes: np.ndarray) -> np.ndarray:
    """A 3x3 matrix applied to (B, 3, N) planes: torch's matmul, single-threaded inside the engine's
    parts (numpy's would start BLAS threads of its own beside the pool)."""
    planes = torch.from_numpy(planes)
    return torch.matmul(_PLANE_MATRICES[name, planes.dtype], planes).numpy()


def _power(t: np.ndarray, p: float) -> np.ndarray:
    """``t ** p`` in place, for positive ``t``."""
    rows = t.reshape(-1, t.shape[-1])
    cv2.log(rows, dst=rows)
    rows *= p
    cv2.exp(rows, dst=rows)
    return t


def _rgb_to_lab_planes(x: torch.Tensor) -> torch.Tensor:
    rgb = _planes(x)
    c = rgb.dtype.type
    linear = _power((rgb + c(0.055)) * c(1 / 1.055), 2.4)
    np.copyto(linear, rgb * c(1 / 12.92), where=rgb <= 0.04045)
    xyz = _matmul("rgb_to_xyz", linear)
    f = _power(np.maximum(xyz, c(_DELTA**3)), 1.0 / 3.0)
    np.copyto(f, xyz * c(1 / (3 * _DELTA**2)) + c(4 / 29), where=xyz <= _DELTA**3)
    lab = np.empty_like(f)
    np.multiply(f[:, 1], c(116), out=lab[:, 0])
    lab[:, 0] -= c(16)
    np.subtract(f[:, 0], f[:, 1], out=lab[:, 1])
    lab[:, 1] *= c(500)
    np.subtract(f[:, 1], f[:, 2], out=lab[:, 2])
    lab[:, 2] *= c(200)
    return torch.from_numpy(lab).view(x.shape)


def _lab_to_rgb_planes(lab: torch.Tensor) -> torch.Tensor:
    planes = _planes(lab)
    c = planes.dtype.type
    f = np.empty_like(planes)
    np.multiply(planes[:, 0] + c(16), c(1 / 116), out=f[:, 1])
    np.add(f[:, 1], planes[:, 1] * c(1 / 500), out=f[:, 0])
    np.subtract(f[:, 1], planes[:, 2] * c(1 / 200), out=f[:, 2])
    xyz = f * f * f
    np.copyto(xyz, (f - c(4 / 29)) * c(3 * _DELTA**2), where=f <= _DELTA)
    linear = _matmul("xyz_to_rgb", xyz)
    np.clip(linear, 0.0, 1.0, out=linear)
    low = linear <= 0.0031308
    dark = linear * c(12.92)
    np.maximum(linear, c(0.0031308), out=linear)
    _power(linear, 1.0 / 2.4)
    linear *= c(1.055)
    linear -= c(0.055)
    np.copyto(linear, dark, where=low)
    return torch.from_numpy(linear).view(lab.shape)


def midpoint_curve(x: torch.Tensor, midpoint: torch.Tensor) -> torch.Tensor:
    """The parabola through (0,0), (0.5, m), (1,1), clipped to [0,1]; ``midpoint`` is per sample.

    A 3-knot interpolating spline (MATLAB's not-a-knot ``spline``) is exactly this parabola.
    """
    m = midpoint.view(-1, *([1] * (x.ndim - 1)))
    return ((2.0 - 4.0 * m) * x * x + (4.0 * m - 1.0) * x).clamp(0.0, 1.0)


@lru_cache(maxsize=256)
def _not_a_knot(xs: tuple[float, ...], ys: tuple[float, ...]) -> torch.Tensor:
    """Coefficients (n-1, 4) of the not-a-knot cubic spline through (xs, ys), in powers of (x - x_i)."""
    n = len(xs)
    if n < 4:
        raise ValueError("a not-a-knot cubic spline needs at least 4 knots")
    m = 4 * (n - 1)
    a = torch.zeros(m, m, dtype=torch.float64)
    rhs = torch.zeros(m, dtype=torch.float64)
    row = 0
    for i in range(n - 1):
        h = xs[i + 1] - xs[i]
        a[row, 4 * i] = 1.0
        rhs[row] = ys[i]
        row += 1
        a[row, 4 * i : 4 * i + 4] = torch.tensor([1.0, h, h * h, h**3], dtype=torch.float64)
        rhs[row] = ys[i + 1]
        row += 1
    for i in range(n - 2):  # first and second derivative continuity at interior knots
        h = xs[i + 1] - xs[i]
        a[row, 4 * i : 4 * i + 4] = torch.tensor([0.0, 1.0, 2 * h, 3 * h * h], dtype=torch.float64)
        a[row, 4 * (i + 1) + 1] = -1.0
        row += 1
        a[row, 4 * i : 4 * i + 4] = torch.tensor([0.0, 0.0, 2.0, 6 * h], dtype=torch.float64)
        a[row, 4 * (i + 1) + 2] = -2.0
        row += 1
    for i in (0, n - 3):  # not-a-knot: third derivative continuous at the second and penultimate knots
        a[row, 4 * i + 3] = 1.0
        a[row, 4 * (i + 1) + 3] = -1.0
        row += 1
    return torch.linalg.solve(a, rhs).view(n - 1, 4)


def spline_curve(x: torch.Tensor, knots_x: tuple[float, ...], knots_y: list[tuple[float, ...]]) -> torch.Tensor:
    """Apply per-sample tone curves (not-a-knot cubic splines through shared x knots), clipped to [0,1].

    Args:
        x: (B, C, H, W) values in [0, 1].
        knots_x: increasing knot positions shared by all samples.
        knots_y: for each sample, the curve's values at ``knots_x``.
    """
    b = x.shape[0]
    coeffs = torch.stack([_not_a_knot(knots_x, tuple(y)) for y in knots_y]).to(x)  # (B, n-1, 4)
    kx = torch.tensor(knots_x, dtype=x.dtype, device=x.device)
    flat = x.reshape(b, -1)
    interval = torch.bucketize(flat.clamp(0.0, 1.0), kx[1:-1])
    dx = flat - kx[interval]
    c = [coeffs[:, :, j].gather(1, interval) for j in range(4)]
    out = c[0] + dx * (c[1] + dx * (c[2] + dx * c[3]))
    return out.view_as(x).clamp(0.0, 1.0)
