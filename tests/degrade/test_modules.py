"""RandomDegradation: gating, replay and resumable state."""
from __future__ import annotations

import pytest
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


class _Copies(torch.utils.data.Dataset):
    """The same image again and again: every difference between outputs is the augmentation's."""

    def __init__(self, aug: RandomDegradation, n: int = 8) -> None:
        self.aug, self.n = aug, n
        self.image = photo("coffee", 24)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.aug(self.image)


def _epochs(aug: RandomDegradation, start_method: str, epochs: int = 2) -> list[list[bytes]]:
    torch.manual_seed(1234)
    loader = torch.utils.data.DataLoader(_Copies(aug), batch_size=None, num_workers=2,
                                         multiprocessing_context=start_method)
    return [[(x * 255).round().to(torch.uint8).numpy().tobytes() for x in loader] for _ in range(epochs)]


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("seed", [None, 7])
def test_fresh_draws_in_every_worker_and_epoch(start_method, seed):
    aug = RandomDegradation(Preset.of("white_noise"), seed=seed)
    first, second = _epochs(aug, start_method)
    assert len(set(first)) == 8  # both workers, every item: distinct
    assert set(first).isdisjoint(second)  # and epoch 2 does not repeat epoch 1
    again = _epochs(aug, start_method, epochs=1)[0]
    assert again == first  # reproducible from torch.manual_seed in the main process


def test_an_explicit_seed_gives_its_own_stream_and_pickles():
    import pickle

    a, b = RandomDegradation("arniqa", seed=3), RandomDegradation("arniqa", seed=3)
    assert a.sample(4) == b.sample(4)
    assert RandomDegradation("arniqa", seed=4).sample(4) != RandomDegradation("arniqa", seed=3).sample(4)
    a.sample(2)
    clone = pickle.loads(pickle.dumps(a))  # same process: the stream continues where it was
    assert clone.sample(3) == a.sample(3)
    torch.manual_seed(0)
    x = RandomDegradation("arniqa").sample(3)
    torch.manual_seed(0)
    assert RandomDegradation("arniqa").sample(3) == x  # seed=None follows torch.manual_seed
