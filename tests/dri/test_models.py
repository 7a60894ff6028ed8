"""DRI-IQA models: every registered variant, stage gradients, overfitting, checkpoints, registry."""
from __future__ import annotations

import pytest
import torch

import dri
from dri.losses import info_nce, mos_loss, rs_loss
from dri.models import DRIIQA, model_config


@pytest.fixture(scope="module")
def tiny() -> DRIIQA:
    torch.manual_seed(0)
    return dri.create_model("dri_iqa_tiny")


@pytest.mark.parametrize("name", dri.list_models())
def test_every_variant_on_odd_sizes(name):
    torch.manual_seed(0)
    model = dri.create_model(name).eval()
    card = dri.model_card(name)
    assert card.input_size == model.config.input_size
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        f_q, f_d = model.represent(x)
        x_hat, features = model.restore(x, f_d)
        out = model(torch.rand(1, 3, 61, 45), return_all=True)
    assert f_q.shape == f_d.shape == (2, model.config.dim)
    assert x_hat.shape == x.shape and features.shape == (2, model.config.restorer_channels, 37, 53)
    assert out["score"].shape == (1,) and torch.isfinite(out["score"]).all()
    assert out["x_hat"].shape == (1, 3, card.input_size, card.input_size)


@pytest.mark.parametrize("switch", [{"restoration": False}, {"split": False}, {"guidance": "tab"},
                                    {"predictor_input": "mscn"}, {"dre_input": "mscn"},
                                    {"dre_input": "mscn", "predictor_input": "mscn", "mscn_c": 0.05},
                                    {"dre_input": "rgb+mscn", "predictor_input": "rgb+mscn"},
                                    {"residual_encoder": "energy"}])
def test_ablations_build_and_run(switch):
    model = dri.create_model("dri_iqa_tiny", **switch)
    with torch.no_grad():
        score = model(torch.rand(2, 3, 128, 128))
    assert score.shape == (2,)
    if switch.get("restoration") is False:
        assert model.restorer is None
        with pytest.raises(RuntimeError, match="without the restoration branch"):
            model.restore(torch.rand(1, 3, 8, 8), torch.rand(1, 64))
    if switch.get("split") is False:
        f_q, f_d = model.represent(torch.rand(2, 3, 64, 64))
        assert f_q is f_d and f_q.shape == (2, 128)


def test_the_mscn_front_end_is_the_brisque_definition_and_ignores_brightness():
    """MSCN coefficients as BRISQUE/NIQE define them (7x7 Gaussian window, sigma 7/6, replicated
    border, c = 1/255 on [0, 1]), computed here independently with OpenCV; a flat image gives zeros and
    a brightness offset changes nothing, so the predictor reads structure, not a photo's exposure."""
    import cv2
    import numpy as np

    from dri.models.dre import LocalNormalize

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.random((3, 40, 56)).astype(np.float64).transpose(1, 2, 0), (0, 0), 1.5) * 0.6
    blur = lambda a: cv2.GaussianBlur(a, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)  # noqa: E731
    mu = blur(image)
    expected = (image - mu) / (np.sqrt(np.abs(blur(image * image) - mu * mu)) + 1 / 255)
    mscn = LocalNormalize()
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].copy())
    torch.testing.assert_close(mscn(x)[0].permute(1, 2, 0).double(), torch.from_numpy(expected), atol=2e-4, rtol=0)
    torch.testing.assert_close(mscn(x + 0.3), mscn(x), atol=1e-3, rtol=0)
    assert mscn(torch.full((1, 3, 16, 16), 0.7)).abs().max() < 1e-3
    flat = torch.zeros(1, 3, 16, 16)  # black with one grey corner: zero variance in most windows
    flat[..., :2, :2] = 0.3
    flat.requires_grad_(True)
    mscn(flat).square().sum().backward()  # the RS loss differentiates through DRE-Net's front end
    assert torch.isfinite(flat.grad).all()
    with pytest.raises(ValueError, match="predictor_input must be one of"):
        model_config("dri_iqa_tiny", predictor_input="grey")
    with pytest.raises(ValueError, match="dre_input must be one of"):
        model_config("dri_iqa_tiny", dre_input="grey")
    with pytest.raises(ValueError, match="mscn_c must be positive"):
        model_config("dri_iqa_tiny", mscn_c=0)


