"""Model configuration (every reconstructed design choice is a field) and model cards."""
from __future__ import annotations

from dataclasses import dataclass, field


# what a backbone may read: the image, its MSCN coefficients, or both side by side ("+" joins front
# ends, three channels each; dri.models.dre.input_front_end builds them)
BACKBONE_INPUTS = ("rgb", "mscn", "rgb+mscn")
MSCN_C = 1 / 255  # the MSCN coefficients' constant c on [0, 1] images, as in BRISQUE and NIQE
# how the score predictor turns the restoration residual x - x_hat into tokens
# (dri.models.predictor.ScorePredictor.encode_residual says what each does)
RESIDUAL_ENCODERS = ("conv", "energy")
# what gives a model's score: the score predictor, or a linear head fitted after stage 2
# (dri.models.head.LinearQualityHead)
SCORE_HEADS = ("predictor", "linear")


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of one DRI-IQA variant.

    Ablation switches: ``restoration`` (the degradation-guided restoration branch), ``split``
    (False: one undivided vector serves as both representations), ``guidance`` (``"tgb"``, or
    ``"tab"`` for MANIQA's plain transposed attention). ``predictor_input``: what the score
    predictor's ViT reads, ``"rgb"`` (the image, as in the paper) or ``"mscn"`` (its local
    mean-subtracted, contrast-normalised coefficients: content-normalised, so that the score
    depends less on what a photo shows); ``dre_input``: the same choice for DRE-Net's backbone,
    so that the quality and degradation vectors come from content-normalised input too;
    ``"rgb+mscn"`` gives a backbone both, six channels (the coefficients show compression and blur
    across content, the image tone, contrast and noise strength). A model widened from ``"rgb"``
    weights starts with zero weights on the coefficients, so it first computes what those weights did.
    ``mscn_c``: the constant c of both MSCN front ends, (x - mu) / (sigma + c): 1/255 (BRISQUE's)
    normalises local contrast away entirely, so noise of any strength on a flat region comes out
    alike; a larger c (divisive normalisation with a semi-saturation constant, e.g. 0.05) keeps the
    strength of weak structure (noise on flat regions, lost contrast) and still normalises strong
    texture. ``residual_encoder``: how the predictor reads the restoration residual x - x_hat,
    ``"conv"`` (two convolutions averaged over each token, as in the paper) or ``"energy"`` (the log of
    their mean square over each token: how strong the residual is, which the average of a small
    residual of both signs cancels). The RS loss and the sampling policy are training options
    (``dri.train``).
    """

    dre_backbone: str = "resnet50"
    dim: int = 256
    proj_dim: int = 128
    split: bool = True
    restoration: bool = True
    restorer_channels: int = 64
    restorer_groups: int = 5
    restorer_blocks: int = 5
    restorer_kernel: int = 3
    vit: str = "vit_base_patch8_224"
    vit_overrides: dict = field(default_factory=dict)
    vit_blocks: tuple[int, ...] = (6, 7, 8, 9)
    input_size: int = 224
    predictor_input: str = "rgb"
    dre_input: str = "rgb"
    mscn_c: float = MSCN_C
    residual_channels: int = 32
    residual_encoder: str = "conv"
    score_head: str = "predictor"
    guidance: str = "tgb"
    embed_dim: int = 768
    swin_depth: int = 2
    swin_heads: int = 4
    window: int = 4
    pretrained: bool = False
    dre_weights: str | None = None
    vit_weights: str | None = None

    def __post_init__(self) -> None:
        if self.guidance not in ("tgb", "tab"):
            raise ValueError(f"guidance must be 'tgb' or 'tab', got {self.guidance!r}")
        for name in ("predictor_input", "dre_input"):
            if getattr(self, name) not in BACKBONE_INPUTS:
                raise ValueError(f"{name} must be one of {BACKBONE_INPUTS}, got {getattr(self, name)!r}")
        if self.residual_encoder not in RESIDUAL_ENCODERS:
            raise ValueError(f"residual_encoder must be one of {RESIDUAL_ENCODERS}, got {self.residual_encoder!r}")
        if self.score_head not in SCORE_HEADS:
            raise ValueError(f"score_head must be one of {SCORE_HEADS}, got {self.score_head!r}")
        if not self.mscn_c > 0:
            raise ValueError(f"mscn_c must be positive, got {self.mscn_c!r}")
        object.__setattr__(self, "vit_blocks", tuple(self.vit_blocks))


# fields that say where a new model's initial weights come from; a model rebuilt from a weights
# file takes its weights from the file, so these settings recorded in it are not applied again
INITIALISATION_FIELDS = ("pretrained", "dre_weights", "vit_weights")


@dataclass(frozen=True)
class ModelCard:
    """What a user needs to know before using a variant."""

    name: str
    summary: str
    input_size: int
    normalisation: str = "images in [0, 1]; each backbone normalises with its own mean/std inside the model"
    score_range: str = "about [0, 1]; higher is better (trained on MOS normalised to [0, 1])"
    trained_on: str | None = None
    weights: str | None = None  # shipped weights: a file in dri/weights/
    sha256: str | None = None
    recipe: str | None = None  # the config that made the shipped weights
    transfer: dict | None = None  # their measured numbers (benchmarks/bench_transfer.py)
    paper: str = "Yue, Lin, Yang, Ren: Dual-Representation Interaction Driven Image Quality Assessment with " \
                 "Restoration Assistance, WACV 2025 (arXiv 2411.17390)"
