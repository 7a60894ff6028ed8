"""Losses: multi-positive InfoNCE with caller-supplied masks, restoration L1, RS loss, MOS loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def info_nce(z: torch.Tensor, positives: torch.Tensor, temperature: float = 0.1,
             queue: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-positive InfoNCE (the supervised-contrastive form).

    For anchor i with positives P(i): ``-1/|P(i)| * sum_p log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t))``,
    averaged over anchors that have at least one positive. Rows of ``queue`` (earlier embeddings)
    join every denominator as negatives.

    Args:
        z: (N, D) L2-normalised embeddings.
        positives: (N, N) bool, ``[i, j]`` true when j is a positive of anchor i (diagonal ignored).
        temperature: softmax temperature.
        queue: optional (K, D) L2-normalised negatives.
    """
    n = z.shape[0]
    if positives.shape != (n, n):
        raise ValueError(f"positives must be ({n}, {n}), got {tuple(positives.shape)}")
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(eye, float("-inf"))
    if queue is not None and queue.numel():
        logits = torch.cat([logits, z @ queue.T / temperature], dim=1)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (positives & ~eye).float()
    if queue is not None and queue.numel():
        pos = torch.cat([pos, pos.new_zeros(n, queue.shape[0])], dim=1)
    counts = pos.sum(1)
    has = counts > 0
    if not has.any():
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(pos == 0, 0.0) * pos).sum(1)[has] / counts[has]
    return per_anchor.mean()


class EmbeddingQueue(nn.Module):
    """A FIFO of past embeddings used as extra negatives (MoCo-style); a buffer, so it is checkpointed."""

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.register_buffer("items", torch.zeros(0, dim))
        self.size = size

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        self.items = torch.cat([z.detach(), self.items])[: self.size]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001 - torch's signature
        key = prefix + "items"
        if key in state_dict:  # the buffer grows as it fills; take the saved length
            self.items = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def restoration_l1(x_hat: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (x_hat - reference).abs().mean()


def rs_loss(f_q_hat: torch.Tensor, f_d_hat: torch.Tensor, target_q: torch.Tensor, target_d: torch.Tensor
            ) -> torch.Tensor:
    """Representation-based Semantic loss on the restored image.

    ``(1 - cos(f_q(x_hat), target_q)) + (1 - cos(f_d(x_hat), target_d))``: the targets are the
    pristine prototypes (d,), or the representations of each image's pristine reference (B, d).
    Where a reference image exists, the caller adds ``|x_hat - r|_1`` (:func:`restoration_l1`).
    """
    loss = (1 - F.cosine_similarity(f_q_hat, target_q.expand_as(f_q_hat), dim=-1)).mean()
    return loss + (1 - F.cosine_similarity(f_d_hat, target_d.expand_as(f_d_hat), dim=-1)).mean()


def rank_loss(pred: torch.Tensor, target: torch.Tensor, pairs: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise logistic ranking loss: penalises every pair ordered against the targets.

    ``pairs`` ((B, B) bool) restricts the loss to some pairs, e.g. images of the same content.
    """
    sign = torch.sign(target[:, None] - target[None, :])
    diff = pred[:, None] - pred[None, :]
    valid = sign != 0
    if pairs is not None:
        valid = valid & pairs
    if not valid.any():
        return pred.sum() * 0.0
    return F.softplus(-sign[valid] * diff[valid]).mean()


def mos_loss(pred: torch.Tensor, target: torch.Tensor, rank_weight: float = 0.0) -> torch.Tensor:
    """MSE to the normalised MOS, plus ``rank_weight`` x the pairwise ranking loss."""
    loss = F.mse_loss(pred, target)
    if rank_weight:
        loss = loss + rank_weight * rank_loss(pred, target)
    return loss
