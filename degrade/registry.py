"""The distortion registry: one declarative entry per distortion, looked up by name.

An entry says which functional op implements the distortion, which parameter its five levels
set (level 1 mildest), which extra random draws a plan records for it, and where it runs.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

GROUPS = ("blur", "color", "compression", "noise", "brightness", "spatial", "sharpness_contrast")
DEFAULT_TABLE = "default"
NUM_LEVELS = 5

Sampler = Callable[[torch.Generator], float]


def uniform(low: float, high: float) -> Sampler:
    """A plan-time draw of a float uniformly in [low, high)."""
    return lambda g: low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))


def integer(low: int, high: int) -> Sampler:
    """A plan-time draw of an integer uniformly in [low, high] (inclusive)."""
    return lambda g: float(torch.randint(low, high + 1, (), generator=g))


@dataclass(frozen=True)
class Distortion:
    """One registered distortion.

    Attributes:
        name: registry key.
        group: one of :data:`GROUPS`; presets never combine two distortions of one group.
        parameter: name of the op argument the level sets.
        description: what the parameter means, with its unit.
        levels: the parameter at levels 1..5 (level 1 mildest) in the default table.
        op: the functional op, ``op(x, **params[, generators])``.
        tables: alternative level tables by name (e.g. ``"kadid-exact"``); others fall back to ``levels``.
        extras: random draws made when a plan is sampled and recorded in it (e.g. a motion angle).
        integer: the parameter is rounded to an integer.
        stochastic: the op draws noise or positions from one generator per sample (seeded by the plan).
        differentiable: gradients flow through the default backend.
        differentiable_backends: other backends that gradients flow through.
        devices: devices the op runs on natively; others round-trip through the CPU.
        backends: alternative implementations by name; the plan records which one ran.
        kadid: KADID-10k distortion index (1..25), if the distortion is KADID's.
        arniqa: ARNIQA's name for it, if ARNIQA uses it.
        signed_around: for two-sided distortions (mean shift, contrast change): the default table
            holds distances from this neutral value and each plan draws a random direction, so
            severity grows with level whichever way the image is pushed. Other tables hold the
            signed values as published.
        whole_batch: the op's cost is mostly per call, not per pixel (Floyd-Steinberg's wavefronts:
            a few hundred small steps whatever the batch), so on the CPU it runs on its whole
            batch at once; other ops run on cache-sized parts of it (``degrade.ops._cpu.part_images``).
    """

    name: str
    group: str
    parameter: str
    description: str
    levels: tuple[float, ...]
    op: Callable[..., torch.Tensor] = field(repr=False)
    tables: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    extras: Mapping[str, Sampler] = field(default_factory=dict, repr=False)
    integer: bool = False
    stochastic: bool = False
    differentiable: bool = True
    differentiable_backends: tuple[str, ...] = ()
    devices: tuple[str, ...] = ("cpu", "cuda")
    backends: Mapping[str, Callable[..., torch.Tensor]] = field(default_factory=dict, repr=False)
    kadid: int | None = None
    arniqa: str | None = None
    signed_around: float | None = None
    whole_batch: bool = False

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"{self.name}: unknown group {self.group!r}; expected one of {GROUPS}")
        for table, values in {DEFAULT_TABLE: self.levels, **self.tables}.items():
            if len(values) != NUM_LEVELS:
                raise ValueError(f"{self.name}: table {table!r} needs {NUM_LEVELS} values, got {len(values)}")
        object.__setattr__(self, "tables", MappingProxyType(dict(self.tables)))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))
        object.__setattr__(self, "backends", MappingProxyType(dict(self.backends)))

    @property
    def default_backend(self) -> str | None:
        """Name of the backend used when none is asked for (the first listed), or None."""
        return next(iter(self.backends), None)

    def differentiable_with(self, backend: str | None) -> bool:
        """Whether gradients flow through the implementation ``backend`` (None: the default)."""
        if backend is None or backend == self.default_backend:
            return self.differentiable
        return backend in self.differentiable_backends

    def table(self, name: str = DEFAULT_TABLE) -> tuple[float, ...]:
        """The level table called ``name``; tables a distortion does not define fall back to the default."""
        return self.tables.get(name, self.levels)

    def value(self, level: float, table: str = DEFAULT_TABLE) -> float:
        """The parameter at ``level`` in [1, 5]; fractional levels interpolate linearly between entries."""
        check_level(level, self.name)
        values = self.table(table)
        low = min(int(math.floor(level)), NUM_LEVELS - 1)
        t = level - low
        v = values[low - 1] + t * (values[low] - values[low - 1]) if t > 0 else values[low - 1]
        return float(round(v)) if self.integer else float(v)

    def resolve(
        self,
        level: float,
        generator: torch.Generator,
        table: str = DEFAULT_TABLE,
        like: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """The op arguments for ``level``: the tabled parameter plus this distortion's random draws.

        Args:
            level: in [1, 5].
            generator: source of the random draws.
            table: level table to read.
            like: parameters of an earlier step of this distortion whose random draws (and
                direction, for two-sided distortions) are kept instead of drawn anew.
        """
        value = self.value(level, table)
        if self.signed_around is not None and table == DEFAULT_TABLE:
            if like is not None:
                sign = 1.0 if like[self.parameter] >= self.signed_around else -1.0
            else:
                sign = 1.0 if float(torch.rand((), generator=generator, dtype=torch.float64)) < 0.5 else -1.0
            value = self.signed_around + sign * value
        if like is not None:
            drawn = {key: float(like[key]) for key in self.extras}
        else:
            drawn = {key: draw(generator) for key, draw in self.extras.items()}
        return {self.parameter: value, **drawn}

    def op_for(self, backend: str | None) -> Callable[..., torch.Tensor]:
        """The implementation for ``backend`` (None: the default)."""
        if backend is None or not self.backends:
            if backend is not None:
                raise ValueError(f"{self.name} has no backends; got backend={backend!r}")
            return self.op
        if backend not in self.backends:
            raise ValueError(f"{self.name}: unknown backend {backend!r}; choose from {sorted(self.backends)}")
        return self.backends[backend]


def check_level(level: float, name: str) -> None:
    if not (isinstance(level, (int, float)) and 1 <= level <= NUM_LEVELS):
        raise ValueError(
            f"{name}: level must be a number in [1, {NUM_LEVELS}] (1 mildest, fractions interpolate), got {level!r}"
        )


_REGISTRY: dict[str, Distortion] = {}


def register(distortion: Distortion) -> Distortion:
    """Add a distortion to the registry; names are unique."""
    if distortion.name in _REGISTRY:
        raise ValueError(f"distortion {distortion.name!r} is already registered")
    _REGISTRY[distortion.name] = distortion
    return distortion


def get(name: str) -> Distortion:
    """The registered distortion called ``name``; an unknown name suggests the closest ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown distortion {name!r}.{hint} `python -m degrade list` shows them all.") from None


def list_distortions(group: str | None = None) -> list[str]:
    """Names of the registered distortions in catalogue order, optionally of one group."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    return [n for n, d in _REGISTRY.items() if group is None or d.group == group]


def info(name: str) -> Distortion:
    """Everything the registry knows about one distortion (group, parameter, levels, devices, ...)."""
    return get(name)
