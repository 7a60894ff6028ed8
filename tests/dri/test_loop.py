"""The generic training loop on a small real objective: what it keeps when the loss diverges."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dri import checkpoint
from dri.loop import Diverged, Schedule, run_loop
from dri.runlog import RunLog
from dri.runtime import Runtime


class _Regression(nn.Module):
    """A linear fit: the loss of a batch is its mean squared error."""

    def __init__(self) -> None:
        super().__init__()
        self.fit = nn.Linear(4, 1)

    def forward(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict]:
        loss = (self.fit(batch["x"]).squeeze(-1) - batch["y"]).square().mean()
        return loss, {}


def _batches(poisoned: int):
    generator = torch.Generator().manual_seed(0)
    batches = []
    for index in range(20):
        x = torch.randn(8, 4, generator=generator)
        if index == poisoned:
            x[0, 0] = float("nan")  # a bad input: NaN in the loss, then in every weight after the step
        batches.append({"x": x, "y": x.nan_to_num().sum(-1), "keys": [f"{index}-{i}" for i in range(8)]})
    return lambda epoch: batches


def test_a_diverged_loss_stops_the_run_and_keeps_the_checkpoint_before_it(tmp_path):
    torch.manual_seed(0)
    objective = _Regression()
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    folder = tmp_path / "stage"
    folder.mkdir()
    with pytest.raises(Diverged, match=r"NaN or infinite by step 8.*last\.pt \(step 5\)"):
        run_loop(folder, objective, optimizer, scheduler, _batches(poisoned=6), Schedule(12, 2, 5),
                 Runtime(torch.device("cpu")), resume=False, log=RunLog(folder), unit="item", config={})
    assert not all(torch.isfinite(p).all() for p in objective.parameters())  # the weights did diverge
    kept = checkpoint.load(folder / "last.pt")
    assert kept["loop"]["step"] == 5
    assert all(torch.isfinite(v).all() for v in kept["objective"].values())


def test_a_finite_run_is_not_stopped(tmp_path):
    objective = _Regression()
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    state = run_loop(tmp_path, objective, optimizer, scheduler, _batches(poisoned=-1), Schedule(12, 2, 5),
                     Runtime(torch.device("cpu")), resume=False, log=RunLog(tmp_path), unit="item", config={})
    assert state.step == 12 and checkpoint.load(tmp_path / "last.pt")["loop"]["step"] == 12
