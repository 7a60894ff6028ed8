"""DRI-IQA models: the network, its parts, and the registry of variants."""
from .config import ModelCard, ModelConfig
from .dri_iqa import DRIIQA
from .registry import create_model, list_models, load_weights, model_card, model_config, register_model

__all__ = ["DRIIQA", "ModelCard", "ModelConfig", "create_model", "list_models", "load_weights", "model_card",
           "model_config", "register_model"]
