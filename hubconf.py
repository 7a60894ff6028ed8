"""torch.hub entry points: ``torch.hub.load("path/to/this/repo", "dri_iqa_tiny", source="local")``.

Each returns a DRI-IQA model; with ``pretrained=True`` (the default) the weights that ship inside
the package are loaded, offline.
"""
dependencies = ["torch", "timm", "safetensors"]


def dri_iqa_tiny(pretrained: bool = True, **overrides):
    """The tiny DRI-IQA model (128 px input), with its shipped weights."""
    from dri import create_model

    return create_model("dri_iqa_tiny", pretrained=pretrained, **overrides)


def dri_iqa_base(pretrained: bool = False, **overrides):
    """The paper-scale DRI-IQA model (224 px input); no weights ship for it (pretrained=True asks timm for
    ImageNet backbones)."""
    from dri import create_model

    return create_model("dri_iqa_base", pretrained=pretrained, **overrides)
