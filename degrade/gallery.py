"""A labelled contact sheet: one row per distortion, one column per level, on one photo.

``python -m degrade.gallery [--image PATH] [--out gallery.png]``
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line parses its arguments before torch is loaded
    import numpy as np
    import torch

    from .plan import Plan
    from .registry import Distortion

# The default tile: the astronaut's face (a better test of blur and sharpening than her suit).
FACE = (10, 120, 224)  # top, left, side in the 512 px photo

LABEL_WIDTH = 230
CAPTION = 18
HEADER = 30
WHITE = (255, 255, 255)
INK = (30, 30, 30)


def square_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Shrink so the short side is 2*size (area filter), then take the central size x size square."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    scale = 2 * size / min(h, w)
    if scale < 1:
        x = F.interpolate(x[None], size=(round(h * scale), round(w * scale)), mode="area")[0]
    h, w = x.shape[-2:]
    side = min(size, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return x[:, top : top + side, left : left + side]


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.42, thick: int = 1) -> None:
    import cv2

    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, INK, thick, cv2.LINE_AA)


def _value(v: float) -> str:
    """A parameter as people write it: no scientific notation, at most 4 significant digits."""
    if v == 0:
        return "0"
    digits = max(0, 3 - int(math.floor(math.log10(abs(v)))))
    return f"{v:.{digits}f}".rstrip("0").rstrip(".")


def tile_caption(d: Distortion, params: dict) -> str:
    """The tile caption in the README's terms: ringing's cut-off in multiples of pi, two-sided values signed."""
    value = params[d.parameter]
    if d.name == "ringing":
        return f"cut-off {_value(value / math.pi)}pi"
    name = {"generalized_blur": "scale"}.get(d.name, d.parameter)
    return f"{name}={'+' if d.signed_around is not None and value > 0 else ''}{_value(value)}"


def level_sweep(name: str, seed: int = 0) -> list[Plan]:
    """One-step plans of ``name`` at levels 1..5 that share their random draws and seed."""
    import torch

    from .plan import Plan
    from .registry import NUM_LEVELS
    from .sampling import at_level, make_step

    first = make_step(name, 1, torch.Generator().manual_seed(seed))
    return [Plan((at_level(first, level),)) for level in range(1, NUM_LEVELS + 1)]


def render(image: torch.Tensor, names: Sequence[str], seed: int = 0) -> np.ndarray:
    """The contact sheet as an (H, W, 3) uint8 RGB array.

    Each row is one batch of five copies of ``image`` degraded at levels 1..5 (per-sample plans)
    sharing random draws and seed, so the columns differ only in severity.
    """
    import numpy as np

    from . import apply_plans, info
    from .io import to_uint8
    from .registry import NUM_LEVELS

    size = image.shape[-1]
    tile_h = size + CAPTION
    width = LABEL_WIDTH + (NUM_LEVELS + 1) * size
    sheet = np.full((HEADER + len(names) * tile_h, width, 3), 255, np.uint8)
    for col, title in enumerate(["original"] + [f"level {i}" for i in range(1, NUM_LEVELS + 1)]):
        _text(sheet, title, (LABEL_WIDTH + col * size + 8, HEADER - 10), 0.55)
    batch = image.unsqueeze(0).expand(NUM_LEVELS, -1, -1, -1).contiguous()
    original = to_uint8(image)
    for row, name in enumerate(names):
        d = info(name)
        plans = level_sweep(name, seed)
        out = apply_plans(batch, plans, quantize=True)
        top = HEADER + row * tile_h
        _text(sheet, name, (8, top + size // 2 - 6), 0.55, 2 if d.kadid else 1)
        _text(sheet, f"{d.group} | {d.parameter}", (8, top + size // 2 + 16))
        tiles = [original] + [to_uint8(o) for o in out]
        captions = [""] + [tile_caption(d, p.steps[0].params) for p in plans]
        for col, (tile, caption) in enumerate(zip(tiles, captions)):
            left = LABEL_WIDTH + col * size
            sheet[top : top + size, left : left + size] = tile
            _text(sheet, caption, (left + 6, top + size + CAPTION - 5), 0.4)
    return sheet


def main(argv: Sequence[str] | None = None) -> int:
    from ._cli import HelpFormatter
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="python -m degrade.gallery", formatter_class=HelpFormatter,
        description="Render every distortion at levels 1..5 on one photo as a labelled PNG contact sheet. "
        "Bold names are KADID-10k's 25 types; the others are ARNIQA's and real-world additions.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--image", help="photo to degrade (default: the built-in astronaut's face)")
    parser.add_argument("--out", default="gallery.png", help="output PNG")
    parser.add_argument("--size", type=int, default=192, help="tile side in pixels")
    parser.add_argument("--names", nargs="+", help="distortions to show (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    args = parser.parse_args(argv)
    import cv2
    import numpy as np
    import torch

    from . import info, list_distortions
    from .io import read_image
    from .registry import NUM_LEVELS
    from .samples import load_sample

    try:
        if args.image:
            image = read_image(args.image)
        else:
            top, left, side = FACE
            image = load_sample("astronaut")[:, top : top + side, left : left + side]
        names = args.names or list_distortions()
        for name in names:
            info(name)
    except (KeyError, ValueError, FileNotFoundError, ModuleNotFoundError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    with torch.no_grad():
        sheet = render(square_crop(image, args.size), names, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.ascontiguousarray(sheet[:, :, ::-1])):
        print(f"error: could not write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {len(names)} distortions x {NUM_LEVELS} levels, {sheet.shape[1]}x{sheet.shape[0]} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
