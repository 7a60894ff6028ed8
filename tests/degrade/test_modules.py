"""RandomDegradation: gating, replay and resumable state."""
from __future__ import annotations

import torch

from degrade import RandomDegradation, apply_plans
from degrade.sampling import Preset
from tests.conftest import photo


def batch(n: int = 6) -> torch.Tensor:
    return torch.stack([photo("coffee", 32)] * n)


def test_applies_and_keeps_the_plans():
    aug = RandomDegradation("arniqa", seed=0)
    x = batch()
    y = aug(x)
    assert y.shape == x.shape and len(aug.last_plans) == 6
    assert torch.equal(apply_plans(x, aug.last_plans), y)
    assert torch.equal(aug.replay(x), y)


def test_replay_on_other_images_uses_the_same_recipes():
    aug = RandomDegradation(Preset.of("white_noise"), seed=1)
    grey = torch.full((2, 3, 16, 16), 0.5)
    noise_a = aug(grey) - grey
    noise_b = aug.replay(grey * 0.9) - grey * 0.9
    torch.testing.assert_close(noise_a, noise_b)


def test_probability_gates_each_image():
    x = batch(8)
    assert torch.equal(RandomDegradation("kadid", p=0.0)(x), x)
    aug = RandomDegradation("kadid", p=0.5, seed=3)
    aug(batch(200)[:, :, :8, :8])
    degraded = sum(len(p) > 0 for p in aug.last_plans)
    assert 70 < degraded < 130


def test_each_call_draws_new_plans_and_state_dict_resumes_the_sequence():
    aug = RandomDegradation("arniqa", seed=5)
    first = aug.sample(4)
    assert aug.sample(4) != first
    state = aug.state_dict()
    expected = aug.sample(4)
    resumed = RandomDegradation("arniqa", seed=99)
    resumed.load_state_dict(state)
    assert resumed.sample(4) == expected


def test_single_image_input():
    aug = RandomDegradation("kadid", seed=0)
    x = photo("rocket", 32)
    assert aug(x).shape == x.shape
