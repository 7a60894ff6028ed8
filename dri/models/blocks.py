"""Building blocks of the score predictor: transposed (channel) attention with guidance, and Swin stages.

Token tensors are (B, N, C) with N = H * W tokens of a square grid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransposedAttention(nn.Module):
    """Channel-by-channel ("transposed") attention over tokens, with a residual.

    Queries and values come from the image tokens. In a Transposed Guidance Block (TGB) the
    keys come from a guidance token map (the quality representation and restoration features
    projected to the grid); without guidance the keys come from the tokens themselves, which is
    MANIQA's Transposed Attention Block (TAB).

    Shape:
        x: (B, N, C); guidance: (B, N, C) or None; output: (B, N, C).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.norm_guidance = nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        keys = self.norm_guidance(guidance) if guidance is not None else h
        q = self.q(h).transpose(1, 2)  # (B, C, N)
        k = self.k(keys).transpose(1, 2)
        v = self.v(h).transpose(1, 2)
        attn = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)  # (B, C, C)
        return x + self.proj((attn @ v).transpose(1, 2))


def _windows(x: torch.Tensor, size: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c)


def _merge(windows: torch.Tensor, size: int, b: int, h: int, w: int) -> torch.Tensor:
    x = windows.view(b, h // size, w // size, size, size, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, -1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        if mask is not None:  # (windows, n, n): -inf where tokens come from different regions
            bias = bias.unsqueeze(0) + mask.unsqueeze(1).repeat(bw // mask.shape[0], 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """A Swin Transformer block: (shifted) window attention and an MLP, each with a residual."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, grid: int) -> None:
        super().__init__()
        self.window, self.shift, self.grid = window, shift, grid
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.mlp = Mlp(dim, 4 * dim)
        self.register_buffer("mask", self._mask() if shift else None, persistent=False)

    def _mask(self) -> torch.Tensor:
        region = torch.zeros(1, self.grid, self.grid, 1)
        spans = (slice(0, -self.window), slice(-self.window, -self.shift), slice(-self.shift, None))
        label = 0
        for hs in spans:
            for ws in spans:
                region[:, hs, ws, :] = label
                label += 1
        ids = _windows(region, self.window).squeeze(-1)
        different = ids[:, :, None] != ids[:, None, :]
        return torch.zeros(different.shape).masked_fill(different, float("-inf"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h = self.norm1(x).view(b, self.grid, self.grid, c)
        if self.shift:
            h = torch.roll(h, (-self.shift, -self.shift), dims=(1, 2))
        h = _merge(self.attn(_windows(h, self.window), self.mask), self.window, b, self.grid, self.grid)
        if self.shift:
            h = torch.roll(h, (self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class SwinStage(nn.Module):
    """``depth`` Swin blocks on a grid x grid token map, every second one with shifted windows."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, grid: int) -> None:
        super().__init__()
        if grid % window:
            raise ValueError(f"the {grid}x{grid} token grid must be divisible by the window size {window}")
        shift = window // 2 if grid > window else 0
        self.blocks = nn.ModuleList(SwinBlock(dim, heads, window, shift if i % 2 else 0, grid) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x
