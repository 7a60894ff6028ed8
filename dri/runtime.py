"""Where training runs: the device and, under torchrun, the process group and its collectives."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def collective_device(self) -> torch.device:
        """Where tensors for collectives live: nccl needs them on the GPU, gloo on the CPU."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def setup_runtime(device: str = "auto") -> Runtime:
    """Device and, under torchrun (``WORLD_SIZE`` > 1), the process group.

    On the CPU the cores are shared out once, deliberately: each local process gets
    ``cpu_count / LOCAL_WORLD_SIZE`` torch threads.
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but no GPU is available")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    local = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local)
        target = torch.device("cuda", local)
    else:
        target = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Runtime(target, rank, world)


def barrier(rt: Runtime) -> None:
    if rt.distributed:
        dist.barrier()


def any_rank(flag: bool, rt: Runtime) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop together)."""
    if not rt.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=rt.collective_device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def gather_positions(position: list[int], rt: Runtime) -> list[list[int]]:
    """Every rank's ``position`` (its place in its own data), on every rank."""
    if not rt.distributed:
        return [position]
    mine = torch.tensor(position, dtype=torch.long, device=rt.collective_device)
    gathered = [torch.zeros_like(mine) for _ in range(rt.world)]
    dist.all_gather(gathered, mine)
    return [g.tolist() for g in gathered]


def parameters_agree(model: nn.Module, rt: Runtime) -> bool:
    """Whether every rank holds the same weights (a DDP desynchronisation check)."""
    if not rt.distributed:
        return True
    total = torch.tensor([sum(float(p.double().sum()) for p in model.parameters())], dtype=torch.float64,
                         device=rt.collective_device)
    gathered = [torch.zeros_like(total) for _ in range(rt.world)]
    dist.all_gather(gathered, total)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
