"""Views of pristine content: where a crop is cut and how it is augmented, recorded so it can be redone.

A view is drawn once, when a group is planned (``draw_view``), stored in the group's metadata
(``View.to_dict``), and applied to the decoded source image (``View.apply``), a pure function of
the image and the record. Augmentation multiplies a few photographs into many contents:

* ``scale``: the crop covers ``size / scale`` source pixels, shrunk to ``size`` (area filter), so
  one photo is seen at several distances;
* ``rot90`` and ``flip``: quarter turns and a mirror image;
* ``permute``: an order of the colour channels (a blue sky becomes a red one: new colours,
  the same natural structure);
* ``grey``: the luma of the crop in all three channels, as in a black-and-white photograph;
* ``saturation``: the crop's colours moved away from or towards its luma by a factor (vivid and
  muted scenes are both pristine; without this, a network trained on a few photos learns their
  colourfulness as part of quality and marks vivid unseen photos down).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

IDENTITY = (0, 1, 2)
MAX_SATURATION = 4.0
PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@dataclass(frozen=True)
class Augment:
    """How contents are varied at crop time.

    Attributes:
        min_scale: smallest ``scale`` (1: crops at the source's own resolution only).
        rot90: draw quarter turns.
        flip: draw mirror images.
        permute: draw colour-channel orders.
        grey: probability that a crop becomes black-and-white.
        saturation: largest colour-saturation factor ``s`` (>= 1); factors are drawn log-uniformly in
            ``[1/s, s]`` (1: colours as they are).
    """

    min_scale: float = 1.0
    rot90: bool = False
    flip: bool = False
    permute: bool = False
    grey: float = 0.0
    saturation: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"augment.min_scale must be in (0, 1], got {self.min_scale}")
        if not 0.0 <= self.grey <= 1.0:
            raise ValueError(f"augment.grey must be in [0, 1], got {self.grey}")
        if not 1.0 <= self.saturation <= MAX_SATURATION:
            raise ValueError(f"augment.saturation must be in [1, {MAX_SATURATION:g}], got {self.saturation}")

    @property
    def active(self) -> bool:
        return (self.min_scale < 1.0 or self.rot90 or self.flip or self.permute or self.grey > 0
                or self.saturation > 1.0)


@dataclass(frozen=True)
class View:
    """One recorded crop: ``window`` source pixels at (top, left), shrunk to ``size``, then turned,
    mirrored, colour-permuted, and made black-and-white or its saturation scaled."""

    top: int
    left: int
    window: int
    size: int
    rot90: int = 0
    flip: bool = False
    permute: tuple[int, int, int] = IDENTITY
    grey: bool = False
    saturation: float = 1.0

    def __post_init__(self) -> None:
        if self.window < self.size or self.size < 1 or self.top < 0 or self.left < 0:
            raise ValueError(f"invalid view {self}")
        if self.rot90 not in (0, 1, 2, 3) or tuple(self.permute) not in PERMUTATIONS:
            raise ValueError(f"invalid view {self}")
        if not 1 / MAX_SATURATION <= self.saturation <= MAX_SATURATION:
            raise ValueError(f"invalid view {self}: saturation outside [1/{MAX_SATURATION:g}, {MAX_SATURATION:g}]")
        object.__setattr__(self, "permute", tuple(int(c) for c in self.permute))

    @property
    def box(self) -> list[int]:
        """``[top, left, window]``: the part of the source the view shows."""
        return [self.top, self.left, self.window]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box": self.box}
        if self.window != self.size:
            d["size"] = self.size
        if self.rot90:
            d["rot90"] = self.rot90
        if self.flip:
            d["flip"] = True
        if self.permute != IDENTITY:
            d["permute"] = list(self.permute)
        if self.grey:
            d["grey"] = True
        if self.saturation != 1.0:
            d["saturation"] = self.saturation
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> View:
        top, left, window = (int(v) for v in d["box"])
        return cls(top, left, window, int(d.get("size", window)), int(d.get("rot90", 0)), bool(d.get("flip", False)),
                   tuple(d.get("permute", IDENTITY)), bool(d.get("grey", False)), float(d.get("saturation", 1.0)))

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """The view of a uint8 (3, H, W) source image: uint8 (3, size, size)."""
        h, w = image.shape[-2:]
        if self.top + self.window > h or self.left + self.window > w:
            raise ValueError(f"view {self.box} does not fit in a {w}x{h} image")
        out = image[:, self.top : self.top + self.window, self.left : self.left + self.window]
        if self.window != self.size:
            out = F.interpolate(out[None].float(), size=(self.size, self.size), mode="area")[0]
            out = out.round().clamp(0, 255).to(torch.uint8)
        if self.rot90:
            out = torch.rot90(out, self.rot90, dims=(1, 2))
        if self.flip:
            out = out.flip(-1)
        if self.permute != IDENTITY:
            out = out[list(self.permute)]
        if self.grey:  # ITU-R BT.601 luma, rounded, in every channel
            out = _luma(out).round().clamp(0, 255).to(torch.uint8).expand(3, -1, -1)
        elif self.saturation != 1.0:  # each pixel's colour moved along the line through its luma
            luma = _luma(out)
            out = (luma + self.saturation * (out.double() - luma)).round().clamp(0, 255).to(torch.uint8)
        return out.contiguous()


def _luma(image: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of a uint8 (3, H, W) image, float64 (H, W)."""
    return 0.299 * image[0].double() + 0.587 * image[1].double() + 0.114 * image[2].double()


def draw_view(height: int, width: int, size: int, augment: Augment, g: torch.Generator) -> View:
    """A random view of a ``height`` x ``width`` source, all draws from ``g``.

    Without augmentation this draws exactly what a plain random crop draws (top, then left).
    """
    if size > min(height, width):
        raise ValueError(f"a {size} px crop does not fit in {width}x{height}")
    window = size
    if augment.min_scale < 1.0:
        low = math.log(max(augment.min_scale, size / min(height, width)))
        scale = math.exp(low + (0.0 - low) * float(torch.rand((), generator=g, dtype=torch.float64)))
        window = min(min(height, width), max(size, round(size / scale)))
    top = int(torch.randint(height - window + 1, (), generator=g))
    left = int(torch.randint(width - window + 1, (), generator=g))
    rot90 = int(torch.randint(4, (), generator=g)) if augment.rot90 else 0
    flip = bool(torch.randint(2, (), generator=g)) if augment.flip else False
    permute = PERMUTATIONS[int(torch.randint(len(PERMUTATIONS), (), generator=g))] if augment.permute else IDENTITY
    grey = bool(float(torch.rand((), generator=g, dtype=torch.float64)) < augment.grey) if augment.grey else False
    saturation = 1.0
    if augment.saturation > 1.0:  # log-uniform in [1/s, s], recorded to 3 decimals (the record is what runs)
        u = float(torch.rand((), generator=g, dtype=torch.float64))
        saturation = round(augment.saturation ** (2.0 * u - 1.0), 3)
    return View(top, left, window, size, rot90, flip, permute, grey, 1.0 if grey else saturation)


def view_key(meta_side: Mapping[str, Any]) -> str:
    """Identity of the clean content behind an image: source image and view (crop and augmentation)."""
    v = View.from_dict(meta_side)
    extra = "" if v.to_dict().keys() == {"box"} else \
        f"/{v.size},{v.rot90},{int(v.flip)},{''.join(map(str, v.permute))}" + (",grey" if v.grey else "") \
        + (f",s{v.saturation:g}" if v.saturation != 1.0 else "")
    return f"{meta_side['id']}@{v.top},{v.left},{v.window}{extra}"


__all__ = ["Augment", "View", "draw_view", "view_key"]
