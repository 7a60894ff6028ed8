"""Model registry in timm's style: decorated variant functions, ``create_model``, ``list_models``, cards."""
from __future__ import annotations

import fnmatch
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .config import INITIALISATION_FIELDS, ModelCard, ModelConfig
from .dre import input_channels, input_parts
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
    """What a user needs to know about ``name``; for shipped weights, the release record next to them
    (``dri/weights/<name>.json``: sha256, recipe, training data, measured transfer numbers)."""
    _check(name)
    card = _CARDS[name]
    release = WEIGHTS_DIR / f"{name}.json"
    if release.is_file():
        info = json.loads(release.read_text())
        card = replace(card, weights=info.get("weights"), sha256=info.get("sha256"),
                       trained_on=info.get("trained_on"), recipe=info.get("recipe"), transfer=info.get("transfer"))
    return card


def model_config(name: str, **overrides) -> ModelConfig:
    """A variant's configuration with ``overrides`` applied; ``None`` values are ignored."""
    _check(name)
    config = _VARIANTS[name]()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(ModelConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown model options {sorted(unknown)}; see dri.models.ModelConfig")
    return replace(config, **overrides)


WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class CheckpointError(ValueError):
    """A file that is not weights this package can load; the message says which and why."""


def shipped_weights(name: str) -> Path | None:
    """The weights file that ships inside the package for ``name``, if there is one."""
    card = model_card(name)
    return WEIGHTS_DIR / card.weights if card.weights else None


def rebuild_settings(recorded: dict[str, Any], given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``ModelConfig`` fields that rebuild the model of a weights file: the settings it records it was
    trained with (``model_overrides``), the caller's on top (``None`` values ignored), less how a training
    began (:data:`INITIALISATION_FIELDS`: pretrained backbones, from the hub or a local file), which the
    file's weights replace and which would otherwise be loaded again, or fail offline."""
    merged = {**recorded, **{k: v for k, v in (given or {}).items() if v is not None}}
    return {k: v for k, v in merged.items() if k not in INITIALISATION_FIELDS}


def create_model(name: str, checkpoint: str | Path | None = None, pretrained: bool = False, **overrides) -> DRIIQA:
    """Build a registered variant.

    Args:
        name: a variant from :func:`list_models`.
        checkpoint: a weights file (a ``.pt`` state dict or checkpoint written by ``dri.train``, loaded
            with ``torch.load(weights_only=True)``, or ``.safetensors``).
        pretrained: load the weights that ship with the toolkit for this variant (offline; see its
            :func:`model_card`). For a variant without shipped weights it asks for pretrained timm
            backbones instead (``dre_weights`` / ``vit_weights`` give local files).
        overrides: ``ModelConfig`` fields (``None`` values are ignored, so unset command-line
            flags never clobber defaults), e.g. ``restoration=False``. They apply on top of the
            settings a weights file records it was trained with (``model_overrides``), so weights
            trained with, say, ``dre_input="mscn"`` come back with it. Where weights are loaded, the
            initialisation fields (``pretrained``, ``dre_weights``, ``vit_weights``) are not applied:
            the weights replace what they would load (:func:`rebuild_settings`).
    """
    card = model_card(name)
    shipped = pretrained and card.weights is not None
    files: list[tuple[Path, str | None]] = []  # loaded in this order: the shipped weights, then a checkpoint
    if shipped:
        path = shipped_weights(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the shipped weights of {name} are missing from this installation")
        files.append((path, card.sha256))
    if checkpoint is not None:
        files.append((Path(checkpoint), None))
    loaded = [_read_verified(path, sha256) for path, sha256 in files]
    if loaded:  # the files' weights replace any initialisation
        recorded = {k: v for _, meta in loaded for k, v in meta.get("model_overrides", {}).items()}
        config = model_config(name, pretrained=False, **rebuild_settings(recorded, overrides))
    else:
        config = model_config(name, pretrained=pretrained or None, **overrides)
    model = DRIIQA(config)
    for (path, _), (state, meta) in zip(files, loaded):
        load_state(model, state, path, saved_config(name, meta))
    return model


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a weights file and what it says about itself (model name, overrides...).

    ``.safetensors`` files hold plain tensors and text metadata; ``.pt`` files are read with
    ``torch.load(weights_only=True)``, so nothing in either is ever executed. Inference checkpoints,
    plain state dicts and the training checkpoints of ``dri.train`` (``last.pt``) are understood.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                meta: dict[str, Any] = dict(handle.metadata() or {})
                state = {k: handle.get_tensor(k) for k in handle.keys()}
            if "model_overrides" in meta:
                meta["model_overrides"] = json.loads(meta["model_overrides"])
            return state, meta
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - foreign or damaged files raise many types
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{path}: not weights this toolkit can load ({first[:200]}); it reads .pt files "
                              "written by dri.train and .safetensors, and executes nothing in them") from None
    if isinstance(payload, dict) and isinstance(payload.get("model"), dict):
        return payload["model"], {k: v for k, v in payload.items() if k not in ("model", "optimizer", "scheduler", "rng")}
    if isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return payload, {}
    found = training_state(payload)
    if found is not None:
        return found
    raise CheckpointError(f"{path}: holds no model weights")


def training_state(payload: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The model inside a training checkpoint of ``dri.train`` (``last.pt`` of either stage: the objective's
    ``model.`` entries) and its model name, overrides and step; None for any other payload."""
    if not (isinstance(payload, dict) and isinstance(payload.get("objective"), dict)
            and isinstance(payload.get("config"), dict)):
        return None
    prefix = "model."
    state = {k[len(prefix):]: v for k, v in payload["objective"].items() if k.startswith(prefix)}
    model = payload["config"].get("model") or {}
    if not (state and model.get("name")):
        return None
    return state, {"model_name": model["name"], "model_overrides": dict(model.get("overrides") or {}),
                   "step": (payload.get("loop") or {}).get("step")}


def load_weights(model: DRIIQA, path: str | Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a weights file into ``model`` (cast to its dtypes); returns the file's own metadata."""
    state, meta = _read_verified(Path(path), expected_sha256)
    saved = saved_config(meta["model_name"], meta) if meta.get("model_name") in _VARIANTS else None
    load_state(model, state, path, saved)
    return meta


def _read_verified(path: Path, expected_sha256: str | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`read_weights`, after checking the file's sha256 when one is expected."""
    if expected_sha256 is not None and path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected_sha256:
            raise CheckpointError(f"{path}: sha256 {digest} does not match the model card's {expected_sha256}")
    return read_weights(path)


def saved_config(name: str, meta: dict[str, Any]) -> ModelConfig:
    """The configuration a weights file of variant ``name`` was saved from (its ``meta``: what
    :func:`read_weights` returns)."""
    return model_config(name, **rebuild_settings(meta.get("model_overrides", {})))


def widen_inputs(model: DRIIQA, state: dict[str, torch.Tensor], saved: ModelConfig) -> dict[str, torch.Tensor]:
    """``state``, saved from a model whose backbones read ``saved``'s inputs, fitted to ``model``'s where a
    backbone now reads more (``"rgb"`` or ``"mscn"`` weights into ``"rgb+mscn"``): the saved first-layer
    weights go to the channels of their own input and the new channels get zeros, so the widened model
    computes exactly what the saved one did and learns the new channels from there."""
    widened = dict(state)
    for field, key in model.input_stems().items():
        was, now = getattr(saved, field), getattr(model.config, field)
        parts = input_parts(now)
        weight = state.get(key)
        if was == now or was not in parts or weight is None or weight.shape[1] != input_channels(was):
            continue
        widened[key] = torch.cat([weight if part == was else torch.zeros_like(weight) for part in parts], dim=1)
    return widened


def load_state(model: DRIIQA, state: dict[str, torch.Tensor], path: str | Path,
               saved: ModelConfig | None = None) -> None:
    """Load ``state`` (read from ``path``, saved from a model of configuration ``saved`` when known) into
    ``model``, cast to its dtypes and widened to its inputs (:func:`widen_inputs`); the error names the file."""
    if saved is not None:
        state = widen_inputs(model, state, saved)
    own = model.state_dict()
    if model.head is not None:  # a model saved before its linear head was fitted (or built) has none yet
        saved_width = state["head.weight"].numel() if "head.weight" in state else None
        if saved_width is not None and saved_width != own["head.weight"].numel():
            warnings.warn(f"{path}: its linear head was fitted on {saved_width} inputs, and this version's head reads "
                          f"{own['head.weight'].numel()}; it is left out, so the score predictor scores. Refit it: "
                          f"python -m dri.train --config CONFIG --stage head --head.init {path}", stacklevel=3)
            state = {k: v for k, v in state.items() if not k.startswith("head.")}
        state = {**{k: v for k, v in own.items() if k.startswith("head.")}, **state}
    cast = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(cast)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: its weights do not fit this model ({str(error).splitlines()[0]})") from None


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
