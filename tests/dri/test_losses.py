"""Losses against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from dri.losses import EmbeddingQueue, info_nce, mos_loss, rank_loss, restoration_l1, rs_loss


def test_info_nce_equals_the_hand_computed_value():
    # three unit vectors with known dot products: z0.z1 = 0.8, z0.z2 = 0.6, z1.z2 = 0.96
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]], dtype=torch.float64)
    positives = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    t = 0.5
    # anchor 0: -log(e^{0.8/t} / (e^{0.8/t} + e^{0.6/t})); anchor 1: -log(e^{0.8/t} / (e^{0.8/t} + e^{0.96/t}))
    a0 = -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + math.exp(0.6 / t)))
    a1 = -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + math.exp(0.96 / t)))
    assert float(info_nce(z, positives, t)) == pytest.approx((a0 + a1) / 2)  # anchor 2 has no positive


def test_info_nce_multi_positive_and_queue():
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]], dtype=torch.float64)
    positives = torch.tensor([[0, 1, 1], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
    t = 1.0
    denominator = math.exp(0.8) + math.exp(0.6)
    expected = -(math.log(math.exp(0.8) / denominator) + math.log(math.exp(0.6) / denominator)) / 2
    assert float(info_nce(z, positives, t)) == pytest.approx(expected)
    queue = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    denominator += math.exp(0.0)
    expected = -(math.log(math.exp(0.8) / denominator) + math.log(math.exp(0.6) / denominator)) / 2
    assert float(info_nce(z, positives, t, queue=queue)) == pytest.approx(expected)
    assert float(info_nce(z, torch.zeros(3, 3, dtype=torch.bool))) == 0.0


def test_info_nce_prefers_aligned_positives():
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=1)
    z = torch.cat([base, base + 0.01 * torch.randn(4, 16, generator=g)])
    z = torch.nn.functional.normalize(z, dim=1)
    positives = torch.zeros(8, 8, dtype=torch.bool)
    for i in range(4):
        positives[i, i + 4] = positives[i + 4, i] = True
    shuffled = positives[torch.randperm(8, generator=g)]
    assert info_nce(z, positives) < info_nce(z, shuffled)
    with pytest.raises(ValueError, match="positives must be"):
        info_nce(z, positives[:4])


def test_queue_keeps_the_newest_and_survives_a_state_dict():
    q = EmbeddingQueue(2, size=3)
    q.push(torch.ones(2, 2))
    q.push(torch.zeros(2, 2))
    assert q.items.shape == (3, 2) and q.items[:2].sum() == 0
    other = EmbeddingQueue(2, size=3)
    other.load_state_dict(q.state_dict())
    assert torch.equal(other.items, q.items)


def test_rs_loss():
    f = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert float(rs_loss(f, f, f, f)) == pytest.approx(0.0, abs=1e-6)  # per-sample targets (references)
    proto = torch.tensor([1.0, 0.0])
    # per sample cos = 1 and 0, so each half contributes mean(1 - cos) = 0.5
    assert float(rs_loss(f, f, proto, proto)) == pytest.approx(0.5 + 0.5)
    x_hat, ref = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.25)
    assert float(restoration_l1(x_hat, ref)) == pytest.approx(0.25)  # added by the objective where a reference exists


def test_mos_and_rank_losses():
    target = torch.tensor([0.1, 0.5, 0.9])
    assert float(mos_loss(target, target)) == 0.0
    ordered, reversed_ = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([2.0, 1.0, 0.0])
    assert rank_loss(ordered, target) < rank_loss(reversed_, target)
    assert float(mos_loss(ordered, target, rank_weight=1.0)) > float(mos_loss(ordered, target))
    assert float(rank_loss(torch.rand(3), torch.ones(3))) == 0.0  # no ordered pair


def test_rank_loss_restricted_to_pairs():
    target = torch.tensor([0.9, 0.1, 0.8, 0.2])
    pred = torch.tensor([0.9, 0.1, 0.2, 0.8], requires_grad=True)  # items 2 and 3 are swapped
    content = torch.tensor([0, 0, 1, 1])
    same = content[:, None] == content[None, :]
    only_first = same & (content[:, None] == 0)
    assert float(rank_loss(pred.detach(), target, only_first)) < float(rank_loss(pred.detach(), target, same))
    rank_loss(pred, target, only_first).backward()
    assert pred.grad[2:].abs().sum() == 0 and pred.grad[:2].abs().sum() > 0
