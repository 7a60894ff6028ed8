"""DRI-IQA models: the network, its parts, and the registry of variants."""
from degrade._extras import require as _require

_require("the DRI-IQA model", "train", "timm", "safetensors")

from .config import ModelCard, ModelConfig  # noqa: E402 - after the check it guards
from .dri_iqa import DRIIQA  # noqa: E402
from .registry import create_model, list_models, load_weights, model_card, model_config, register_model  # noqa: E402

__all__ = ["DRIIQA", "ModelCard", "ModelConfig", "create_model", "list_models", "load_weights", "model_card",
           "model_config", "register_model"]
