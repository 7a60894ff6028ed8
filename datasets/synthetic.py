"""Procedural pristine content: unlimited, seeded, offline images with natural-image statistics.

Each image is a *dead leaves* picture, the occlusion model behind the ISO 19567-2 texture chart:
opaque shapes (discs, ellipses, rectangles, polygons) fall on top of one another with radii of
density r^-3 (scale invariance, a 1/f-like power spectrum, sharp occlusion edges; Lee, Mumford and
Huang 2001; Cao, Guichard and Hornung 2010). Flat discs alone lack what photographs have, so each
leaf is filled with one of:

* a patch of a real photograph (rescaled, rotated, colour-permuted): natural texture;
* coloured 1/f^alpha noise (alpha in [1.5, 2.5]) in colours drawn from real photographs;
* a linear gradient between two photo colours (shading);
* a flat photo colour, with a little 1/f texture (as in real surfaces).

The finished picture is seen through a mild lens (a Gaussian of sigma 0.3 to 0.5 px), as a
camera would. Colours and textures come from the built-in photos; nothing is downloaded. One
image is a pure function of (seed, index, size): :func:`render`.
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import torch

from degrade.seeding import derive_seed

MAX_LEAVES = 1500
FILLS = ("photo", "spectral", "gradient", "flat")
FILL_WEIGHTS = (0.4, 0.25, 0.15, 0.2)


@functools.lru_cache(maxsize=1)
def _library() -> tuple[list[list[np.ndarray]], np.ndarray]:
    """The built-in photos (float32 RGB, at most 512 px) at scales 1, 1/2 and 1/4, and a pool of their colours."""
    from degrade.io import read_image
    from degrade.samples import sample_paths

    pyramids = []
    for path in sample_paths().values():
        image = read_image(path).permute(1, 2, 0).numpy()
        scale = 512 / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        levels = [np.ascontiguousarray(image, dtype=np.float32)]
        for _ in range(2):
            levels.append(cv2.resize(levels[-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        pyramids.append(levels)
    rng = np.random.default_rng(0)
    colours = np.concatenate([p[0].reshape(-1, 3)[rng.integers(0, p[0].shape[0] * p[0].shape[1], 4096)]
                              for p in pyramids])
    return pyramids, colours


def _radius(rng: np.random.Generator, r_min: float, r_max: float) -> float:
    """A radius with density proportional to r^-3 on [r_min, r_max] (inverse CDF)."""
    lo, hi = r_min**-2, r_max**-2
    return float((lo - rng.random() * (lo - hi)) ** -0.5)


def spectral_noise(rng: np.random.Generator, h: int, w: int, alpha: float) -> np.ndarray:
    """Zero-mean, unit-std noise with an amplitude spectrum falling as 1/f^(alpha/2) per axis pair."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amplitude = f ** (-alpha / 2.0)
    amplitude[0, 0] = 0.0
    phase = rng.random((h, w // 2 + 1)) * 2 * np.pi
    noise = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(h, w))
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def _colour(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """Near ``base`` (the colour field at the leaf), or now and then any colour of the photos."""
    if rng.random() < 0.15:
        pool = _library()[1]
        return pool[rng.integers(len(pool))]
    return np.clip(base + rng.normal(0.0, 0.08, 3).astype(np.float32), 0.0, 1.0)


def _fill(rng: np.random.Generator, fields: np.ndarray, box: tuple[int, int, int, int], base: np.ndarray) -> np.ndarray:
    """An (h, w, 3) float texture of one of the :data:`FILLS` for the leaf inside ``box``.

    ``fields`` are the image's own 1/f noise fields (F, size, size): leaves cut their texture
    from them at their own place, so no leaf needs a transform of its own.
    """
    top, left, bottom, right = box
    h, w = bottom - top, right - left
    kind = FILLS[rng.choice(len(FILLS), p=FILL_WEIGHTS)]
    if kind == "photo":  # a patch of a photo at scale 1, 1/2 or 1/4, turned by a random quarter
        pyramid = _library()[0][rng.integers(len(_library()[0]))]
        turns = int(rng.integers(4))
        need_h, need_w = (h, w) if turns % 2 == 0 else (w, h)
        fitting = [level for level in pyramid if level.shape[0] >= need_h and level.shape[1] >= need_w]
        if fitting:
            level = fitting[rng.integers(len(fitting))]
            y, x = rng.integers(0, level.shape[0] - need_h + 1), rng.integers(0, level.shape[1] - need_w + 1)
            return np.rot90(level[y : y + need_h, x : x + need_w], turns)
        kind = "spectral"  # a leaf larger than every photo
    field = fields[rng.integers(len(fields)), top:bottom, left:right, None]
    if kind == "spectral":
        t = 1.0 / (1.0 + np.exp(-1.5 * field))  # to (0, 1), most of the mass in the middle
        return _colour(rng, base)[None, None] * (1 - t) + _colour(rng, base)[None, None] * t
    if kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * math.cos(theta) + yy * math.sin(theta)
        t = ((t - t.min()) / max(float(np.ptp(t)), 1e-6))[..., None]
        return _colour(rng, base)[None, None] * (1 - t) + _colour(rng, base)[None, None] * t
    return _colour(rng, base)[None, None] + field * rng.uniform(0.01, 0.08)


def _shape_mask(rng: np.random.Generator, size: int, cy: float, cx: float, r: float) -> tuple[np.ndarray, tuple]:
    """A uint8 mask of one leaf, cut to the canvas, and its bounding box (top, left, bottom, right)."""
    reach = int(math.ceil(r * 1.5)) + 2
    top, left = max(0, int(cy) - reach), max(0, int(cx) - reach)
    bottom, right = min(size, int(cy) + reach + 1), min(size, int(cx) + reach + 1)
    if bottom <= top or right <= left:
        return np.zeros((0, 0), np.uint8), (0, 0, 0, 0)
    mask = np.zeros((bottom - top, right - left), np.uint8)
    centre = (cx - left, cy - top)
    kind = rng.integers(4)
    shift = 4  # sub-pixel precision for the anti-aliased outlines
    scale = 1 << shift
    if kind == 0:
        cv2.circle(mask, (round(centre[0] * scale), round(centre[1] * scale)), round(r * scale), 255, -1,
                   cv2.LINE_AA, shift)
    elif kind == 1:
        axes = (round(r * scale), round(r * rng.uniform(0.3, 1.0) * scale))
        cv2.ellipse(mask, (round(centre[0] * scale), round(centre[1] * scale)), axes, rng.uniform(0, 180), 0, 360,
                    255, -1, cv2.LINE_AA, shift)
    else:
        corners = 4 if kind == 2 else int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners)) if kind == 3 else \
            rng.uniform(0, np.pi / 2) + np.arange(4) * np.pi / 2 + np.array([0, 0.6, 0, 0.6]) * rng.uniform(-1, 1)
        radii = r * (rng.uniform(0.6, 1.2, corners) if kind == 3 else np.ones(corners))
        points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points * scale).astype(np.int32)], 255, cv2.LINE_AA, shift)
    return mask, (top, left, bottom, right)


