"""dri: the DRI-IQA model (dual-representation extractor, degradation-guided restoration, TGB + Swin
score predictor), its losses and metrics."""
from .models import DRIIQA, ModelCard, ModelConfig, create_model, list_models, model_card

__all__ = ["DRIIQA", "ModelCard", "ModelConfig", "create_model", "list_models", "model_card"]
