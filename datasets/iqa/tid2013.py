"""TID2013: ``reference_images/I01.BMP..I25.BMP``, ``distorted_images/iXX_YY_Z.bmp`` and ``mos_with_names.txt``.

Each label line is ``<mos> <name>``; the reference is ``I`` + the two digits after the first
character; YY is the distortion type (1..24) and Z the level (1..5). File names mix cases, so
files are looked up case-insensitively. MOS is on 0..9, higher is better.
"""
from __future__ import annotations

from pathlib import Path

from .options import NoOptions
from .table import Builder, Folder, Scale, parse_float, read_text, require_dir, require_file

SCALE = Scale(0.0, 9.0, higher_is_better=True, kind="mos")
TYPES = (
    "additive_gaussian_noise", "additive_noise_color", "spatially_correlated_noise", "masked_noise",
    "high_frequency_noise", "impulse_noise", "quantization_noise", "gaussian_blur", "image_denoising",
    "jpeg", "jpeg2000", "jpeg_transmission_errors", "jpeg2000_transmission_errors",
    "non_eccentricity_pattern_noise", "local_block_distortions", "mean_shift", "contrast_change",
    "color_saturation_change", "multiplicative_gaussian_noise", "comfort_noise",
    "lossy_compression_of_noisy_images", "color_quantization_with_dither", "chromatic_aberrations",
    "sparse_sampling_and_reconstruction",
)


def read(root: Path, strict: bool, options: NoOptions) -> Builder:
    labels = require_file(root / "mos_with_names.txt", "label file")
    distorted = Folder(require_dir(root / "distorted_images", "distorted_images"), ignore_case=True)
    references = Folder(require_dir(root / "reference_images", "reference_images"), ignore_case=True)
    b = Builder("tid2013", root, SCALE, strict)
    for line, text in enumerate(read_text(labels).splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split()
        try:
            score, name = parse_float(parts[0]), parts[1]
            stem = Path(name).stem
            ref_id, kind, level = stem[1:3], int(stem[4:6]), int(stem[7:])
            distortion = TYPES[kind - 1]
        except (IndexError, ValueError):
            b.problem("unparsable_row", labels, line, f"expected '<mos> iXX_YY_Z.bmp', got {text.strip()!r}")
            continue
        b.add(distorted.find(name), score, content=f"I{ref_id}", ref=references.find(f"I{ref_id}.BMP"),
              distortion=distortion, level=level, source=(labels, line))
    return b
