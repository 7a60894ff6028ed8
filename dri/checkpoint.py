"""Checkpoints: training state (resumable) and inference weights, written atomically, loaded weights-only.

Inference weights are read from ``.pt`` files written by ``dri.train`` (``torch.load(weights_only=True)``:
never arbitrary objects) or from ``.safetensors`` files (the format of released weights), whose
metadata names the model and its overrides; :func:`export_safetensors` writes one.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import torch

from degrade._version import __version__

from .models import DRIIQA, create_model
from .models.registry import CheckpointError, load_state, read_weights, rebuild_settings, saved_config

__all__ = ["CheckpointError", "export_safetensors", "file_sha256", "load", "load_model", "rng_state", "save",
           "save_inference", "set_rng_state"]


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write with a temporary name and rename, so a crash never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    """A training checkpoint written by this package (never unpickles arbitrary objects)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for foreign or damaged files
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{path}: not a checkpoint this toolkit can load ({first[:200]}); only files written by "
                              "dri.train are read, and nothing in them is executed") from None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_inference(path: Path, model: DRIIQA, name: str, overrides: dict[str, Any], **info: Any) -> str:
    """Weights plus what is needed to rebuild the model; returns the file's sha256."""
    save(path, {"model": model.state_dict(), "model_name": name, "model_overrides": dict(overrides),
                "toolkit": __version__, **info})
    return file_sha256(path)


def export_safetensors(model: DRIIQA, path: str | Path, name: str, overrides: dict[str, Any] | None = None,
                       dtype: torch.dtype = torch.float16, **info: Any) -> str:
    """Write the model's weights as safetensors (floating tensors in ``dtype``, but those the model keeps in
    full precision: :meth:`DRIIQA.full_precision`), with the model name, its overrides and ``info`` as
    text metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    full = model.full_precision()
    state = {k: (v.to(dtype) if v.is_floating_point() and k not in full else v).contiguous()
             for k, v in model.state_dict().items()}
    metadata = {"model_name": name, "model_overrides": json.dumps(overrides or {}), "toolkit": __version__,
                **{k: str(v) for k, v in info.items()}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.write_bytes(_canonical_safetensors(tmp.read_bytes()))
    os.chmod(tmp, 0o644)  # readable by everyone, like any file of an installed package
    os.replace(tmp, path)
    return file_sha256(path)


def _canonical_safetensors(blob: bytes) -> bytes:
    """The same file with its JSON header's keys sorted: safetensors writes the metadata map in an order
    that changes from one process to the next, and the same weights must give the same bytes (sha256).

    Tensor offsets are relative to the end of the header, so only the header is rewritten; it is
    padded with spaces to a multiple of 8 bytes, as safetensors does.
    """
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + blob[8 + size :]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_model(path: str | Path, device: str | torch.device = "cpu",
               overrides: dict[str, Any] | None = None) -> tuple[DRIIQA, dict[str, Any]]:
    """Rebuild a model from an inference checkpoint, a training one, or safetensors weights; returns it and
    what the file says about itself (model name, step, metrics..., and its sha256).

    ``overrides`` (ModelConfig fields) apply on top of the file's own: a setting without weights of
    its own, such as ``predictor_input``, can change while the weights carry over; one that changes
    a weight's shape fails with an error naming the file. ``info["model_overrides"]`` is what the
    returned model was built with.
    """
    path = Path(path)
    state, info = read_weights(path)
    if "model_name" not in info:
        raise CheckpointError(f"{path}: not a DRI-IQA checkpoint (no model_name); use "
                              "dri.create_model(name, checkpoint=...)")
    saved = saved_config(info["model_name"], info)
    info["model_overrides"] = rebuild_settings(info.get("model_overrides", {}), overrides)
    model = create_model(info["model_name"], **info["model_overrides"])
    load_state(model, state, path, saved)
    info["sha256"] = file_sha256(path)
    return model.to(device).eval(), info
