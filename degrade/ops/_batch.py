"""Batch plumbing shared by the functional ops: per-sample parameters and sub-batch grouping."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

Number = int | float
ParamLike = Number | Sequence[Number] | torch.Tensor


def batch_param(value: ParamLike, x: torch.Tensor, name: str) -> torch.Tensor:
    """Broadcast a scalar or per-sample parameter to a (B,) tensor of ``x``'s dtype and device."""
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"{name} must be a number or have shape ({x.shape[0]},), got {tuple(t.shape)}")
    return t


def batch_values(value: ParamLike, x: torch.Tensor, name: str) -> list[float]:
    """Per-sample parameter values as Python floats (for kernel construction and codecs)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu", torch.float64)
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.ndim == 0:
        return [float(t)] * x.shape[0]
    if t.shape != (x.shape[0],):
        raise ValueError(f"{name} must be a number or have shape ({x.shape[0]},), got {tuple(t.shape)}")
    return t.tolist()


def check_generators(generators: Sequence[torch.Generator], x: torch.Tensor) -> Sequence[torch.Generator]:
    """Ops that draw noise take one generator per sample, on the device of ``x``."""
    if len(generators) != x.shape[0]:
        raise ValueError(f"need one generator per sample: got {len(generators)} for a batch of {x.shape[0]}")
    for g in generators:
        if g.device.type != x.device.type:
            raise ValueError(f"generator on {g.device} cannot draw for a tensor on {x.device}")
    return generators


def per_sample_draw(
    generators: Sequence[torch.Generator], draw: Callable[[torch.Generator], torch.Tensor]
) -> torch.Tensor:
    """Stack one draw per sample, each from that sample's own generator.

    Each sample's draw depends only on its own seed, so results do not change with the
    composition of the batch.
    """
    return torch.stack([draw(g) for g in generators])


def map_groups(
    x: torch.Tensor,
    keys: Sequence[Hashable | None],
    fn: Callable[[torch.Tensor, list[int], Hashable], torch.Tensor],
) -> torch.Tensor:
    """Run ``fn`` once per group of samples sharing a key; samples keyed ``None`` pass through.

    ``fn(sub_batch, indices, key)`` must return a tensor shaped like ``sub_batch``. This is how
    heterogeneous per-sample recipes stay batched: one call per distinct key, not per sample.
    """
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(i)
    if not groups:
        return x
    if len(groups) == 1:
        (key, idx), = groups.items()
        if len(idx) == x.shape[0]:
            return fn(x, idx, key)
    covered = sum(len(idx) for idx in groups.values()) == x.shape[0]
    out = torch.empty_like(x) if covered else x.clone()
    for key, idx in groups.items():
        start, stop = idx[0], idx[-1] + 1
        if stop - start == len(idx):  # consecutive samples (a single one, often): a view in, one copy out
            out[start:stop] = fn(x[start:stop], idx, key)
            continue
        index = torch.tensor(idx, device=x.device)
        out.index_copy_(0, index, fn(x.index_select(0, index), idx, key))
    return out


def batch_scale(value: ParamLike, x: torch.Tensor, name: str) -> torch.Tensor:
    """A per-sample parameter shaped (B, 1, 1, 1), ready to broadcast against images."""
    return batch_param(value, x, name).view(-1, *([1] * (x.ndim - 1)))
