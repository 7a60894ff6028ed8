"""What each stage minimises, as modules: ``objective(batch, device) -> (loss, parts)``.

``parts`` holds the loss terms as detached tensors; nothing here synchronises with the host, so
the training loop decides when to read them (every ``log_every`` steps).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from degrade import list_distortions
from degrade.plan import Plan

from .losses import EmbeddingQueue, info_nce, mos_loss, rank_loss, restoration_l1, rs_loss
from .models import DRIIQA

Parts = dict[str, torch.Tensor]


def to_unit(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images from a loader as float in [0, 1] on ``device``."""
    return images.to(device, non_blocking=True).float().div_(255.0)


def degradation_targets(plans: Sequence[Plan], names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """For each plan: which of ``names`` it applies (multi-hot, (N, T)) and at what level / 5 ((N, T), 0 if absent)."""
    index = {name: i for i, name in enumerate(names)}
    present = torch.zeros(len(plans), len(names))
    levels = torch.zeros(len(plans), len(names))
    for row, plan in enumerate(plans):
        for step in plan.steps:
            present[row, index[step.name]] = 1.0
            levels[row, index[step.name]] = float(step.level) / 5.0
    return present, levels


class DegradationHead(nn.Module):
    """Reads the distortions of a plan off the degradation representation: which types, at what levels.

    An auxiliary stage-1 objective ([design], ``stage1.degradation_weight``): the plans recorded in
    the shards label every patch exactly, whatever its content, so the degradation half learns
    detectors of each distortion and its severity.
    """

    def __init__(self, dim: int, names: Sequence[str]) -> None:
        super().__init__()
        self.names = list(names)
        self.linear = nn.Linear(dim, 2 * len(self.names))

    def forward(self, f_d: torch.Tensor, plans: Sequence[Plan]) -> torch.Tensor:
        present, levels = (t.to(f_d.device) for t in degradation_targets(plans, self.names))
        logits, predicted = self.linear(f_d).chunk(2, dim=-1)
        loss = F.binary_cross_entropy_with_logits(logits, present)
        if bool(present.sum() > 0):
            loss = loss + ((predicted - levels) ** 2 * present).sum() / present.sum()
        return loss


class ContrastiveObjective(nn.Module):
    """Stage 1: multi-positive InfoNCE on both halves (+ optional pixel restoration pre-training, and the
    optional degradation read-out of :class:`DegradationHead`)."""

    def __init__(self, model: DRIIQA, temperature: float, queue: int, restoration_weight: float,
                 degradation_weight: float = 0.0) -> None:
        super().__init__()
        self.model, self.temperature, self.restoration_weight = model, temperature, restoration_weight
        proj = model.config.proj_dim
        self.queue_q = EmbeddingQueue(proj, queue)
        self.queue_d = EmbeddingQueue(proj, queue)
        self.degradation_weight = degradation_weight
        self.degradation = DegradationHead(model.dre.dim, list_distortions()) if degradation_weight else None

    def forward(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, Parts]:
        x = to_unit(batch["images"].flatten(0, 2), device)
        f_q, f_d = self.model.represent(x)
        z_q, z_d = self.model.dre.project(f_q, f_d)
        q_mask, d_mask = batch["quality_mask"].to(device), batch["degradation_mask"].to(device)
        loss_q = info_nce(z_q, q_mask, self.temperature, self.queue_q.items if self.queue_q.size else None)
        loss_d = info_nce(z_d, d_mask, self.temperature, self.queue_d.items if self.queue_d.size else None)
        loss = loss_q + loss_d
        parts = {"loss_q": loss_q.detach(), "loss_d": loss_d.detach()}
        if self.restoration_weight and self.model.restorer is not None:
            refs = to_unit(batch["refs"].flatten(0, 2), device)
            x_hat, _ = self.model.restore(x, f_d)
            pixel = restoration_l1(x_hat, refs)
            loss = loss + self.restoration_weight * pixel
            parts["loss_pixel"] = pixel.detach()
        if self.degradation is not None:
            read_out = self.degradation(f_d, batch["plans"])
            loss = loss + self.degradation_weight * read_out
            parts["loss_degradation"] = read_out.detach()
        if self.queue_q.size:
            self.queue_q.push(z_q)
            self.queue_d.push(z_d)
        return loss, parts


class ScoreObjective(nn.Module):
    """Stage 2: MOS loss (+ rank terms) and the RS loss on the restored image."""

    def __init__(self, model: DRIIQA, rs_weight: float, rank_weight: float, content_rank_weight: float = 0.0) -> None:
        super().__init__()
        self.model, self.rs_weight, self.rank_weight = model, rs_weight, rank_weight
        self.content_rank_weight = content_rank_weight

    def forward(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, Parts]:
        x = to_unit(batch["images"], device)
        target = batch["quality"].to(device).float()
        out = self.model(x, return_all=True)
        loss = mos_loss(out["predictor_score"], target, self.rank_weight)
        parts = {"loss_mos": loss.detach()}
        if self.content_rank_weight:  # order images of one content (reference) by their labels
            contents = [label.get("content") for label in batch["labels"]]
            same = torch.tensor([[a is not None and a == b for b in contents] for a in contents], device=device)
            within = rank_loss(out["predictor_score"], target, same)
            loss = loss + self.content_rank_weight * within
            parts["loss_content_rank"] = within.detach()
        if self.rs_weight and out["x_hat"] is not None:
            rs = self._rs(batch, out, device)
            loss = loss + self.rs_weight * rs
            parts["loss_rs"] = rs.detach()
        return loss, parts

    def _rs(self, batch: dict, out: dict, device: torch.device) -> torch.Tensor:
        """RS loss: representations of x_hat against the pristine prototypes, or against the
        reference's own representations (plus pixel L1) where a reference exists."""
        f_q_hat, f_d_hat = self.model.represent(out["x_hat"])
        target_q = self.model.prototype_q.expand_as(f_q_hat)
        target_d = self.model.prototype_d.expand_as(f_d_hat)
        has_ref = batch["has_ref"].to(device)
        if not bool(batch["has_ref"].any()):  # the flag lives on the host: no device sync
            return rs_loss(f_q_hat, f_d_hat, target_q, target_d)
        refs = to_unit(batch["refs"], device)
        with torch.no_grad():
            ref_q, ref_d = self.model.represent(refs)
        keep = has_ref[:, None]
        target_q, target_d = torch.where(keep, ref_q, target_q), torch.where(keep, ref_d, target_d)
        return rs_loss(f_q_hat, f_d_hat, target_q, target_d) + restoration_l1(out["x_hat"][has_ref], refs[has_ref])
