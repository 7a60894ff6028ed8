"""The DRI-IQA network: DRE-Net, the degradation-guided restoration network and the score predictor."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .dre import DRENet, stem_weight
from .head import LinearQualityHead
from .predictor import ScorePredictor
from .restoration import RestorationNet


class DRIIQA(nn.Module):
    """No-reference quality model with dual representations and restoration assistance.

    ``model(x)`` scores images (B, 3, H, W) in [0, 1] (with the fitted linear head where the config
    asks for one, else with the score predictor); inputs of another size than
    ``config.input_size`` are resized to it (use five-crop evaluation for the protocol). Each input is
    scored as a whole image: to score an image by its crops with a fitted head, use
    :func:`dri.inference.score_crops`, which gives the head the image's features averaged over its crops
    and its tone over all of them. The parts are usable alone: ``represent(x) -> (f_q, f_d)``,
    ``restore(x, f_d) -> (x_hat, features)``. The pristine prototypes of the RS loss are buffers, saved
    with the weights.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.dre = DRENet(config.dre_backbone, config.dim, config.proj_dim, config.split, config.pretrained,
                          config.dre_weights, input=config.dre_input, mscn_c=config.mscn_c)
        rep = self.dre.dim
        self.restorer = RestorationNet(rep, config.restorer_channels, config.restorer_groups, config.restorer_blocks,
                                       config.restorer_kernel) if config.restoration else None
        self.predictor = ScorePredictor(
            config.vit, config.vit_blocks, config.input_size, rep,
            feature_channels=config.restorer_channels if config.restoration else 0,
            residual_channels=config.residual_channels if config.restoration else 0,
            residual_encoder=config.residual_encoder,
            embed_dim=config.embed_dim, swin_depth=config.swin_depth, swin_heads=config.swin_heads,
            window=config.window, guided=config.guidance == "tgb", pretrained=config.pretrained,
            weights=config.vit_weights, vit_overrides=config.vit_overrides,
            vit_input=config.predictor_input, mscn_c=config.mscn_c)
        self.head = LinearQualityHead(rep) if config.score_head == "linear" else None
        self.register_buffer("prototype_q", torch.zeros(rep))
        self.register_buffer("prototype_d", torch.zeros(rep))

    def input_stems(self) -> dict[str, str]:
        """The state-dict names of the first-layer weights of the backbones, by the field that sets what each
        reads (``dre_input``, ``predictor_input``)."""
        return {"dre_input": f"dre.backbone.{stem_weight(self.dre.backbone)}",
                "predictor_input": f"predictor.vit.{stem_weight(self.predictor.vit)}"}

    def represent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The quality and degradation representations of images of any size."""
        return self.dre(x)

    def restore(self, x: torch.Tensor, f_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The restored image and the restoration features, guided by f_d."""
        if self.restorer is None:
            raise RuntimeError("this model was built without the restoration branch (restoration=False)")
        return self.restorer(x, f_d)

    def forward(self, x: torch.Tensor, return_all: bool = False) -> torch.Tensor | dict[str, Any]:
        size = self.config.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        f_q, f_d = self.dre(x)
        if self.has_head and not return_all:  # the head reads DRE-Net's vectors and the image alone
            return self.head(self.head.features(f_q, f_d, x))
        x_hat = features = residual = None
        if self.restorer is not None:
            x_hat, features = self.restorer(x, f_d)
            residual = x - x_hat
        predicted = self.predictor(x, f_q, residual, features)
        score = self.head(self.head.features(f_q, f_d, x)) if self.has_head else predicted
        if not return_all:
            return score
        return {"score": score, "predictor_score": predicted, "f_q": f_q, "f_d": f_d, "x_hat": x_hat,
                "features": features, "input": x}

    @property
    def has_head(self) -> bool:
        """Whether a fitted linear head gives the score (``score_head="linear"``, after ``dri.train --stage head``)."""
        return self.head is not None and self.head.fitted

    def full_precision(self) -> set[str]:
        """State-dict names kept in float32 when the weights are exported in half precision: the linear
        head's standardisation, weights and kernel correction, whose products with unnormalised features
        would lose digits."""
        return {k for k in self.state_dict() if k.startswith("head.")}

    @property
    def has_prototypes(self) -> bool:
        return bool(self.prototype_q.abs().sum() > 0)

    def set_prototypes(self, prototype_q: torch.Tensor, prototype_d: torch.Tensor) -> None:
        """Store the mean representations of pristine patches (computed at the end of stage 1)."""
        self.prototype_q.copy_(prototype_q.detach())
        self.prototype_d.copy_(prototype_d.detach())

    def set_stage(self, stage: int, finetune_dre: bool = False) -> None:
        """Choose what trains. Stage 1: DRE-Net (and its projection heads) and, for pixel
        pre-training, the restoration network. Stage 2: predictor and restoration network; DRE-Net
        frozen unless ``finetune_dre`` (its projection heads always are)."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        for p in self.parameters():
            p.requires_grad_(False)
        if stage == 1:
            for p in self.dre.parameters():
                p.requires_grad_(True)
            if self.restorer is not None:
                for p in self.restorer.parameters():
                    p.requires_grad_(True)
            return
        for module in (self.predictor, self.restorer):
            if module is not None:
                for p in module.parameters():
                    p.requires_grad_(True)
        if finetune_dre:
            for p in list(self.dre.backbone.parameters()) + list(self.dre.fc.parameters()):
                p.requires_grad_(True)
