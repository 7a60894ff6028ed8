"""Model registry in timm's style: decorated variant functions, ``create_model``, ``list_models``, cards."""
from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from .config import ModelCard, ModelConfig
from .dri_iqa import DRIIQA

_VARIANTS: dict[str, Callable[[], ModelConfig]] = {}
_CARDS: dict[str, ModelCard] = {}


def register_model(card: ModelCard) -> Callable[[Callable[[], ModelConfig]], Callable[[], ModelConfig]]:
    """Register a variant: a function returning its ``ModelConfig``, named like the variant."""

    def wrap(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
        if fn.__name__ in _VARIANTS:
            raise ValueError(f"model {fn.__name__!r} is already registered")
        _VARIANTS[fn.__name__] = fn
        _CARDS[fn.__name__] = card
        return fn

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style wildcard pattern."""
    return sorted(n for n in _VARIANTS if fnmatch.fnmatch(n, pattern))


def model_card(name: str) -> ModelCard:
    _check(name)
    return _CARDS[name]


def model_config(name: str, **overrides) -> ModelConfig:
    """A variant's configuration with ``overrides`` applied; ``None`` values are ignored."""
    _check(name)
    config = _VARIANTS[name]()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(ModelConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown model options {sorted(unknown)}; see dri.models.ModelConfig")
    return replace(config, **overrides)


def create_model(name: str, checkpoint: str | Path | None = None, **overrides) -> DRIIQA:
    """Build a registered variant.

    Args:
        name: a variant from :func:`list_models`.
        checkpoint: a weights file (state dict saved by ``dri.train``), loaded with
            ``torch.load(weights_only=True)``; when the card lists a sha256 it is checked.
        overrides: ``ModelConfig`` fields (``None`` values are ignored, so unset command-line
            flags never clobber defaults), e.g. ``restoration=False`` or ``pretrained=True``.
    """
    model = DRIIQA(model_config(name, **overrides))
    if checkpoint is not None:
        load_weights(model, checkpoint, expected_sha256=_CARDS[name].sha256)
    return model


def load_weights(model: DRIIQA, path: str | Path, expected_sha256: str | None = None) -> None:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if expected_sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected_sha256:
            raise ValueError(f"{path}: sha256 {digest} does not match the model card's {expected_sha256}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    model.load_state_dict(state)


def _check(name: str) -> None:
    if name not in _VARIANTS:
        import difflib

        close = difflib.get_close_matches(name, _VARIANTS, n=3)
        raise KeyError(f"unknown model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                       + f" Registered: {', '.join(list_models())}")


@register_model(ModelCard(
    "dri_iqa_base", "paper scale: DRE-Net on ResNet-50, DASR-style restoration (64 channels, 5x5 blocks), "
    "predictor on vit_base_patch8_224 blocks 7-10 with TGB x2 + Swin, twice", input_size=224))
def dri_iqa_base() -> ModelConfig:
    return ModelConfig()


@register_model(ModelCard(
    "dri_iqa_tiny", "the same architecture scaled to train on a 2-core CPU: DRE-Net on resnet10t, restoration with "
    "16 channels and 1x2 blocks, a 6-block ViT (dim 96, patch 16) on 128 px inputs", input_size=128))
def dri_iqa_tiny() -> ModelConfig:
    return ModelConfig(
        dre_backbone="resnet10t", dim=64, proj_dim=64,
        restorer_channels=16, restorer_groups=1, restorer_blocks=2,
        vit="vit_tiny_patch16_224", vit_overrides={"embed_dim": 96, "depth": 6, "num_heads": 3},
        vit_blocks=(2, 3, 4, 5), input_size=128, residual_channels=16,
        embed_dim=96, swin_depth=2, swin_heads=3, window=4,
    )
