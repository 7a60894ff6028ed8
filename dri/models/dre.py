"""DRE-Net: one feature whose two halves are the quality and the degradation representation."""
from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .config import BACKBONE_INPUTS, MSCN_C


def _timm(name: str, pretrained: bool, weights: str | None, **kwargs) -> nn.Module:
    """A timm backbone; pretrained weights come from ``weights`` (a local file) when given, else the hub."""
    overlay = {"pretrained_cfg_overlay": {"file": weights}} if (pretrained and weights) else {}
    return timm.create_model(name, pretrained=pretrained, **overlay, **kwargs)


class Normalize(nn.Module):
    """Images in [0, 1] to a backbone's expected mean/std."""

    def __init__(self, mean, std) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class LocalNormalize(nn.Module):
    """Images in [0, 1] to their MSCN coefficients, channel by channel: (x - mu) / (sigma + c), with mu and
    sigma the mean and deviation in a Gaussian window (7 x 7, sigma 7/6) and c = 1/255 by default, as in
    BRISQUE/NIQE.

    The coefficients keep what distortions do to local structure (blur, noise, blocking, ringing) and drop
    what a photo's content sets: its local brightness, contrast and colour. No parameters.
    """

    def __init__(self, size: int = 7, sigma: float = 7 / 6, c: float = MSCN_C) -> None:
        super().__init__()
        # in float64, cast to each input's type: float64 statistics (dri.models.nss) need the exact
        # weights, since on flat regions the coefficients are exactly 0 only if the weights sum to 1
        t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        g = torch.exp(-t * t / (2 * sigma * sigma))
        self.register_buffer("kernel", (g / g.sum()).view(1, 1, 1, size), persistent=False)
        self.c = c

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """The window's Gaussian blur of every channel, edges replicated."""
        b, ch, h, w = x.shape
        k = self.kernel.to(x.device, x.dtype)
        pad = k.shape[-1] // 2
        y = F.pad(x.reshape(b * ch, 1, h, w), (pad, pad, pad, pad), mode="replicate")
        y = F.conv2d(F.conv2d(y, k), k.transpose(-1, -2))
        return y.view(b, ch, h, w)

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The local mean and deviation of every pixel, channel by channel."""
        mu = self.blur(x)
        # the floor keeps the gradient finite where a window is flat (the square root's slope is
        # infinite at 0, and the RS loss differentiates through DRE-Net); 1e-6 against c = 1/255
        return mu, (self.blur(x * x) - mu * mu).abs().clamp_min(1e-12).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, sigma = self.moments(x)
        return (x - mu) / (sigma + self.c)


class Concatenate(nn.Module):
    """Several front ends side by side: their outputs stacked along the channels."""

    def __init__(self, *parts: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], dim=1)


def input_parts(kind: str) -> list[str]:
    """The front ends a backbone's input ``kind`` (one of ``BACKBONE_INPUTS``) puts side by side, in order."""
    if kind not in BACKBONE_INPUTS:
        raise ValueError(f"a backbone's input must be one of {BACKBONE_INPUTS}, got {kind!r}")
    return kind.split("+")


def input_channels(kind: str) -> int:
    """The channels of what a backbone reads with the input ``kind``: three per front end."""
    return 3 * len(input_parts(kind))


def input_front_end(kind: str, mean, std, c: float = MSCN_C) -> nn.Module:
    """What a backbone reads: ``"rgb"`` (the image normalised by the backbone's ``mean``/``std``),
    ``"mscn"`` (its MSCN coefficients with constant ``c``, :class:`LocalNormalize`) or ``"rgb+mscn"``
    (both, the image's three channels first)."""
    build = {"rgb": lambda: Normalize(mean, std), "mscn": lambda: LocalNormalize(c=c)}
    parts = [build[part]() for part in input_parts(kind)]
    return parts[0] if len(parts) == 1 else Concatenate(*parts)


def stem_weight(backbone: nn.Module) -> str:
    """The name of the weight of a timm backbone's first layer, the one that reads the input channels."""
    return backbone.pretrained_cfg["first_conv"] + ".weight"


class ProjectionHead(nn.Module):
    """MLP projection for the contrastive loss; the output is L2-normalised."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, out))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(f), dim=-1)


class DRENet(nn.Module):
    """Dual-Representation Extractor: backbone -> global pooling -> linear to 2d -> (f_q, f_d).

    With ``split=False`` (ablation) the whole 2d vector serves as both representations. With
    ``input="mscn"`` the backbone reads the image's MSCN coefficients (constant ``mscn_c``) instead of RGB.

    Shape:
        input (B, 3, H, W) in [0, 1], any size; f_q, f_d: (B, d) (or (B, 2d) undivided).
    """

    def __init__(self, backbone: str, dim: int, proj_dim: int, split: bool = True, pretrained: bool = False,
                 weights: str | None = None, input: str = "rgb", mscn_c: float = MSCN_C) -> None:
        super().__init__()
        self.backbone = _timm(backbone, pretrained, weights, num_classes=0, global_pool="avg",
                              in_chans=input_channels(input))
        cfg = self.backbone.pretrained_cfg
        self.normalize = input_front_end(input, cfg.get("mean", (0.485, 0.456, 0.406)),
                                         cfg.get("std", (0.229, 0.224, 0.225)), mscn_c)
        self.fc = nn.Linear(self.backbone.num_features, 2 * dim)
        self.split = split
        width = dim if split else 2 * dim
        self.dim = width
        self.head_q = ProjectionHead(width, proj_dim)
        self.head_d = ProjectionHead(width, proj_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.fc(self.backbone(self.normalize(x)))
        if not self.split:
            return f, f
        return f.chunk(2, dim=-1)

    def project(self, f_q: torch.Tensor, f_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised embeddings for the contrastive losses."""
        return self.head_q(f_q), self.head_d(f_d)
