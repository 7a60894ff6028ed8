"""Degradation-guided restoration network (DASR-style degradation-aware blocks, at scale 1).

Every block's convolutions are modulated by the degradation representation f_d: a per-sample
depthwise kernel is predicted from f_d, and a channel attention computed from f_d rescales the
features. The network predicts a residual, so x_hat = x + net(x).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DegradationAwareConv(nn.Module):
    """Depthwise conv with a kernel predicted per sample from f_d, 1x1 conv, plus f_d channel attention."""

    def __init__(self, channels: int, rep: int, kernel: int = 3, reduction: int = 8) -> None:
        super().__init__()
        self.channels, self.kernel = channels, kernel
        self.predict_kernel = nn.Sequential(nn.Linear(rep, rep), nn.LeakyReLU(0.1, inplace=True),
                                            nn.Linear(rep, channels * kernel * kernel))
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.attention = nn.Sequential(nn.Linear(rep, max(4, channels // reduction)), nn.LeakyReLU(0.1, inplace=True),
                                       nn.Linear(max(4, channels // reduction), channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k = self.kernel
        weight = self.predict_kernel(rep).view(b * c, 1, k, k)
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=k // 2, groups=b * c).view(b, c, h, w)
        out = F.leaky_relu(self.pointwise(out), 0.1)
        return out + x * self.attention(rep).view(b, c, 1, 1)


class DegradationAwareBlock(nn.Module):
    def __init__(self, channels: int, rep: int, kernel: int) -> None:
        super().__init__()
        self.da1, self.da2 = DegradationAwareConv(channels, rep, kernel), DegradationAwareConv(channels, rep, kernel)
        self.conv1, self.conv2 = nn.Conv2d(channels, channels, 3, padding=1), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(F.leaky_relu(self.da1(x, rep), 0.1)), 0.1)
        return x + self.conv2(F.leaky_relu(self.da2(out, rep), 0.1))


class DegradationAwareGroup(nn.Module):
    def __init__(self, channels: int, rep: int, blocks: int, kernel: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(DegradationAwareBlock(channels, rep, kernel) for _ in range(blocks))
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.blocks:
            out = block(out, rep)
        return x + self.conv(out)


class RestorationNet(nn.Module):
    """Restores an image guided by its degradation representation.

    Shape:
        x: (B, 3, H, W) in [0, 1], any size; f_d: (B, d). Returns x_hat (B, 3, H, W) and the
        feature map (B, channels, H, W) from before the tail convolution.
    """

    def __init__(self, rep_dim: int, channels: int = 64, groups: int = 5, blocks: int = 5, kernel: int = 3,
                 compressed: int = 64) -> None:
        super().__init__()
        self.compress = nn.Sequential(nn.Linear(rep_dim, compressed), nn.LeakyReLU(0.1, inplace=True))
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.groups = nn.ModuleList(DegradationAwareGroup(channels, compressed, blocks, kernel) for _ in range(groups))
        self.body = nn.Conv2d(channels, channels, 3, padding=1)
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)
        self.channels = channels

    def forward(self, x: torch.Tensor, f_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rep = self.compress(f_d)
        head = self.head(x)
        out = head
        for group in self.groups:
            out = group(out, rep)
        features = head + self.body(out)
        return x + self.tail(features), features
