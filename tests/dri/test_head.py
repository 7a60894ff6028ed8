"""The natural-scene statistics, the distortion cues and the linear quality head: what they measure, the
closed-form fit, and that the fitted head gives the model's score and survives half-precision export."""
from __future__ import annotations

import math

import kornia
import pytest
import torch

import dri
from dri import checkpoint
from dri.models.cues import CUES, TONE, distortion_cues, tone_of_images
from dri.models.head import LinearQualityHead
from dri.models.nss import STATISTICS, _aggd, _ggd, nss_statistics, patch_statistics


def _photo(name: str = "astronaut", side: int = 192) -> torch.Tensor:
    from degrade.samples import load_sample

    image = load_sample(name)
    return image[None, :, :side, :side]


def test_generalised_gaussian_shapes_are_recovered_from_samples():
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(4, 20000, generator=g, dtype=torch.float64)
    laplace = torch.distributions.Laplace(0.0, 1.0).sample((4, 20000)).double()
    assert torch.allclose(_ggd(gauss)[:, 0], torch.full((4,), 2.0, dtype=torch.float64), atol=0.1)
    assert torch.allclose(_ggd(laplace)[:, 0], torch.full((4,), 1.0, dtype=torch.float64), atol=0.1)
    assert torch.allclose(_ggd(2 * gauss)[:, 1], torch.full((4,), 4.0, dtype=torch.float64), rtol=0.05)
    # an asymmetric Gaussian: deviation 0.5 on the left, 2 on the right, each side's mass in proportion
    left_side = torch.rand(4, 20000, generator=g, dtype=torch.float64) < 0.5 / 2.5
    skewed = torch.where(left_side, -0.5 * gauss.abs(), 2 * gauss.abs())
    shape, mean, left, right = _aggd(skewed).unbind(-1)
    assert torch.allclose(left.sqrt(), torch.full((4,), 0.5, dtype=torch.float64), rtol=0.05)
    assert torch.allclose(right.sqrt(), torch.full((4,), 2.0, dtype=torch.float64), rtol=0.05)
    assert (mean > 0).all() and torch.allclose(shape, torch.full((4,), 2.0, dtype=torch.float64), atol=0.15)


