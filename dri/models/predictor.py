"""Score predictor in MANIQA's layout, guided by the dual representation.

ViT features (several blocks concatenated) and the encoded restoration residual x - x_hat form
the tokens; two Transposed Guidance Blocks (keys from the quality vector and the restoration
features), a 1x1 reduction and a Swin stage, twice; then a dual-branch head: a score and a
weight per token, the image score being the weighted mean.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import SwinStage, TransposedAttention
from .config import MSCN_C
from .dre import _timm, input_channels, input_front_end

# the residual energy that the "energy" encoder counts as one unit: log1p(energy / floor) is zero for
# no residual, and at initialisation a residual of 0.005 (a restorer that changes little) reads about
# 1 and one of 0.03 about 4
ENERGY_FLOOR = 1e-7


class Guidance(nn.Module):
    """The guidance token map: the quality vector broadcast to the grid, plus restoration features."""

    def __init__(self, rep_dim: int, feature_channels: int, dim: int) -> None:
        super().__init__()
        self.from_quality = nn.Linear(rep_dim, dim)
        self.from_features = nn.Linear(feature_channels, dim) if feature_channels else None

    def forward(self, f_q: torch.Tensor, features: torch.Tensor | None, grid: int) -> torch.Tensor:
        g = self.from_quality(f_q).unsqueeze(1).expand(-1, grid * grid, -1)
        if self.from_features is not None and features is not None:
            pooled = F.adaptive_avg_pool2d(features, grid).flatten(2).transpose(1, 2)
            g = g + self.from_features(pooled)
        return g


class ScorePredictor(nn.Module):
    """Predicts a quality score per image.

    Shape:
        x: (B, 3, S, S) in [0, 1] at the input size S (the ViT reads it normalised by its mean and std,
        or as MSCN coefficients, constant ``mscn_c``, with ``vit_input="mscn"``, or both with
        ``"rgb+mscn"``); f_q: (B, d); residual: (B, 3, S, S) or None; features: (B, c, S, S) or None.
        Output: (B,).
    """

    def __init__(self, vit: str, vit_blocks: tuple[int, ...], input_size: int, rep_dim: int, feature_channels: int,
                 residual_channels: int, embed_dim: int, swin_depth: int, swin_heads: int, window: int,
                 guided: bool = True, pretrained: bool = False, weights: str | None = None,
                 vit_overrides: dict | None = None, vit_input: str = "rgb", mscn_c: float = MSCN_C,
                 residual_encoder: str = "conv") -> None:
        super().__init__()
        self.vit = _timm(vit, pretrained, weights, num_classes=0, img_size=input_size,
                         in_chans=input_channels(vit_input), **(vit_overrides or {}))
        cfg = self.vit.pretrained_cfg
        self.normalize = input_front_end(vit_input, cfg.get("mean", (0.5, 0.5, 0.5)), cfg.get("std", (0.5, 0.5, 0.5)),
                                         mscn_c)
        self.blocks = list(vit_blocks)
        # blocks after the last one read, the final norm and the head would never get a gradient
        self.vit.prune_intermediate_layers(self.blocks, prune_norm=True, prune_head=True)
        self.grid = input_size // self.vit.patch_embed.patch_size[0]
        width = len(self.blocks) * self.vit.embed_dim + residual_channels
        self.residual = self.residual_mix = None
        if residual_channels:
            energy = residual_encoder == "energy"
            c, bias = residual_channels, not energy  # without biases, no residual has no energy
            self.residual = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=bias), nn.GELU(),
                                          nn.Conv2d(c, c, 3, padding=1, bias=bias))
            if energy:
                self.residual_mix = nn.Linear(c, c)
                with torch.no_grad():  # start at about the ViT tokens' spread, not several times it
                    self.residual_mix.weight.mul_(0.2)
        self.guided = guided
        self.guidance1 = Guidance(rep_dim, feature_channels, width) if guided else None
        self.tgb1 = nn.ModuleList([TransposedAttention(width), TransposedAttention(width)])
        self.reduce1 = nn.Linear(width, embed_dim)
        self.swin1 = SwinStage(embed_dim, swin_depth, swin_heads, window, self.grid)
        self.guidance2 = Guidance(rep_dim, feature_channels, embed_dim) if guided else None
        self.tgb2 = nn.ModuleList([TransposedAttention(embed_dim), TransposedAttention(embed_dim)])
        half = embed_dim // 2
        self.reduce2 = nn.Linear(embed_dim, half)
        self.swin2 = SwinStage(half, swin_depth, swin_heads, window, self.grid)
        self.score = nn.Sequential(nn.Linear(half, half), nn.ReLU(inplace=True), nn.Linear(half, 1), nn.ReLU())
        self.weight = nn.Sequential(nn.Linear(half, half), nn.ReLU(inplace=True), nn.Linear(half, 1), nn.Sigmoid())

    def tokens(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        feats = self.vit.forward_intermediates(self.normalize(x), indices=self.blocks, output_fmt="NLC",
                                               intermediates_only=True, stop_early=True)
        tokens = torch.cat(feats, dim=-1)
        if self.residual is not None:
            r = residual if residual is not None else torch.zeros_like(x)
            tokens = torch.cat([tokens, self.encode_residual(r)], dim=-1)
        return tokens

    def encode_residual(self, residual: torch.Tensor) -> torch.Tensor:
        """One token per grid cell from the residual (B, 3, S, S): (B, grid * grid, residual_channels).

        Both encoders filter the residual with two 3x3 convolutions. ``"conv"`` averages their output
        over each cell. A restorer's residual is small and of both signs, where the GELU between the
        convolutions is nearly linear, so that average cancels to the biases: every image gets nearly
        the same tokens, and the predictor cannot use how much the restorer changed. ``"energy"``
        (convolutions without biases) takes the mean square over each cell instead, the strength of
        the residual in each learnt band, on a log scale (``ENERGY_FLOOR``) and mixed by a linear map.
        """
        h = self.residual(residual)
        if self.residual_mix is None:
            return F.adaptive_avg_pool2d(h, self.grid).flatten(2).transpose(1, 2)
        energy = torch.log1p(F.adaptive_avg_pool2d(h.square(), self.grid) / ENERGY_FLOOR)
        return self.residual_mix(energy.flatten(2).transpose(1, 2))

    def forward(self, x: torch.Tensor, f_q: torch.Tensor, residual: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> torch.Tensor:
        t = self.tokens(x, residual)
        g = self.guidance1(f_q, features, self.grid) if self.guided else None
        for block in self.tgb1:
            t = block(t, g)
        t = self.swin1(self.reduce1(t))
        g = self.guidance2(f_q, features, self.grid) if self.guided else None
        for block in self.tgb2:
            t = block(t, g)
        t = self.swin2(self.reduce2(t))
        w = self.weight(t)
        return ((self.score(t) * w).sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp(min=1e-8))
