"""The catalogue: KADID-10k's 25 distortion types, ARNIQA's extra one, and real-world camera/restoration distortions.

Level values are those of KADID-10k's generator unless noted; level 1 is the mildest. Two
tables besides the default exist where sources differ: ``"kadid-exact"`` (KADID's published
order) and ``"arniqa"`` (ARNIQA's port). Importing this module registers every entry.
"""
from __future__ import annotations

import math

from .ops import blur, brightness, color, compression, noise, sharpness, spatial
from .registry import Distortion, integer, register, uniform

_CPU = ("cpu",)

CATALOGUE = (
    # --- KADID-10k, in its own order -------------------------------------------------------
    Distortion("gaussian_blur", "blur", "sigma", "Gaussian std (px), kernel 2*ceil(2*sigma)+1",
               (0.1, 0.5, 1.0, 2.0, 5.0), blur.gaussian_blur, kadid=1, arniqa="gaublur"),
    Distortion("lens_blur", "blur", "radius", "disk radius (px)",
               (1.0, 2.0, 4.0, 6.0, 8.0), blur.lens_blur, kadid=2, arniqa="lensblur"),
    Distortion("motion_blur", "blur", "length", "line length (px); random angle in [0, 180] deg",
               (1.0, 2.0, 4.0, 6.0, 10.0), blur.motion_blur, extras={"angle": integer(0, 180)},
               kadid=3, arniqa="motionblur"),
    Distortion("color_diffusion", "color", "amount", "Lab chroma blur sigma 1.5*amount+2, chroma gain amount",
               (1.0, 3.0, 6.0, 8.0, 12.0), color.color_diffusion, kadid=4, arniqa="colordiff"),
    Distortion("color_shift", "color", "amount", "green channel shift at edges (px), random direction",
               (1.0, 3.0, 6.0, 8.0, 12.0), color.color_shift, extras={"direction": uniform(0.0, 360.0)},
               kadid=5, arniqa="colorshift"),
    Distortion("color_quantization", "color", "colors", "palette size (k-means palette, Floyd-Steinberg dither)",
               (64.0, 48.0, 32.0, 16.0, 8.0), color.color_quantization, integer=True, stochastic=True,
               differentiable=False, whole_batch=True, kadid=6),
    Distortion("color_saturation_hsv", "color", "factor", "HSV saturation multiplier",
               (0.4, 0.2, 0.1, 0.0, -0.4), color.color_saturation_hsv, kadid=7, arniqa="colorsat1"),
    Distortion("color_saturation_lab", "color", "factor", "Lab chroma multiplier",
               (1.0, 2.0, 3.0, 6.0, 9.0), color.color_saturation_lab, kadid=8, arniqa="colorsat2"),
    Distortion("jpeg2000", "compression", "ratio", "compression ratio (realised as 1000/round(1000/ratio))",
               (16.0, 32.0, 45.0, 120.0, 400.0), compression.jpeg2000, tables={"arniqa": (16.0, 32.0, 45.0, 120.0, 170.0)},
               differentiable=False, devices=_CPU, kadid=9, arniqa="jpeg2000"),
    Distortion("jpeg", "compression", "quality", "JPEG quality",
               (43.0, 36.0, 24.0, 7.0, 4.0), compression.jpeg, integer=True, differentiable=False, devices=_CPU,
               backends={"libjpeg": compression.jpeg, "differentiable": compression.jpeg_differentiable},
               differentiable_backends=("differentiable",),
               kadid=10, arniqa="jpeg"),
    Distortion("white_noise", "noise", "variance", "Gaussian noise variance on [0, 1]",
               (0.001, 0.002, 0.003, 0.005, 0.01), noise.white_noise, stochastic=True, kadid=11, arniqa="whitenoise"),
    Distortion("white_noise_cc", "noise", "variance", "Gaussian noise variance in YCbCr",
               (0.0001, 0.0005, 0.001, 0.002, 0.003), noise.white_noise_cc, stochastic=True,
               kadid=12, arniqa="whitenoiseCC"),
    Distortion("impulse_noise", "noise", "density", "fraction of channel values set to 0 or 1",
               (0.001, 0.005, 0.01, 0.02, 0.03), noise.impulse_noise, stochastic=True,
               kadid=13, arniqa="impulsenoise"),
    Distortion("multiplicative_noise", "noise", "variance", "speckle variance",
               (0.001, 0.005, 0.01, 0.02, 0.05), noise.multiplicative_noise, stochastic=True,
               kadid=14, arniqa="multnoise"),
    Distortion("denoise", "noise", "variance", "noise variance before non-local-means denoising",
               (0.01, 0.03, 0.05, 0.1, 0.15), noise.denoise, stochastic=True, differentiable=False,
               devices=_CPU, kadid=15),
    Distortion("brighten", "brightness", "amount", "tone-curve lift at mid-grey (x2)",
               (0.1, 0.2, 0.4, 0.7, 1.1), brightness.brighten, kadid=16, arniqa="brighten"),
    Distortion("darken", "brightness", "amount", "tone-curve drop at mid-grey (x2)",
               (0.05, 0.1, 0.2, 0.4, 0.8), brightness.darken, kadid=17, arniqa="darken"),
    Distortion("mean_shift", "brightness", "offset", "added constant; default: |offset|, random sign",
               (0.02, 0.05, 0.08, 0.115, 0.15), brightness.mean_shift, signed_around=0.0,
               tables={"kadid-exact": (0.15, 0.08, 0.0, -0.08, -0.15), "arniqa": (0.0, 0.08, -0.08, 0.15, -0.15)},
               kadid=18, arniqa="meanshift"),
    Distortion("jitter", "spatial", "amount", "std of per-pixel displacement (px), 5 rounds",
               (0.05, 0.1, 0.2, 0.5, 1.0), spatial.jitter, stochastic=True, kadid=19, arniqa="jitter"),
    Distortion("non_eccentricity_patch", "spatial", "patches", "number of 16x16 patches moved up to 8 px",
               (20.0, 40.0, 60.0, 80.0, 100.0), spatial.non_eccentricity_patch, integer=True, stochastic=True,
               kadid=20, arniqa="noneccpatch"),
    Distortion("pixelate", "spatial", "strength", "nearest down-up scaling by 0.95 - strength^0.6",
               (0.01, 0.05, 0.1, 0.2, 0.5), spatial.pixelate, kadid=21, arniqa="pixelate"),
    Distortion("quantization", "spatial", "levels", "uniform levels per channel (min-max stretched)",
               (20.0, 16.0, 13.0, 10.0, 7.0), spatial.quantization, integer=True, differentiable=False,
               kadid=22, arniqa="quantization"),
    Distortion("color_block", "spatial", "blocks", "number of 32x32 blocks of random colour",
               (2.0, 4.0, 6.0, 8.0, 10.0), spatial.color_block, integer=True, stochastic=True,
               kadid=23, arniqa="colorblock"),
    Distortion("high_sharpen", "sharpness_contrast", "amount", "unsharp-mask gain on Lab lightness",
               (1.0, 2.0, 3.0, 6.0, 12.0), sharpness.high_sharpen, kadid=24, arniqa="highsharpen"),
    Distortion("contrast_change", "sharpness_contrast", "a", "S-curve strength; default: distance from -0.2 "
               "(the identity curve), random direction",
               (0.1, 0.2, 0.3, 0.4, 0.5), sharpness.contrast_change, signed_around=-0.2,
               tables={"kadid-exact": (0.3, 0.15, 0.0, -0.4, -0.6), "arniqa": (0.0, 0.15, -0.4, 0.3, -0.6)},
               kadid=25, arniqa="lincontrchange"),
    # --- ARNIQA's addition ------------------------------------------------------------------
    Distortion("contrast_compression", "sharpness_contrast", "half_range", "output range 0.5 +- half_range",
               (0.4, 0.3, 0.2, 0.1, 0.05), sharpness.contrast_compression, arniqa="nonlincontrchange"),
    # --- camera and restoration pipelines ---------------------------------------------------
    Distortion("anisotropic_blur", "blur", "sigma", "major-axis Gaussian std (px); random axis ratio and angle",
               (1.0, 1.6, 2.4, 3.4, 4.6), blur.anisotropic_blur,
               extras={"ratio": uniform(0.25, 0.75), "angle": uniform(0.0, 180.0)}),
    Distortion("generalized_blur", "blur", "sigma", "generalised-Gaussian scale (px); random shape beta",
               (0.8, 1.3, 2.0, 3.0, 4.2), blur.generalized_blur, extras={"beta": uniform(0.5, 4.0)}),
    Distortion("ringing", "blur", "cutoff", "sinc low-pass cut-off (rad/px), 21-tap kernel",
               (0.8 * math.pi, 0.6 * math.pi, 0.45 * math.pi, 0.35 * math.pi, 0.25 * math.pi), blur.ringing),
    Distortion("poisson_noise", "noise", "photons", "expected photon count at full scale",
               (2000.0, 600.0, 200.0, 70.0, 25.0), noise.poisson_noise, stochastic=True, differentiable=False),
    Distortion("resize", "spatial", "scale", "down-up scale factor; random method (bilinear, bicubic, area)",
               (0.8, 0.6, 0.45, 0.33, 0.25), spatial.resize, extras={"method": integer(0, 2)}),
    Distortion("webp", "compression", "quality", "WebP quality",
               (60.0, 40.0, 25.0, 12.0, 5.0), compression.webp, integer=True, differentiable=False, devices=_CPU),
)

for _entry in CATALOGUE:
    register(_entry)