def test_statistics_divide_out_contrast_and_see_noise():
    photo = _photo()
    base = nss_statistics(photo)
    assert base.shape == (1, STATISTICS) and base.dtype == torch.float64
    noisy = (photo + 0.1 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    blurred = nss_statistics(kornia.filters.gaussian_blur2d(photo, (9, 9), (2.0, 2.0)))
    dimmer = nss_statistics(0.5 * photo + 0.25)
    shape, variance = base[0, 0], base[0, 1]  # of the coefficients at the first scale
    # noise makes the coefficients wider and flatter-topped, blur narrows them
    assert nss_statistics(noisy)[0, 0] > shape + 0.3 and nss_statistics(noisy)[0, 1] > 2 * variance
    assert blurred[0, 1] < variance / 3
    # halving the contrast around mid-grey moves them far less than either
    assert (dimmer[0, 0] - shape).abs() < 0.1 and (dimmer[0, 1] - variance).abs() < 0.5 * (variance - blurred[0, 1])
    # a batch is its images one by one; overlapping patches include the side-by-side ones
    pair = torch.cat([photo, noisy])
    assert torch.equal(nss_statistics(pair), torch.cat([base, nss_statistics(noisy)]))
    features, sharpness = patch_statistics(photo, stride=48)
    assert features.shape == (1, 9, STATISTICS) and sharpness.shape == (1, 9)
    assert torch.equal(features[0, [0, 2, 6, 8]], patch_statistics(photo)[0][0])


def test_small_images_are_one_patch_and_tiny_ones_refused():
    assert nss_statistics(torch.rand(1, 3, 40, 70)).shape == (1, STATISTICS)
    with pytest.raises(ValueError, match="at least 8 x 8"):
        nss_statistics(torch.rand(1, 3, 7, 64))


def test_cues_see_blur_noise_and_lost_contrast_in_order():
    photo = _photo("astronaut", 128).double()
    assert distortion_cues(photo).shape == (1, CUES) and distortion_cues(photo).dtype == torch.float64
    blurred = torch.cat([photo] + [kornia.filters.gaussian_blur2d(photo, (15, 15), (s, s)) for s in (0.8, 1.6, 3.2)])
    sharpness = distortion_cues(blurred)[:, TONE + 1]  # gradient kept by a blur of sigma 1 (log): nearer 0 when blurred
    assert (sharpness.diff() > 0).all() and sharpness[-1] > -0.2
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(photo.shape, generator=g, dtype=torch.float64)
    noisy = torch.cat([(photo + s * noise).clamp(0, 1) for s in (0.0, 0.02, 0.05, 0.1)])
    estimate = distortion_cues(noisy)[:, TONE + 11]  # Donoho's sigma (log, luma 0-255)
    luma_sigma = 0.1 * 255 * math.sqrt(0.299**2 + 0.587**2 + 0.114**2)  # independent noise in R, G and B
    assert (estimate.diff() > 0).all() and abs(float(estimate[-1].exp()) - luma_sigma) < 0.15 * luma_sigma
    washed = torch.cat([0.5 + (photo - 0.5) * c for c in (1.0, 0.6, 0.3)])
    tone = distortion_cues(washed)[:, :TONE]
    assert (tone[:, 1].diff() < 0).all() and (tone[:, 5].diff() < 0).all()  # deviation and range shrink
    # in logs a contrast cut by k is a shift of log k, whatever the photo's own contrast
    assert torch.allclose(tone[:, 6:].exp() - 1, tone[:, :6].clamp_min(0))
    assert torch.allclose(tone[1:, 7] - tone[0, 7], torch.tensor([0.6, 0.3], dtype=tone.dtype).log(), atol=0.05)
    darker = distortion_cues(torch.cat([photo ** g for g in (1.0, 1.5, 2.5)]))[:, :5]
    assert (darker[:, 0].diff() < 0).all() and (darker[:, 3].diff() < 0).all()  # mean and median fall


def test_cues_are_per_image_and_refuse_tiny_images():
    x = torch.rand(3, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    x[1] = 0.5  # a flat image: finite cues, no division by zero
    together = distortion_cues(x)
    assert torch.isfinite(together).all()
    assert torch.allclose(together, torch.cat([distortion_cues(x[i : i + 1]) for i in range(3)]))
    assert distortion_cues(x[:, :1]).shape == (3, CUES)  # grey
    with pytest.raises(ValueError, match="at least 16"):
        distortion_cues(torch.rand(1, 3, 15, 64))


def test_ridge_fit_recovers_a_linear_rule_and_shrinks_noise():
    g = torch.Generator().manual_seed(0)
    head = LinearQualityHead(rep_dim=4)
    width = LinearQualityHead.width(4)
    x = torch.randn(400, width, generator=g) * torch.linspace(0.1, 10, width)  # features of unlike scales
    true = torch.zeros(width)
    true[[0, 5, 20]] = torch.tensor([1.0, -2.0, 0.5])
    y = (x / torch.linspace(0.1, 10, width)) @ true + 0.3
    fit = head.fit(x, y)
    assert fit["r2"] > 0.999 and fit["r2_unseen"] > 0.999 and fit["alpha"] <= 0.01
    assert torch.allclose(head(x), y, atol=1e-2) and head.fitted
    noise = torch.randn(400, generator=g)
    fit = LinearQualityHead(rep_dim=4).fit(x, noise)
    assert fit["r2_unseen"] < 0.05 and fit["alpha"] >= 100  # nothing to learn: the penalty takes over
    with pytest.raises(ValueError, match="features must be"):
        head.fit(x[:, :5], y)


def test_leaving_sources_out_chooses_the_penalty_that_carries_to_new_sources():
    """Images of 8 sources whose label is a shared rule plus an offset that feature 0 reveals only within
    each source: leaving single images out rewards learning the offsets (a small penalty), leaving
    whole sources out shows they do not carry (a larger one, and a lower R^2 on unseen sources)."""
    g = torch.Generator().manual_seed(0)
    width = LinearQualityHead.width(4)
    sources = [f"photo{i % 8}" for i in range(480)]
    source = torch.tensor([i % 8 for i in range(480)])
    x = torch.randn(480, width, generator=g)
    offsets = torch.randn(8, generator=g)
    x[:, 0] = offsets[source] * 3 + 0.05 * torch.randn(480, generator=g)  # a source's fingerprint
    y = x[:, 1] + offsets[source].square() * 2 + 0.1 * torch.randn(480, generator=g)
    by_image = LinearQualityHead(rep_dim=4).fit(x, y)
    by_source = LinearQualityHead(rep_dim=4).fit(x, y, groups=sources, folds=4)
    assert by_source["unseen"] == "whole sources left out" and by_image["unseen"] == "one image left out"
    assert by_source["r2_unseen"] < by_image["r2_unseen"]
    with pytest.raises(ValueError, match="at least 2 sources"):
        LinearQualityHead(rep_dim=4).fit(x, y, groups=["one"] * 480)


def test_the_kernel_correction_learns_what_the_map_cannot_and_stays_out_where_it_adds_nothing():
    """A label that bends (a cue that counts whichever way it moves) is beyond a linear map: the
    correction fits it and predicts sources left out better; on a linear rule no correction is kept and
    the head is the map alone. Far from every training image the correction fades and the map scores."""
    g = torch.Generator().manual_seed(0)
    width = LinearQualityHead.width(4)
    sources = [f"photo{i % 10}" for i in range(600)]
    x = torch.randn(600, width, generator=g, dtype=torch.float64)
    y = x[:, 0] + x[:, 1].square() + 0.05 * torch.randn(600, generator=g, dtype=torch.float64)
    head = LinearQualityHead(rep_dim=4)
    fit = head.fit(x, y, groups=sources)
    assert fit["gamma"] > 0 and fit["kernel_alpha"] > 0 and head.dual.numel() == 600
    assert fit["r2_unseen"] > fit["r2_unseen_linear"] + 0.1 and fit["r2"] > fit["r2_linear"]
    linear = LinearQualityHead(rep_dim=4)
    linear.fit(x, y, groups=sources, kernel=False)
    assert linear.dual.numel() == 0
    fresh = torch.randn(200, width, generator=g, dtype=torch.float64)
    truth = fresh[:, 0] + fresh[:, 1].square()
    error = lambda h: float((h(fresh).double() - truth).square().mean())  # noqa: E731
    assert error(head) < 0.9 * error(linear)
    far = fresh * 50
    assert torch.allclose(head(far), linear(far), atol=1e-4)

    y_linear = x[:, 0] - 2 * x[:, 3] + 0.1 * torch.randn(600, generator=g, dtype=torch.float64)
    plain = LinearQualityHead(rep_dim=4)
    fit = plain.fit(x, y_linear, groups=sources)
    assert fit["gamma"] == 0 and plain.dual.numel() == 0 and fit["r2_unseen"] == fit["r2_unseen_linear"]
    by_image = LinearQualityHead(rep_dim=4).fit(x, y, kernel=True)  # one image left out: the closed form
    assert by_image["gamma"] > 0 and by_image["r2_unseen"] > by_image["r2_unseen_linear"]


def test_the_kernel_correction_is_fitted_on_a_bounded_number_of_images(monkeypatch):
    import dri.models.head as head_module

    monkeypatch.setattr(head_module, "KERNEL_IMAGES", 200)
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(600, LinearQualityHead.width(4), dtype=torch.float64)  # constant features: no distance
    x[:, :3] = torch.randn(600, 3, generator=g, dtype=torch.float64)
    y = x[:, 0] + x[:, 1].square()
    head = LinearQualityHead(rep_dim=4)
    fit = head.fit(x, y, groups=[f"photo{i % 10}" for i in range(600)])
    assert fit["kernel_images"] == 200 and head.support.shape == (200, x.shape[1]) and fit["images"] == 600
    z = ((x - head.mean.double()) / head.scale.double()).float()
    assert torch.allclose(head.support, z[torch.linspace(0, 599, 200).round().long()], atol=1e-5)


def test_a_head_with_its_correction_survives_export_and_older_weights_load_without_one(tmp_path):
    torch.manual_seed(0)
    model = dri.create_model("dri_iqa_tiny", score_head="linear").eval()
    x = torch.rand(40, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        f_q, f_d = model.represent(x)
        features = model.head.features(f_q, f_d, x)
        target = (features[:, -5] > features[:, -5].median()).float() * features[:, -3].sigmoid()
        model.head.fit(features, target, groups=[f"s{i % 8}" for i in range(40)], kernel_alphas=(1e-3,))
        model.head.kernel_alpha.fill_(1e-3)  # kept whether or not it predicted better: this test is about the file
        scores = model.head(features)
    path = tmp_path / "w.safetensors"
    checkpoint.export_safetensors(model, path, "dri_iqa_tiny", {"score_head": "linear"})
    state, _ = checkpoint.read_weights(path)
    assert state["head.support"].dtype == torch.float32 and state["head.support"].shape == model.head.support.shape
    loaded = dri.create_model("dri_iqa_tiny", checkpoint=path).eval()
    assert torch.equal(loaded.head.support, model.head.support) and torch.equal(loaded.head.dual, model.head.dual)
    assert torch.allclose(loaded.head(features), scores, atol=1e-5)
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    older = {k: v for k, v in load_file(str(path)).items() if k not in ("head.support", "head.dual", "head.gamma",
                                                                          "head.kernel_alpha")}
    save_file(older, str(tmp_path / "old.safetensors"), metadata=metadata)
    old = dri.create_model("dri_iqa_tiny", checkpoint=tmp_path / "old.safetensors").eval()
    assert old.has_head and old.head.dual.numel() == 0
    z = (features - model.head.mean) / model.head.scale
    assert torch.allclose(old.head(features), z @ model.head.weight + model.head.bias, atol=1e-5)


def test_a_fitted_head_gives_the_score_and_keeps_full_precision_in_export(tmp_path):
    torch.manual_seed(0)
    model = dri.create_model("dri_iqa_tiny", score_head="linear").eval()
    x = torch.rand(12, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x, return_all=True)
        assert not model.has_head and torch.equal(before["score"], before["predictor_score"])
        f_q, f_d = model.represent(x)
        features = model.head.features(f_q, f_d, x)
        model.head.fit(features, torch.linspace(0.2, 0.9, 12))
        after = model(x, return_all=True)
    assert model.has_head and torch.equal(after["predictor_score"], before["predictor_score"])
    assert torch.allclose(after["score"], model.head(features))
    path = tmp_path / "w.safetensors"
    checkpoint.export_safetensors(model, path, "dri_iqa_tiny", {"score_head": "linear"})
    state, _ = checkpoint.read_weights(path)
    assert all(state[k].dtype == torch.float32 for k in model.full_precision()) and model.full_precision()
    assert state["prototype_q"].dtype == torch.float16
    loaded = dri.create_model("dri_iqa_tiny", checkpoint=path).eval()
    assert loaded.has_head and all(torch.equal(v, state[k]) for k, v in loaded.head.state_dict(prefix="head.").items())
    with torch.no_grad():  # half-precision network, full-precision head: the scores agree to fp16's digits
        assert (loaded(x) - after["score"]).abs().max() < 0.02
    # a model saved before its head existed loads into one with an unfitted head
    plain = dri.create_model("dri_iqa_tiny")
    checkpoint.export_safetensors(plain, tmp_path / "p.safetensors", "dri_iqa_tiny")
    widened = dri.create_model("dri_iqa_tiny", checkpoint=tmp_path / "p.safetensors", score_head="linear")
    assert widened.head is not None and not widened.has_head
    with torch.no_grad():
        assert math.isfinite(float(widened(x[:1])))


def test_the_head_reads_each_images_tone_over_its_crops_when_fitted_and_when_scoring():
    """Tone is the whole image's: over the grid's crops of a 384 px photo it is the photo's own; the head
    stage's features and prediction's scores use the same tone, whatever the chunk of crops."""
    from datasets.crops import grid_crops
    from dri.inference import score_crops
    from dri.stages import head_features

    photos = (torch.cat([_photo(name, 384) for name in ("astronaut", "coffee", "rocket")]) * 255).round().to(torch.uint8)
    crops = torch.stack([grid_crops(p, 128) for p in photos])  # (3, 9, 3, 128, 128): they tile each photo
    whole = distortion_cues(photos.double() / 255)[:, :TONE]
    assert torch.allclose(tone_of_images(crops.double() / 255), whole)
    own = distortion_cues(crops[:, 4].double() / 255)  # the centre crop alone has a tone of its own
    assert not torch.allclose(own[:, :TONE], whole)
    assert torch.equal(distortion_cues(crops[:, 4].double() / 255, whole)[:, :TONE], whole.to(own))
    with pytest.raises(ValueError, match="image_tone must be"):
        distortion_cues(crops[:, 4].double() / 255, whole[:2])

    torch.manual_seed(0)
    model = dri.create_model("dri_iqa_tiny", score_head="linear").eval()
    labels = [{"quality": q, "content": f"photo{i}@0"} for i, q in enumerate((0.9, 0.5, 0.7))]
    with torch.no_grad():
        features, targets, sources = head_features(model, [{"images": crops, "labels": labels}], torch.device("cpu"), 3)
        model.head.fit(torch.cat([features] * 4) + torch.randn(12, features.shape[1]) * 1e-3, targets.repeat(4))
        expected = model.head(features)
        assert sources == ["photo0", "photo1", "photo2"]
        for chunk in (None, 2, 5):  # chunks that split an image's crops change nothing
            assert torch.allclose(score_crops(model, crops, "cpu", chunk), expected, atol=1e-5)


def test_a_head_fitted_on_other_inputs_is_left_out_with_a_warning(tmp_path):
    """A head fitted by an earlier version (fewer inputs) cannot score this version's features: the model
    loads, says so and how to refit, and scores with the predictor."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model = dri.create_model("dri_iqa_tiny", score_head="linear").eval()
    path = tmp_path / "old.safetensors"
    checkpoint.export_safetensors(model, path, "dri_iqa_tiny", {"score_head": "linear"})
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    narrow = model.head.weight.numel() - CUES
    for name in ("mean", "scale", "weight"):
        state[f"head.{name}"] = torch.ones(narrow)
    save_file(state, str(path), metadata=metadata)
    with pytest.warns(UserWarning, match=r"fitted on \d+ inputs.*--stage head --head.init"):
        loaded = dri.create_model("dri_iqa_tiny", checkpoint=path)
    assert loaded.head is not None and not loaded.has_head
