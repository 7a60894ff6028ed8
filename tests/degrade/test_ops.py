"""Op-level correctness: kernels, colour maths and codecs against independent computations."""
from __future__ import annotations

import math

import cv2
import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import degrade
from degrade.ops import _kernels, blur, brightness, color, compression, noise, sharpness, spatial
from degrade.ops._color import lab_to_rgb, rgb_to_lab, spline_curve
from degrade.ops._filter import conv_per_sample
from tests.conftest import photo


def gens(n: int, seed: int = 0, device: str = "cpu") -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(seed + i) for i in range(n)]


# --- kernels -------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma,length", [(0.1, 3), (0.5, 3), (1.0, 5), (2.0, 9), (5.0, 21)])
def test_gaussian_kernel_follows_the_kadid_size_rule(sigma, length):
    taps = _kernels.gaussian_taps(sigma)
    assert taps.numel() == length == 2 * math.ceil(2 * sigma) + 1
    assert float(taps.sum()) == pytest.approx(1.0)
    assert torch.equal(taps, taps.flip(0))


@pytest.mark.parametrize("radius", [1.0, 2.0, 4.0, 6.0, 8.0, 2.5])
def test_disk_kernel_integrates_the_disk_area(radius):
    half = math.ceil(radius - 0.5)
    kernel = _kernels.disk(radius)
    assert kernel.shape == (2 * half + 1, 2 * half + 1)
    assert float(kernel.sum()) == pytest.approx(1.0)
    # the centre pixel is fully covered; its weight is 1 / (pi r^2)
    assert float(kernel[half, half]) == pytest.approx(1 / (math.pi * radius**2), rel=2e-3)
    assert torch.allclose(kernel, kernel.flip(0)) and torch.allclose(kernel, kernel.T)


def test_motion_kernel_geometry():
    assert torch.equal(_kernels.motion_line(1, 37), torch.ones(1, 1, dtype=torch.float64))
    horizontal = _kernels.motion_line(5, 0)
    centre = horizontal.shape[0] // 2
    assert float(horizontal[centre].sum()) == pytest.approx(1.0)
    assert (horizontal[centre, centre - 2 : centre + 3] > 0).all()
    vertical = _kernels.motion_line(5, 90)
    assert torch.allclose(vertical, horizontal.T)
    diagonal = _kernels.motion_line(7, 45)
    assert torch.allclose(diagonal, diagonal.flip(0).flip(1))  # point-symmetric
    c = diagonal.shape[0] // 2
    assert float(diagonal[c - 2, c + 2]) > 0.1 and float(diagonal[c - 2, c - 2]) == 0  # runs up and to the right


def test_anisotropic_kernel_is_elongated_along_its_angle():
    k = _kernels.anisotropic_gaussian(3.0, 1.0, 0.0)
    c = k.shape[0] // 2
    assert float(k[c, c + 4]) > 10 * float(k[c + 4, c])
    assert torch.allclose(_kernels.anisotropic_gaussian(3.0, 1.0, 90.0), k.T, atol=1e-12)


def test_circular_lowpass_rings():
    k = _kernels.circular_lowpass(0.3 * math.pi)
    assert float(k.sum()) == pytest.approx(1.0)
    assert float(k.min()) < 0  # negative side lobes are what makes the ringing


