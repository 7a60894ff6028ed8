"""Checkpoints: training state (resumable) and inference weights, written atomically, loaded weights-only."""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .models import DRIIQA, create_model


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write with a temporary name and rename, so a crash never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    """A checkpoint written by this package (never unpickles arbitrary objects)."""
    return torch.load(path, map_location="cpu", weights_only=True)


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


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[DRIIQA, dict[str, Any]]:
    """Rebuild a model from an inference checkpoint (or a training one); returns it and the checkpoint info."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    payload = load(path)
    if "model_name" not in payload:
        raise ValueError(f"{path}: not a DRI-IQA checkpoint (no model_name); use dri.create_model(name, checkpoint=...)")
    model = create_model(payload["model_name"], **payload.get("model_overrides", {}))
    model.load_state_dict(payload["model"])
    info = {k: v for k, v in payload.items() if k not in ("model", "optimizer", "scheduler", "rng")}
    info["sha256"] = file_sha256(path)
    return model.to(device).eval(), info
