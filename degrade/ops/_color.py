"""Colour spaces and tone curves shared by the colour, brightness and contrast ops."""
from __future__ import annotations

from functools import lru_cache

import kornia
import torch


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB in [0,1] to CIE Lab (D65): L in [0,100], a and b roughly in [-128,127]."""
    return kornia.color.rgb_to_lab(x)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab back to sRGB, clipped to [0,1]."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def rgb_to_hsv(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """RGB in [0,1] to HSV with every channel in [0,1] (hue as a fraction of a turn)."""
    r, g, b = x.unbind(-3)
    v, argmax = x.max(dim=-3)
    c = v - x.min(dim=-3).values
    s = torch.where(v > eps, c / v.clamp(min=eps), torch.zeros_like(v))
    safe_c = c.clamp(min=eps)
    h = torch.stack([((g - b) / safe_c) % 6.0, (b - r) / safe_c + 2.0, (r - g) / safe_c + 4.0], dim=-3)
    h = h.gather(-3, argmax.unsqueeze(-3)).squeeze(-3)
    h = torch.where(c > eps, h / 6.0, torch.zeros_like(h))
    return torch.stack([h, s, v], dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """HSV to RGB by MATLAB's sector formula, valid for any saturation, negative included.

    A negative S (KADID's colour saturation level 5) pushes each channel away from the
    value instead of towards it, inverting the hue; the caller clips the result.
    """
    h, s, v = hsv.unbind(-3)
    h6 = 6.0 * h
    sector = torch.floor(h6)
    f = h6 - sector
    sector = sector.long() % 6
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    choices = torch.stack(
        [
            torch.stack([v, t, p], -3),
            torch.stack([q, v, p], -3),
            torch.stack([p, v, t], -3),
            torch.stack([p, q, v], -3),
            torch.stack([t, p, v], -3),
            torch.stack([v, p, q], -3),
        ],
        dim=0,
    )
    index = sector.unsqueeze(0).unsqueeze(-3).expand(1, *hsv.shape)
    return choices.gather(0, index).squeeze(0)


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
