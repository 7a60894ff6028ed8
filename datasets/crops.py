"""The crop policy shared by every IQA input: a random crop (and flip) to train, five fixed crops to evaluate,
a grid of fixed crops to predict.

Images smaller than the crop are first resized up so that their short side equals it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (bilinear) a (C, H, W) uint8 image up so that its short side is at least ``size``."""
    h, w = image.shape[-2:]
    if min(h, w) >= size:
        return image
    scale = size / min(h, w)
    out = F.interpolate(image[None].float(), size=(max(size, round(h * scale)), max(size, round(w * scale))),
                        mode="bilinear", align_corners=False)[0]
    return out.round().clamp(0, 255).to(image.dtype)


def _crops_at(image: torch.Tensor, size: int, cells: list[tuple[int, int]]) -> torch.Tensor:
    """Crops at cells (row, column) of the 3 x 3 grid spread evenly from corner to corner: cell 0 at
    the top or left edge, 2 at the bottom or right one, 1 centred."""
    image = fit_short_side(image, size)
    h, w = image.shape[-2:]
    return torch.stack([image[:, t : t + size, l : l + size]
                        for t, l in ((i * (h - size) // 2, j * (w - size) // 2) for i, j in cells)])


def five_crops(image: torch.Tensor, size: int) -> torch.Tensor:
    """The four corner crops and the centre crop, (5, C, size, size)."""
    return _crops_at(image, size, [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)])


def grid_crops(image: torch.Tensor, size: int) -> torch.Tensor:
    """A 3 x 3 grid of crops spread evenly from corner to corner, (9, C, size, size), row by row: the five
    crops (corners and centre) and the four edge midpoints between them, covering every pixel of images
    up to three crops on a side."""
    return _crops_at(image, size, [(i, j) for i in range(3) for j in range(3)])


def random_crop(image: torch.Tensor, size: int, g: torch.Generator) -> tuple[int, int]:
    h, w = image.shape[-2:]
    top = int(torch.randint(h - size + 1, (), generator=g))
    left = int(torch.randint(w - size + 1, (), generator=g))
    return top, left


def iqa_view(image: torch.Tensor, ref: torch.Tensor | None, mode: str, size: int, g: torch.Generator | None,
             flip: bool = True) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The network input for one image and the matching crop of its reference (zeros when none).

    ``mode="train"``: one random crop, horizontally flipped with probability 0.5 when ``flip``;
    ``mode="eval"``: :func:`five_crops`. A reference is used only when it has the image's size.
    """
    if ref is not None and ref.shape != image.shape:
        ref = None
    if mode == "eval":
        crops = five_crops(image, size)
        return crops, (five_crops(ref, size) if ref is not None else torch.zeros_like(crops)), ref is not None
    if g is None:
        raise ValueError("train crops need a generator")
    if min(image.shape[-2:]) < size:
        image = fit_short_side(image, size)
        ref = fit_short_side(ref, size) if ref is not None else None
    top, left = random_crop(image, size, g)
    crop = image[:, top : top + size, left : left + size]
    ref_crop = ref[:, top : top + size, left : left + size] if ref is not None else torch.zeros_like(crop)
    if flip and bool(torch.rand((), generator=g) < 0.5):
        crop, ref_crop = crop.flip(-1), ref_crop.flip(-1)
    return crop, ref_crop, ref is not None
