"""dri: the DRI-IQA model (dual-representation extractor, degradation-guided restoration, TGB + Swin
score predictor), its losses and metrics, and scoring images with it (``predict_images``)."""
__version__ = "0.1.0"

from .checkpoint import load_model  # noqa: E402
from .inference import Prediction, predict_images  # noqa: E402
from .models import DRIIQA, ModelCard, ModelConfig, create_model, list_models, model_card  # noqa: E402

__all__ = ["DRIIQA", "ModelCard", "ModelConfig", "Prediction", "create_model", "list_models", "load_model",
           "model_card", "predict_images"]
