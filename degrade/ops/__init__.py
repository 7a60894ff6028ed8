"""Functional ops, one module per distortion group: ``op(x, <per-sample params>[, generators])``.

Each op takes a batch (B, 3, H, W) in [0, 1] and parameters given as numbers or (B,) tensors;
stochastic ops also take one ``torch.Generator`` per sample. They are usable on their own.
"""
from . import blur, brightness, color, compression, noise, sharpness, spatial

__all__ = ["blur", "brightness", "color", "compression", "noise", "sharpness", "spatial"]