def test_a_larger_mscn_constant_keeps_the_strength_of_noise_on_flat_regions():
    """With BRISQUE's c = 1/255 weak and strong noise on a flat grey image normalise to nearly the same
    coefficients, so a backbone cannot tell them apart; with c = 0.05 (``mscn_c``) their spread keeps
    the ratio of the noise strengths, and both backbones of a model read with the constant it sets."""
    from dri.models.dre import LocalNormalize

    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 3, 64, 64, generator=g)
    weak, strong = 0.5 + 0.01 * noise, 0.5 + 0.08 * noise  # 8x the strength
    brisque, divisive = LocalNormalize(), LocalNormalize(c=0.05)
    assert brisque(strong).std() / brisque(weak).std() < 1.4  # measured 1.33
    assert divisive(strong).std() / divisive(weak).std() > 3  # measured 3.6
    model = dri.create_model("dri_iqa_tiny", dre_input="mscn", predictor_input="mscn", mscn_c=0.05)
    assert model.dre.normalize.c == model.predictor.normalize.c == 0.05


def test_dre_input_mscn_makes_the_representations_blind_to_brightness():
    """With ``dre_input="mscn"`` DRE-Net's vectors do not move when the whole image brightens; with RGB
    input (the same weights) they do, so the check can fail."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64) * 0.5
    mscn = dri.create_model("dri_iqa_tiny", dre_input="mscn").eval()
    rgb = dri.create_model("dri_iqa_tiny").eval()
    rgb.load_state_dict(mscn.state_dict())
    with torch.no_grad():
        same = [torch.cat(mscn.represent(v), dim=-1) for v in (x, x + 0.3)]
        moved = [torch.cat(rgb.represent(v), dim=-1) for v in (x, x + 0.3)]
    torch.testing.assert_close(same[1], same[0], atol=1e-3 * same[0].abs().max().item(), rtol=0)
    assert (moved[1] - moved[0]).abs().max() > 0.05 * moved[0].abs().max()


def test_the_energy_residual_encoder_sees_how_strong_the_residual_is():
    """The paper's encoder (two convolutions, averaged per token) maps a weak and a five times stronger
    restoration residual to nearly the same tokens: a small residual of both signs averages to the
    biases. The ``energy`` encoder's tokens move with the strength, and no residual gives exactly its
    linear map's bias."""
    noise = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    moved = {}
    for encoder in ("conv", "energy"):
        torch.manual_seed(0)
        predictor = dri.create_model("dri_iqa_tiny", residual_encoder=encoder).predictor
        with torch.no_grad():
            weak, strong = predictor.encode_residual(0.006 * noise), predictor.encode_residual(0.03 * noise)
        assert weak.shape == (2, predictor.grid ** 2, 16)
        moved[encoder] = (strong - weak).abs().mean() / weak.abs().mean()
    assert moved["conv"] < 0.02  # measured 0.003
    assert moved["energy"] > 0.5  # measured 1.0
    with torch.no_grad():
        none = predictor.encode_residual(torch.zeros(1, 3, 128, 128))
    torch.testing.assert_close(none, predictor.residual_mix.bias.expand_as(none))
    with pytest.raises(ValueError, match="residual_encoder must be one of"):
        model_config("dri_iqa_tiny", residual_encoder="wavelet")


def _with_grad(model: torch.nn.Module) -> set[str]:
    """Parameters the backward pass reached (grads were cleared to None before it). Values can be
    exactly zero at initialisation: timm zero-initialises the last norm of each residual block."""
    return {n for n, p in model.named_parameters() if p.grad is not None}


def _trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_stage_one_trains_exactly_dre_net(tiny):
    tiny.zero_grad(set_to_none=True)
    tiny.set_stage(1)
    x = torch.rand(6, 3, 64, 64)
    f_q, f_d = tiny.represent(x)
    z_q, z_d = tiny.dre.project(f_q, f_d)
    positives = torch.zeros(6, 6, dtype=torch.bool)
    positives[0, 1] = positives[1, 0] = positives[2, 3] = positives[3, 2] = True
    (info_nce(z_q, positives) + info_nce(z_d, positives)).backward()
    graded = _with_grad(tiny)
    assert graded and all(n.startswith("dre.") for n in graded)
    assert {n for n in _trainable(tiny) if n.startswith("dre.")} == graded


def test_stage_two_trains_predictor_and_restorer_with_dre_frozen(tiny):
    tiny.zero_grad(set_to_none=True)
    tiny.set_stage(2)
    x = torch.rand(4, 3, 128, 128)
    tiny.set_prototypes(torch.rand(64), torch.rand(64))
    out = tiny(x, return_all=True)
    f_q_hat, f_d_hat = tiny.represent(out["x_hat"])
    loss = mos_loss(out["score"], torch.rand(4)) + 0.1 * rs_loss(f_q_hat, f_d_hat, tiny.prototype_q, tiny.prototype_d)
    loss.backward()
    graded = _with_grad(tiny)
    assert not any(n.startswith("dre.") for n in graded)
    assert any(n.startswith("restorer.") for n in graded) and any(n.startswith("predictor.") for n in graded)
    assert graded == _trainable(tiny) - {n for n in _trainable(tiny) if not n.startswith(("restorer.", "predictor."))}
    unreached = {n for n in _trainable(tiny)} - graded
    assert not unreached, f"trainable parameters the stage-2 loss never reaches: {sorted(unreached)[:5]}"


