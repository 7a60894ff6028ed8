"""What the engine takes and gives back: uint8 tensors, PIL images, single images and batches; gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import degrade
from degrade.plan import Plan
from degrade.sampling import make_step
from tests.conftest import photo


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def test_uint8_tensors_come_back_as_uint8_rounded_like_a_saved_image():
    x = _u8(photo("coffee", 32))
    y = degrade.apply(x, "gaussian_blur", 3)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    expected = degrade.apply(x.float() / 255, "gaussian_blur", 3)
    assert torch.equal(y, (expected * 255).round().to(torch.uint8))
    batch = torch.stack([x, x.flip(-1)])
    plans = degrade.sample_plans(2, "arniqa", seed=3)
    out = degrade.apply_plans(batch, plans)
    assert out.dtype == torch.uint8 and out.shape == batch.shape
    assert torch.equal(out, _u8(degrade.apply_plans(batch.float() / 255, plans)))


def test_a_uint8_batch_converted_part_by_part_gives_the_bytes_of_the_float_route():
    """On the CPU the parts of a uint8 batch convert their own samples; consecutive and scattered parts
    (a whole-batch palette step puts its samples apart) both give what converting the whole batch gives."""
    x = torch.stack([_u8(photo(name, 40)) for name in ("coffee", "rocket", "chelsea", "astronaut")] * 2)
    plans = degrade.sample_plans(8, "arniqa", seed=11)
    g = torch.Generator().manual_seed(5)
    plans[2] = Plan((make_step("color_quantization", 3, g), make_step("jpeg", 2, g)))
    plans[5] = Plan((make_step("color_quantization", 5, g),))
    out = degrade.apply_plans(x, plans)
    with degrade.torch_path():  # the torch route converts the whole batch up front
        whole = degrade.apply_plans(x, plans)
    assert out.dtype == torch.uint8
    assert torch.equal(out, _u8(degrade.apply_plans(x.float() / 255, plans)))
    assert (out.int() - whole.int()).abs().max() <= 1  # torch ops vs fast paths: float rounding at most


def test_pil_images_come_back_as_pil():
    array = _u8(photo("rocket", 40)).permute(1, 2, 0).numpy()
    image = Image.fromarray(array, "RGB")
    out = degrade.apply(image, "jpeg", 4)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == image.size
    expected = degrade.apply(torch.from_numpy(array).permute(2, 0, 1), "jpeg", 4)
    assert np.array_equal(np.asarray(out), expected.permute(1, 2, 0).numpy())
    aug = degrade.RandomDegradation("arniqa", seed=0)
    assert isinstance(aug(image), Image.Image)
    assert isinstance(aug.replay(image), Image.Image)


def test_unusable_inputs_get_a_clear_error():
    with pytest.raises(ValueError, match="convert\\('RGB'\\)"):
        degrade.apply(Image.new("L", (8, 8)), "jpeg", 1)
    with pytest.raises(ValueError, match="RGBA: drop the alpha"):
        degrade.apply(torch.zeros(1, 4, 8, 8, dtype=torch.uint8), "jpeg", 1)
    with pytest.raises(TypeError, match="degrade.io.to_tensor"):
        degrade.apply(np.zeros((8, 8, 3), np.uint8), "jpeg", 1)
    with pytest.raises(TypeError, match="uint8 \\(0..255\\) or floating point"):
        degrade.apply(torch.zeros(3, 8, 8, dtype=torch.int32), "jpeg", 1)
    with pytest.raises(ValueError, match="pass a uint8 tensor"):
        degrade.apply(torch.full((3, 8, 8), 200.0), "jpeg", 1)


def _mixed_batch(requires_grad: bool = True) -> tuple[torch.Tensor, list[Plan]]:
    g = torch.Generator().manual_seed(0)
    plans = [Plan((make_step("gaussian_blur", 3, g),)), Plan((make_step("jpeg", 3, g),))]
    x = torch.stack([photo("coffee", 32), photo("rocket", 32)]).requires_grad_(requires_grad)
    return x, plans


def test_a_non_differentiable_step_refuses_inputs_that_need_gradients():
    x, plans = _mixed_batch()
    with pytest.raises(ValueError, match="jpeg .* is not differentiable.*straight_through.*detach"):
        degrade.apply_plans(x, plans)
    with torch.no_grad():  # no gradients wanted: no question asked
        degrade.apply_plans(x, plans)
    degrade.apply_plans(x.detach(), plans)


def test_straight_through_gives_the_codec_an_identity_gradient():
    x, plans = _mixed_batch()
    out = degrade.apply_plans(x, plans, gradients="straight_through")
    # the same values (differentiable ops run their torch implementation: equal to float rounding)
    torch.testing.assert_close(out.detach(), degrade.apply_plans(x.detach(), plans), atol=1e-5, rtol=0)
    out.sum().backward()
    assert torch.allclose(x.grad[1], torch.ones_like(x.grad[1]))  # jpeg: identity
    assert x.grad[0].abs().sum() > 0 and not torch.allclose(x.grad[0], torch.ones_like(x.grad[0]))  # blur: its own


def test_detach_gives_those_samples_no_gradient_and_the_others_theirs():
    x, plans = _mixed_batch()
    out = degrade.apply_plans(x, plans, gradients="detach")
    out.sum().backward()
    assert torch.count_nonzero(x.grad[1]) == 0 and x.grad[0].abs().sum() > 0


def test_the_differentiable_jpeg_backend_needs_no_policy():
    x = photo("coffee", 32).unsqueeze(0).requires_grad_()
    out = degrade.apply(x, "jpeg", 3, backend="differentiable")
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="gradients must be one of"):
        degrade.apply(x, "jpeg", 3, gradients="maybe")