def _colour_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """The colour layout of a random photo, at 1/16 of its detail: (size, size, 3) float.

    Leaves take their colour from this field at their centre, so neighbouring leaves have related
    colours, as neighbouring regions of a photo do.
    """
    pyramids = _library()[0]
    coarse = cv2.resize(pyramids[rng.integers(len(pyramids))][-1], (16, 16), interpolation=cv2.INTER_AREA)
    coarse = np.ascontiguousarray(np.rot90(coarse, int(rng.integers(4))))
    if rng.random() < 0.5:
        coarse = coarse[:, ::-1]
    return cv2.resize(np.ascontiguousarray(coarse), (size, size), interpolation=cv2.INTER_CUBIC)


def render(seed: int, index: int, size: int = 256) -> torch.Tensor:
    """Synthetic pristine image ``index`` of ``seed``: uint8 RGB (3, size, size).

    Leaves are drawn front to back and each pixel keeps the first leaf that covers it (the dead
    leaves model), until the canvas is covered or :data:`MAX_LEAVES` have fallen; what no leaf
    covers shows the ground, the colour field with a 1/f texture. The smallest leaf (1.5 to 10%
    of the side) varies per image, from busy to calm scenes.
    """
    rng = np.random.default_rng(derive_seed("synthetic", seed, index, size))
    fields = np.stack([spectral_noise(rng, size, size, rng.uniform(1.6, 2.6)) for _ in range(3)])
    layout = _colour_field(rng, size)
    canvas = np.zeros((size, size, 3), np.float32)
    cover = np.zeros((size, size), np.float32)  # how much of each pixel nearer leaves already hide
    r_min = size * math.exp(rng.uniform(math.log(0.015), math.log(0.1)))
    r_max = size * rng.uniform(0.3, 0.8)
    for leaf in range(MAX_LEAVES):
        r = _radius(rng, r_min, r_max)
        cy, cx = rng.uniform(-r / 2, size + r / 2), rng.uniform(-r / 2, size + r / 2)
        hidden = cover[max(0, int(cy - r)) : max(0, int(cy + r) + 1), max(0, int(cx - r)) : max(0, int(cx + r) + 1)]
        if hidden.size == 0 or hidden.min() > 0.999:
            continue  # off the canvas, or behind nearer leaves: nothing to draw
        mask, box = _shape_mask(rng, size, cy, cx, r)
        if mask.size == 0:
            continue
        top, left, bottom, right = box
        alpha = (mask.astype(np.float32) / 255.0) * (1.0 - cover[top:bottom, left:right])
        if alpha.max() <= 1e-3:
            continue
        base = layout[min(size - 1, max(0, int(cy))), min(size - 1, max(0, int(cx)))]
        canvas[top:bottom, left:right] += alpha[..., None] * _fill(rng, fields, box, base)
        cover[top:bottom, left:right] += alpha
        if leaf % 32 == 31 and (cover < 0.99).mean() < 0.002:
            break
    ground = layout + fields[0, ..., None] * rng.uniform(0.01, 0.06)
    canvas += (1.0 - cover)[..., None] * ground
    canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 0.5), borderType=cv2.BORDER_REFLECT)
    image = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()