def test_stage_two_finetuning_opens_the_backbone_but_not_the_heads(tiny):
    tiny.set_stage(2, finetune_dre=True)
    trainable = _trainable(tiny)
    assert any(n.startswith("dre.backbone.") for n in trainable) and "dre.fc.weight" in trainable
    assert not any(n.startswith(("dre.head_q", "dre.head_d")) for n in trainable)


def test_tiny_model_overfits_a_fixed_batch():
    torch.manual_seed(1)
    model = dri.create_model("dri_iqa_tiny")
    model.set_stage(2)
    x = torch.rand(6, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    target = torch.linspace(0.1, 0.9, 6)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = mos_loss(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < losses[0] / 10, losses[::5]


def test_state_dict_round_trip_with_weights_only(tiny, tmp_path):
    tiny.eval()
    tiny.set_prototypes(torch.full((64,), 0.5), torch.full((64,), -0.25))
    path = tmp_path / "weights.pt"
    torch.save(tiny.state_dict(), path)
    loaded = dri.create_model("dri_iqa_tiny", checkpoint=path).eval()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), tiny(x))
    assert torch.equal(loaded.prototype_q, tiny.prototype_q) and loaded.has_prototypes
    torch.save({"model": tiny.state_dict(), "step": 3}, tmp_path / "checkpoint.pt")
    assert torch.equal(dri.create_model("dri_iqa_tiny", checkpoint=tmp_path / "checkpoint.pt").prototype_d,
                       tiny.prototype_d)


def test_weights_come_back_with_the_settings_they_were_trained_with(tmp_path):
    """The MSCN front ends have no weights: a file trained with them loads into an RGB model without
    complaint, so create_model must rebuild what the file records (the caller's options on top), and
    must not redo a recorded initialisation (pretrained backbones from a local file)."""
    from dri import checkpoint

    torch.manual_seed(0)
    trained = dri.create_model("dri_iqa_tiny", dre_input="mscn", predictor_input="mscn").eval()
    path = tmp_path / "mscn.safetensors"
    checkpoint.export_safetensors(trained, path, "dri_iqa_tiny", {"dre_input": "mscn", "predictor_input": "mscn",
                                                                    "pretrained": True, "dre_weights": "gone.pt"},
                                  dtype=torch.float32)
    loaded = dri.create_model("dri_iqa_tiny", checkpoint=path).eval()
    assert (loaded.config.dre_input, loaded.config.predictor_input, loaded.config.pretrained) == ("mscn", "mscn", False)
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), trained(x))
        assert not torch.allclose(dri.create_model("dri_iqa_tiny", checkpoint=path, predictor_input="rgb").eval()(x),
                                  trained(x))
    assert dri.create_model("dri_iqa_tiny", checkpoint=path, predictor_input="rgb").config.dre_input == "mscn"
    # load_model (stage 2 starts from a stage-1 file this way, given the same model settings) rebuilds the
    # same settings: the recorded and the given initialisation are both dropped, as is what it reports
    again, info = checkpoint.load_model(path, overrides={"pretrained": True, "vit_weights": "gone.pt"})
    assert info["model_overrides"] == {"dre_input": "mscn", "predictor_input": "mscn"}
    assert not again.config.pretrained and again.config.vit_weights is None
    with torch.no_grad():
        torch.testing.assert_close(again(x), trained(x))


def test_registry():
    assert dri.list_models() == ["dri_iqa_base", "dri_iqa_tiny"]
    assert dri.list_models("*tiny") == ["dri_iqa_tiny"]
    assert model_config("dri_iqa_tiny", restoration=None, dim=None) == model_config("dri_iqa_tiny")
    assert model_config("dri_iqa_tiny", dim=32).dim == 32
    with pytest.raises(TypeError, match="unknown model options"):
        dri.create_model("dri_iqa_tiny", depth=3)
    with pytest.raises(KeyError, match="did you mean dri_iqa_tiny"):
        dri.create_model("dri_iqa_tiy")
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        dri.create_model("dri_iqa_tiny", checkpoint="missing.pt")
    with pytest.raises(ValueError, match="guidance"):
        dri.create_model("dri_iqa_tiny", guidance="cross")
    card = dri.model_card("dri_iqa_base")
    assert card.input_size == 224 and "higher is better" in card.score_range and card.weights is None
