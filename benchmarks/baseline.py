"""Per-image OpenCV/numpy implementations of every distortion, applying the engine's plans.

This is how IQA training code usually degrades images: one image at a time inside DataLoader
workers, with OpenCV and numpy. It follows the same algorithms and parameters as the engine
(kernels are taken from ``degrade`` so both sides filter with identical taps), so the
benchmark compares execution strategies, not different distortions. Noise comes from numpy
generators seeded by the step seed: same distribution as the engine, different samples.
Images are float32 RGB (H, W, 3) in [0, 1].
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from degrade.ops import _kernels
from degrade.ops._color import _not_a_knot
from degrade.ops.compression import jpeg2000_rate
from degrade.plan import Plan, Step

REPLICATE = cv2.BORDER_REPLICATE


def _filter(img: np.ndarray, kernel) -> np.ndarray:
    return cv2.filter2D(img, -1, np.asarray(kernel, np.float32), borderType=REPLICATE)


def _gauss(img: np.ndarray, sigma: float) -> np.ndarray:
    k = 2 * _kernels.kadid_radius(sigma) + 1
    return cv2.GaussianBlur(img, (k, k), sigma, borderType=REPLICATE)


def _lab(img):
    return cv2.cvtColor(img, cv2.COLOR_RGB2Lab)


def _rgb(lab):
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)


def _u8(img):
    return cv2.cvtColor((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def _f32(bgr):
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def _codec(img, ext, params):
    return _f32(cv2.imdecode(cv2.imencode(ext, _u8(img), params)[1], cv2.IMREAD_COLOR))


def _curve(x, m):
    return np.clip((2 - 4 * m) * x * x + (4 * m - 1) * x, 0, 1)


def _rng(step: Step) -> np.random.Generator:
    return np.random.default_rng(step.seed)


def color_shift(img, amount, direction):
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, borderType=REPLICATE) / 8
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, borderType=REPLICATE) / 8
    e = _gauss(np.sqrt(gx * gx + gy * gy), 4.0)
    e = (e - e.min()) / max(e.max() - e.min(), 1e-12)
    lo, hi = np.percentile(e, [1, 99])
    e = np.clip(e, lo, hi)
    e = (e - e.min()) / max(e.max() - e.min(), 1e-12)
    t = math.radians(direction)
    shift = np.float32([[1, 0, amount * math.cos(t)], [0, 1, -amount * math.sin(t)]])
    green = cv2.warpAffine(img[..., 1], shift, img.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=REPLICATE)
    out = img.copy()
    out[..., 1] = green * e + img[..., 1] * (1 - e)
    return out


def paste_patches(img, n, rng, side=16, reach=8):
    out = img.copy()
    h, w = img.shape[:2]
    p = min(side, h, w)
    for _ in range(n):
        y, x = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
        dy, dx = rng.integers(-reach, reach + 1, 2)
        ty, tx = min(max(y + dy, 0), h - p), min(max(x + dx, 0), w - p)
        out[ty : ty + p, tx : tx + p] = out[y : y + p, x : x + p]
    return out


def color_blocks(img, n, rng, side=32):
    out = img.copy()
    h, w = img.shape[:2]
    p = min(side, h, w)
    for _ in range(n):
        y, x = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
        out[y : y + p, x : x + p] = rng.random(3)
    return out


def jitter(img, amount, rng):
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(5):
        dx, dy = (rng.standard_normal((2, h, w)) * amount).astype(np.float32)
        img = cv2.remap(img, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=REPLICATE)
    return img


def contrast_curve(img, a):
    knots = (0.0, 0.3, 0.5, 0.7, 1.0)
    coeffs = _not_a_knot(knots, (0.0, 0.25 - a / 4, 0.5, 0.75 + a / 4, 1.0)).numpy()
    idx = np.clip(np.searchsorted(knots[1:-1], img), 0, 3)
    dx = img - np.asarray(knots)[idx]
    c = coeffs[idx]
    return np.clip(c[..., 0] + dx * (c[..., 1] + dx * (c[..., 2] + dx * c[..., 3])), 0, 1).astype(np.float32)


def palette(img, colors):
    pil = Image.fromarray((img * 255 + 0.5).astype(np.uint8))
    return np.asarray(pil.quantize(int(colors), dither=Image.Dither.FLOYDSTEINBERG).convert("RGB"), np.float32) / 255


def apply_step(img: np.ndarray, step: Step) -> np.ndarray:
    p = step.params
    n = step.name
    if n == "gaussian_blur":
        return _gauss(img, p["sigma"])
    if n == "lens_blur":
        return _filter(img, _kernels.disk(p["radius"]))
    if n == "motion_blur":
        return _filter(img, _kernels.motion_line(p["length"], p["angle"]))
    if n == "anisotropic_blur":
        return _filter(img, _kernels.anisotropic_gaussian(p["sigma"], p["sigma"] * p["ratio"], p["angle"]))
    if n == "generalized_blur":
        return _filter(img, _kernels.anisotropic_gaussian(p["sigma"], p["sigma"], 0.0, p["beta"]))
    if n == "ringing":
        return np.clip(_filter(img, _kernels.circular_lowpass(p["cutoff"])), 0, 1)
    if n == "color_diffusion":
        lab = _lab(img)
        sigma = 1.5 * p["amount"] + 2
        lab[..., 1:] = _gauss(lab[..., 1:].copy(), sigma) * p["amount"]
        return _rgb(lab)
    if n == "color_shift":
        return color_shift(img, p["amount"], p["direction"])
    if n == "color_quantization":
        return palette(img, p["colors"])
    if n == "color_saturation_hsv":
        v = img.max(axis=2, keepdims=True)
        return np.clip(v + p["factor"] * (img - v), 0, 1)
    if n == "color_saturation_lab":
        lab = _lab(img)
        lab[..., 1:] *= p["factor"]
        return _rgb(lab)
    if n == "jpeg":
        return _codec(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(p["quality"])])
    if n == "jpeg2000":
        return _codec(img, ".jp2", [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, jpeg2000_rate(p["ratio"])])
    if n == "webp":
        return _codec(img, ".webp", [cv2.IMWRITE_WEBP_QUALITY, int(p["quality"])])
    if n == "white_noise":
        return np.clip(img + _rng(step).standard_normal(img.shape, np.float32) * math.sqrt(p["variance"]), 0, 1)
    if n == "white_noise_cc":
        ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
        ycc += _rng(step).standard_normal(img.shape, np.float32) * math.sqrt(p["variance"])
        return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), 0, 1)
    if n == "impulse_noise":
        u = _rng(step).random(img.shape, np.float32)
        d = p["density"]
        return np.where(u < d / 2, 0, np.where(u < d, 1, img)).astype(np.float32)
    if n == "multiplicative_noise":
        noise = _rng(step).standard_normal(img.shape, np.float32) * math.sqrt(p["variance"])
        return np.clip(img + img * noise, 0, 1)
    if n == "poisson_noise":
        return np.clip(_rng(step).poisson(img * p["photons"]) / p["photons"], 0, 1).astype(np.float32)
    if n == "denoise":
        noisy = np.clip(img + _rng(step).standard_normal(img.shape, np.float32) * math.sqrt(p["variance"]), 0, 1)
        h = 0.8 * 255 * math.sqrt(p["variance"])
        return _f32(cv2.fastNlMeansDenoisingColored(_u8(noisy), None, h, h, 5, 13))
    if n == "brighten":
        m = 0.5 + p["amount"] / 2
        lab = _lab(img)
        lab[..., 0] = 100 * _curve(lab[..., 0] / 100, m)
        return (2 * _curve(img, m) + _rgb(lab)) / 3
    if n == "darken":
        return _curve(img, 0.5 - p["amount"] / 2)
    if n == "mean_shift":
        return np.clip(img + p["offset"], 0, 1)
    if n == "jitter":
        return jitter(img, p["amount"], _rng(step))
    if n == "non_eccentricity_patch":
        return paste_patches(img, int(p["patches"]), _rng(step))
    if n == "pixelate":
        h, w = img.shape[:2]
        z = 0.95 - p["strength"] ** 0.6
        small = cv2.resize(img, (max(1, int(w * z)), max(1, int(h * z))), interpolation=cv2.INTER_NEAREST)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    if n == "quantization":
        levels = p["levels"]
        return ((np.minimum(np.floor(img * levels), levels - 1) + 0.5) / levels).astype(np.float32)
    if n == "color_block":
        return color_blocks(img, int(p["blocks"]), _rng(step))
    if n == "high_sharpen":
        lab = _lab(img)
        blurred = cv2.GaussianBlur(lab[..., 0], (13, 13), 6.0, borderType=REPLICATE)
        lab[..., 0] = np.clip(lab[..., 0] + p["amount"] * (lab[..., 0] - blurred), 0, 100)
        return _rgb(lab)
    if n == "contrast_change":
        return contrast_curve(img, p["a"])
    if n == "contrast_compression":
        return (0.5 - p["half_range"] + 2 * p["half_range"] * img).astype(np.float32)
    if n == "resize":
        h, w = img.shape[:2]
        method = int(p["method"])
        down = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA)[method]
        small = cv2.resize(img, (max(1, round(w * p["scale"])), max(1, round(h * p["scale"]))), interpolation=down)
        up = cv2.INTER_CUBIC if method == 1 else cv2.INTER_LINEAR
        return np.clip(cv2.resize(small, (w, h), interpolation=up), 0, 1)
    raise KeyError(f"no baseline for {n}")


def apply_plan(img: np.ndarray, plan: Plan) -> np.ndarray:
    for step in plan.steps:
        img = apply_step(img, step)
    return img