def test_per_sample_convolution_matches_opencv_with_replicated_borders():
    x = photo("coffee", 40)[None].double()
    kernel = _kernels.disk(3.0)
    ours = conv_per_sample(x, kernel[None])[0].permute(1, 2, 0).numpy()
    ref = cv2.filter2D(x[0].permute(1, 2, 0).numpy(), -1, kernel.numpy(), borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_gaussian_blur_matches_opencv():
    x = photo("chelsea", 40)[None].double()
    ours = blur.gaussian_blur(x, 2.0)[0].permute(1, 2, 0).numpy()
    ref = cv2.GaussianBlur(x[0].permute(1, 2, 0).numpy(), (9, 9), 2.0, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


# --- colour --------------------------------------------------------------------------------


def _hsv_sector_reference(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Saturation change the long way: RGB -> HSV, S * factor, HSV -> RGB by MATLAB's sector formula."""
    r, g, b = x.unbind(1)
    v = x.amax(1)
    c = v - x.amin(1)
    s = torch.where(v > 0, c / v.clamp(min=1e-12), torch.zeros_like(v)) * factor
    safe = c.clamp(min=1e-12)
    h = torch.where(v == r, ((g - b) / safe) % 6, torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(c > 0, h, torch.zeros_like(h))
    sector, f = torch.floor(h).long() % 6, h - torch.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.zeros_like(x)
    for k, channels in enumerate(table):
        out = torch.where((sector == k).unsqueeze(1), torch.stack(channels, 1), out)
    return out.clamp(0, 1)


@pytest.mark.parametrize("factor", [0.4, 0.1, 0.0, -0.4])
def test_hsv_saturation_equals_the_hsv_round_trip(factor):
    x = photo("astronaut", 32)[None].double()
    torch.testing.assert_close(color.color_saturation_hsv(x, factor), _hsv_sector_reference(x, factor))


def test_hsv_saturation_matches_opencv_for_positive_factors():
    x = photo("coffee", 32)[None]
    hsv = cv2.cvtColor(x[0].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2HSV)
    hsv[..., 1] *= 0.3
    ref = torch.from_numpy(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)).permute(2, 0, 1)[None]
    torch.testing.assert_close(color.color_saturation_hsv(x, 0.3), ref, atol=1e-5, rtol=0)


def test_lab_conversion_matches_opencv():
    x = photo("chelsea", 32)[None]
    ref = torch.from_numpy(cv2.cvtColor(x[0].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2Lab)).permute(2, 0, 1)[None]
    torch.testing.assert_close(rgb_to_lab(x), kornia.color.rgb_to_lab(x), atol=1e-3, rtol=0)
    torch.testing.assert_close(rgb_to_lab(x), ref, atol=0.5, rtol=0)  # OpenCV's white point differs slightly
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x.double())), x.double(), atol=1e-6, rtol=0)


def test_lab_saturation_factor_one_is_identity():
    x = photo("coffee", 32)[None]
    torch.testing.assert_close(color.color_saturation_lab(x, 1.0), x, atol=1e-4, rtol=0)


def test_tone_curves_pass_through_their_knots():
    knots = torch.tensor([0.0, 0.3, 0.5, 0.7, 1.0], dtype=torch.float64).view(1, 1, 1, 5).expand(2, 3, 1, 5)
    for a in (0.3, -0.6):
        out = sharpness.contrast_change(knots, a)
        expected = torch.tensor([0, 0.25 - a / 4, 0.5, 0.75 + a / 4, 1], dtype=torch.float64)
        torch.testing.assert_close(out[0, 0, 0], expected)
    # not-a-knot: with cubic data the spline reproduces the cubic exactly
    xs = torch.linspace(0, 1, 11, dtype=torch.float64).view(1, 1, 1, 11)
    cubic = lambda t: 0.1 + 0.2 * t + 0.3 * t**2 + 0.2 * t**3  # noqa: E731
    knots_y = [tuple(cubic(v) for v in (0.0, 0.3, 0.5, 0.7, 1.0))]
    torch.testing.assert_close(spline_curve(xs, (0.0, 0.3, 0.5, 0.7, 1.0), knots_y), cubic(xs).clamp(0, 1))


def test_brighten_and_darken_curves_hit_their_midpoints():
    mid = torch.full((1, 3, 1, 1), 0.5, dtype=torch.float64)
    torch.testing.assert_close(brightness.darken(mid, 0.4), torch.full_like(mid, 0.3))
    assert float(brightness.brighten(mid, 0.4).mean()) > 0.6


