"""Plans: the complete, JSON-serialisable recipe that turns one clean image into its degraded version."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ._version import ENGINE_VERSION

PLAN_VERSION = 1


def _number(v: Any, what: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{what} must be a number, got {v!r}")
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


class Params(dict):
    """Read-only, hashable, picklable mapping of a step's parameters."""

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("plan parameters are read-only; build a new Step instead")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]
    __ior__ = _read_only  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:
        return (Params, (dict(self),))


@dataclass(frozen=True)
class Step:
    """One distortion of a plan.

    Attributes:
        name: registered distortion name.
        level: the level it was drawn at, in [1, 5] (kept for relations between plans; replay
            uses ``params``).
        params: the resolved op arguments, random draws included (e.g. a motion angle).
        seed: seeds the per-sample generator of stochastic ops (noise fields, positions).
        backend: implementation used, for distortions that have several (e.g. ``"libjpeg"``).
    """

    name: str
    level: int | float
    params: Mapping[str, int | float]
    seed: int
    backend: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"step name must be a non-empty string, got {self.name!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"{self.name}: seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "level", _number(self.level, f"{self.name}: level"))
        params = {str(k): _number(v, f"{self.name}: parameter {k!r}") for k, v in sorted(self.params.items())}
        object.__setattr__(self, "params", Params(params))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "level": self.level, "params": dict(self.params), "seed": self.seed}
        if self.backend is not None:
            d["backend"] = self.backend
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Step:
        missing = {"name", "level", "params", "seed"} - set(d)
        if missing:
            raise ValueError(f"plan step {dict(d)!r} lacks {sorted(missing)}")
        return cls(d["name"], d["level"], d["params"], d["seed"], d.get("backend"))


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps; the empty plan leaves the image pristine."""

    steps: tuple[Step, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def names(self) -> tuple[str, ...]:
        """The distortion types in order."""
        return tuple(s.name for s in self.steps)

    @property
    def levels(self) -> tuple[int | float, ...]:
        return tuple(s.level for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data, with the engine version that replays it exactly."""
        return {"version": PLAN_VERSION, "engine": ENGINE_VERSION, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        version = d.get("version", PLAN_VERSION)
        if version != PLAN_VERSION:
            raise ValueError(f"plan version {version} is not supported (this engine reads version {PLAN_VERSION})")
        if not isinstance(d.get("steps"), list):
            raise ValueError("a plan needs a list under 'steps'")
        return cls(tuple(Step.from_dict(s) for s in d["steps"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))
