"""dri: the DRI-IQA model (dual-representation extractor, degradation-guided restoration, TGB + Swin score
predictor), its losses and metrics, and scoring images with it (``predict_images``).

Names are imported on first use, so ``python -m dri.train --help`` does not load torch.
"""
from __future__ import annotations

from degrade._extras import lazy_exports
from degrade._version import __version__

_LAZY = {
    "load_model": ".checkpoint",
    "Prediction": ".inference",
    "predict_images": ".inference",
    "DRIIQA": ".models",
    "ModelCard": ".models",
    "ModelConfig": ".models",
    "create_model": ".models",
    "list_models": ".models",
    "model_card": ".models",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