def test_color_shift_moves_green_only_at_edges():
    x = torch.zeros(1, 3, 40, 40)
    x[:, :, :, 20:] = 1.0  # one vertical edge
    y = color.color_shift(x, 6.0, 0.0)
    assert torch.equal(y[:, 0], x[:, 0]) and torch.equal(y[:, 2], x[:, 2])
    # green content moved right: the dark side now reaches into columns 20..25 along the edge
    assert float(y[0, 1, 20, 20:26].min()) < 0.5 and float(x[0, 1, 20, 20:26].min()) == 1.0
    assert torch.allclose(y[:, 1, :, :4], x[:, 1, :, :4])  # far from the edge nothing moves


def test_color_quantization_uses_a_small_palette_and_dithers():
    x = photo("coffee", 64)[None]
    y = color.color_quantization(x, 8, gens(1))
    colours = torch.unique(y[0].flatten(1).T, dim=0)
    assert len(colours) <= 8
    # error diffusion keeps local averages: a 4x4 box blur of the result tracks the input
    box = lambda t: F.avg_pool2d(t, 4)  # noqa: E731
    assert float((box(y) - box(x)).abs().mean()) < 0.06
    assert float((y - x).abs().mean()) > float((box(y) - box(x)).abs().mean())


# --- codecs --------------------------------------------------------------------------------


def _cv2_roundtrip(x: torch.Tensor, ext: str, params: list[int]) -> torch.Tensor:
    bgr = (x[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255 + 0.5).astype(np.uint8)
    decoded = cv2.imdecode(cv2.imencode(ext, np.ascontiguousarray(bgr), params)[1], cv2.IMREAD_COLOR)
    return torch.from_numpy(decoded[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255


def test_jpeg_is_bit_identical_to_libjpeg():
    x = photo("astronaut", 48)[None]
    expected = _cv2_roundtrip(x, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 24])
    assert torch.equal(compression.jpeg(x, 24), expected)


def test_webp_is_bit_identical_to_libwebp():
    x = photo("rocket", 48)[None]
    expected = _cv2_roundtrip(x, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 25])
    assert torch.equal(compression.webp(x, 25), expected)


def test_jpeg2000_rate_quantisation():
    assert compression.jpeg2000_rate(16) == 63
    assert compression.jpeg2000_rate(400) == 3
    assert compression.jpeg2000_rate(1) == 1000


def test_differentiable_jpeg_is_close_to_libjpeg():
    x = photo("chelsea", 64)[None]
    exact, approx = compression.jpeg(x, 30), compression.jpeg_differentiable(x, 30)
    psnr = -10 * math.log10(float(((exact - approx) ** 2).mean()))
    assert psnr > 30


# --- noise ---------------------------------------------------------------------------------


def test_white_noise_statistics():
    x = torch.full((2, 3, 128, 128), 0.5)
    y = noise.white_noise(x, 0.003, gens(2))
    assert float((y - x).std()) == pytest.approx(math.sqrt(0.003), rel=0.03)
    assert abs(float((y - x).mean())) < 0.002


def test_impulse_noise_hits_channels_independently():
    x = torch.full((1, 3, 128, 128), 0.5)
    y = noise.impulse_noise(x, 0.03, gens(1))
    changed = y != x
    assert float(changed.float().mean()) == pytest.approx(0.03, rel=0.1)
    assert float((y[changed] == 1).float().mean()) == pytest.approx(0.5, abs=0.05)
    assert not torch.equal(changed[:, 0], changed[:, 1])  # per-channel, unlike Kornia's salt and pepper


def test_same_seed_same_noise_field_on_different_images():
    a, b = torch.full((1, 3, 32, 32), 0.3), torch.full((1, 3, 32, 32), 0.6)
    na = noise.white_noise(a, 0.001, gens(1, 9)) - a
    nb = noise.white_noise(b, 0.001, gens(1, 9)) - b
    torch.testing.assert_close(na, nb)
    ia = noise.impulse_noise(a, 0.05, gens(1, 9)) != a
    ib = noise.impulse_noise(b, 0.05, gens(1, 9)) != b
    assert torch.equal(ia, ib)


def test_poisson_noise_variance_scales_with_signal():
    x = torch.full((1, 3, 128, 128), 0.5)
    y = noise.poisson_noise(x, 200.0, gens(1))
    assert float((y - x).var()) == pytest.approx(0.5 / 200.0, rel=0.1)


def test_denoise_removes_most_of_the_noise_it_adds():
    x = photo("coffee", 64)[None]
    noisy = noise.white_noise(x, 0.03, gens(1))
    cleaned = noise.denoise(x, 0.03, gens(1))
    assert float(((cleaned - x) ** 2).mean()) < 0.5 * float(((noisy - x) ** 2).mean())


# --- spatial -------------------------------------------------------------------------------


def test_pixelate_equals_nearest_down_up():
    x = photo("rocket", 50)[None]
    z = 0.95 - 0.2**0.6
    small = F.interpolate(x, size=(int(50 * z), int(50 * z)), mode="nearest")
    assert torch.equal(spatial.pixelate(x, 0.2), F.interpolate(small, size=(50, 50), mode="nearest"))


def test_pixelate_on_the_cpu_picks_the_pixels_of_the_torch_path():
    x = torch.stack([photo("rocket", 50)[:, :, :37], photo("coffee", 50)[:, :, :37], photo("chelsea", 50)[:, :, :37]])
    strengths = torch.tensor([0.05, 0.5, 0.9])  # 50 -> 14 px is a size where OpenCV picks other pixels
    assert spatial._opencv_agrees(50, 39) and not spatial._opencv_agrees(50, 14)
    with torch.no_grad():
        fast = spatial.pixelate(x, strengths)
        with degrade.torch_path():
            reference = spatial.pixelate(x, strengths)
    assert torch.equal(fast, reference)
    assert torch.equal(fast[1:2], spatial.pixelate(x[1:2], 0.5))


def test_quantization_levels():
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y = spatial.quantization(x, 7)
    assert len(torch.unique(y)) == 7
    assert float((y - x).abs().max()) <= 0.5 / 7 + 1e-6


def test_color_blocks_are_uniform_squares_and_nest_across_levels():
    x = photo("chelsea", 96)[None]
    few = spatial.color_block(x, 2, gens(1, 4))
    many = spatial.color_block(x, 6, gens(1, 4))
    changed_few, changed_many = (few != x).any(1), (many != x).any(1)
    assert 0 < int(changed_few.sum()) <= 2 * 32 * 32
    # the first two of six blocks are the two blocks of the lower level
    assert bool(changed_many[changed_few].all())
    assert int(changed_many.sum()) > int(changed_few.sum())
    # each block is one colour: a 32x32 window of the 2-block result with one unique colour exists
    colours = few[0].unfold(1, 32, 1).unfold(2, 32, 1)  # (3, H-31, W-31, 32, 32)
    flat = colours.flatten(3)
    uniform = (flat.amax(-1) == flat.amin(-1)).all(0)
    assert bool(uniform.any())


def test_non_eccentricity_patch_moves_content_locally():
    x = photo("astronaut", 96)[None]
    y = spatial.non_eccentricity_patch(x, 20, gens(1))
    changed = (y != x).any(1)
    assert 0 < float(changed.float().mean()) < 0.9
    # every output value already existed in the input image (copies, no new colours)
    assert set(torch.unique(y).tolist()) <= set(torch.unique(x).tolist())


def test_jitter_zero_amount_is_identity():
    x = photo("coffee", 40)[None]
    torch.testing.assert_close(spatial.jitter(x, 0.0, gens(1)), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [0, 1, 2])
def test_resize_methods_soften_more_at_smaller_scales(method):
    x = photo("astronaut", 64)[None]
    mild, strong = spatial.resize(x, 0.8, method), spatial.resize(x, 0.25, method)
    assert float(((strong - x) ** 2).mean()) > float(((mild - x) ** 2).mean())


def test_contrast_compression_maps_onto_the_half_range():
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    torch.testing.assert_close(sharpness.contrast_compression(x, 0.1)[0, 0, 0], torch.tensor([0.4, 0.5, 0.6]))
