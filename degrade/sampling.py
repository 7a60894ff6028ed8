"""Composition presets and plan sampling from an explicit generator."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from . import catalogue  # noqa: F401  (registers the catalogue)
from .plan import Plan, Step
from .registry import DEFAULT_TABLE, NUM_LEVELS, check_level, get, list_distortions

SEED_BOUND = 2**53  # seeds stay exact in JSON readers that parse numbers as doubles

KADID_TYPES = tuple(n for n in list_distortions() if get(n).kadid is not None)
ARNIQA_TYPES = tuple(n for n in list_distortions() if get(n).arniqa is not None)


@dataclass(frozen=True)
class Preset:
    """How plans are composed.

    Attributes:
        name: preset name.
        distortions: the pool of distortion names to draw from.
        min_steps, max_steps: number of distortions per plan (inclusive range).
        step_probs: probability of each count from ``min_steps`` to ``max_steps`` (None: uniform).
        level_probs: probability of levels 1..5 (normalised here).
        pristine_prob: probability of an empty plan.
        by_group: pick distinct groups first, then one distortion per group (ARNIQA); otherwise
            pick distinct distortions uniformly from the pool.
        group_weights: with ``by_group``, the relative chance of each group (missing groups weigh
            1; None: all equal), e.g. ``{"compression": 3}``. Groups are still distinct in a plan.
        continuous: draw levels uniformly in [1, 5] instead of from ``level_probs``.
        table: level table to resolve parameters from.
    """

    name: str
    distortions: tuple[str, ...]
    min_steps: int = 1
    max_steps: int = 1
    step_probs: tuple[float, ...] | None = None
    level_probs: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)
    pristine_prob: float = 0.0
    by_group: bool = False
    group_weights: Mapping[str, float] | None = None
    continuous: bool = False
    table: str = DEFAULT_TABLE

    def __post_init__(self) -> None:
        object.__setattr__(self, "distortions", tuple(self.distortions))
        for name in self.distortions:
            get(name)
        if not self.distortions:
            raise ValueError(f"preset {self.name!r} has no distortions")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"preset {self.name!r}: need 1 <= min_steps <= max_steps")
        pool = len(self.groups) if self.by_group else len(self.distortions)
        if self.max_steps > pool:
            raise ValueError(f"preset {self.name!r}: max_steps {self.max_steps} exceeds the {pool} choices available")
        if self.step_probs is not None:
            object.__setattr__(self, "step_probs", tuple(self.step_probs))
            if len(self.step_probs) != self.max_steps - self.min_steps + 1 or min(self.step_probs) < 0 \
                    or sum(self.step_probs) <= 0:
                raise ValueError(f"preset {self.name!r}: step_probs needs one non-negative weight per count "
                                 f"{self.min_steps}..{self.max_steps}")
        if len(self.level_probs) != NUM_LEVELS or min(self.level_probs) < 0 or sum(self.level_probs) <= 0:
            raise ValueError(f"preset {self.name!r}: level_probs needs {NUM_LEVELS} non-negative weights")
        if not 0.0 <= self.pristine_prob < 1.0:
            raise ValueError(f"preset {self.name!r}: pristine_prob must be in [0, 1)")
        if self.group_weights is not None:
            weights = tuple(sorted(dict(self.group_weights).items()))  # hashable, order-free
            object.__setattr__(self, "group_weights", weights)
            if not self.by_group:
                raise ValueError(f"preset {self.name!r}: group_weights need by_group=True")
            unknown = sorted(set(dict(weights)) - set(self.groups))
            if unknown:
                raise ValueError(f"preset {self.name!r}: group_weights name groups it has no distortion of: {unknown}")
            if any(not (w >= 0 and math.isfinite(w)) for _, w in weights):
                raise ValueError(f"preset {self.name!r}: group weights must be finite and non-negative")
            if self.max_steps > sum(w > 0 for w in self.group_probs):
                raise ValueError(f"preset {self.name!r}: max_steps {self.max_steps} exceeds the groups of positive "
                                 "weight")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(get(n).group for n in self.distortions))

    @property
    def group_probs(self) -> tuple[float, ...]:
        """The weight of each of :attr:`groups`, in that order."""
        weights = dict(self.group_weights or ())
        return tuple(float(weights.get(g, 1.0)) for g in self.groups)

    @classmethod
    def of(cls, names: Sequence[str] | str, **options) -> Preset:
        """A one-distortion-per-plan preset over ``names`` (e.g. ``Preset.of("jpeg")``)."""
        names = (names,) if isinstance(names, str) else tuple(names)
        return cls(name="+".join(names), distortions=names, **options)


# ARNIQA's level probabilities: a Gaussian of mean 0 and std 2.5 over level indices 0..4, normalised
# (0.293, 0.270, 0.213, 0.143, 0.081).
ARNIQA_LEVEL_PROBS = tuple(math.exp(-(i**2) / (2 * 2.5**2)) for i in range(NUM_LEVELS))

PRESETS = {
    "kadid": Preset("kadid", KADID_TYPES),
    # ARNIQA's image degradation model as published: 1 to 4 distortions from distinct groups in
    # random order, levels drawn with ARNIQA_LEVEL_PROBS, 5% pristine, and ARNIQA's own level
    # tables (signed mean shift and contrast change in its order, JPEG 2000 ratio 170 at level 5).
    "arniqa": Preset(
        "arniqa", ARNIQA_TYPES, min_steps=1, max_steps=4, level_probs=ARNIQA_LEVEL_PROBS, pristine_prob=0.05,
        by_group=True, table="arniqa",
    ),
    # The same composition with the toolkit's default tables, where severity rises with the level
    # for every distortion (two-sided distortions draw their direction per plan).
    "arniqa-monotone": Preset(
        "arniqa-monotone", ARNIQA_TYPES, min_steps=1, max_steps=4, level_probs=ARNIQA_LEVEL_PROBS, pristine_prob=0.05,
        by_group=True,
    ),
    # Every distortion of the catalogue (KADID-10k's, ARNIQA's and the camera/restoration extras such
    # as WebP and down-up resizing), composed like arniqa-monotone, but half the plans hold a single
    # distortion: the common case in the IQA datasets, and the one where each type's own artefacts
    # are seen unmasked by others.
    "broad": Preset(
        "broad", tuple(list_distortions()), min_steps=1, max_steps=4, step_probs=(0.5, 0.25, 0.15, 0.1),
        level_probs=ARNIQA_LEVEL_PROBS, pristine_prob=0.05, by_group=True,
    ),
    # arniqa-monotone's distortions plus WebP, half the plans a single distortion, levels uniform,
    # and the compression group four times as likely as each other group: blocking and ringing are
    # what a network trained on the other presets learns least (they are rare there, mostly mild
    # and masked by blur and noise in the same plan).
    "balanced": Preset(
        "balanced", ARNIQA_TYPES + ("webp",), min_steps=1, max_steps=4, step_probs=(0.5, 0.25, 0.15, 0.1),
        pristine_prob=0.05, by_group=True, group_weights={"compression": 4.0},
    ),
}


def get_preset(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)} or pass a Preset")
    return PRESETS[preset]


def new_seed(generator: torch.Generator) -> int:
    """Draw a step seed."""
    return int(torch.randint(0, SEED_BOUND, (), generator=generator))


def _choice(n: int, generator: torch.Generator) -> int:
    return int(torch.randint(0, n, (), generator=generator))


def draw_level(preset: Preset, generator: torch.Generator, exclude: float | None = None) -> float:
    """Draw a level from the preset's distribution, optionally different from ``exclude``."""
    if preset.continuous:
        while True:
            level = 1.0 + (NUM_LEVELS - 1) * float(torch.rand((), generator=generator, dtype=torch.float64))
            if exclude is None or abs(level - exclude) >= 1.0:
                return level
    probs = torch.tensor(preset.level_probs, dtype=torch.float64)
    if exclude is not None and float(exclude).is_integer():
        probs[int(exclude) - 1] = 0.0
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator)) + 1


def make_step(
    name: str, level: float, generator: torch.Generator, table: str = DEFAULT_TABLE, backend: str | None = None
) -> Step:
    """Resolve one step: parameters (random draws included) and a seed, all from ``generator``."""
    entry = get(name)
    check_level(level, name)
    entry.op_for(backend)  # validates the backend name
    params = entry.resolve(level, generator, table)
    return Step(name, level, params, new_seed(generator), backend or entry.default_backend)


def at_level(step: Step, level: float, table: str = DEFAULT_TABLE) -> Step:
    """The same step at another level: same type, random draws, seed and backend; only severity changes."""
    params = get(step.name).resolve(level, torch.Generator(), table, like=step.params)
    return Step(step.name, level, params, step.seed, step.backend)


def sample_plan(preset: str | Preset, generator: torch.Generator, *, allow_pristine: bool = True) -> Plan:
    """Draw one plan from a preset."""
    preset = get_preset(preset)
    if allow_pristine and preset.pristine_prob > 0:
        if float(torch.rand((), generator=generator, dtype=torch.float64)) < preset.pristine_prob:
            return Plan()
    if preset.step_probs is None:
        count = preset.min_steps + _choice(preset.max_steps - preset.min_steps + 1, generator)
    else:
        probs = torch.tensor(preset.step_probs, dtype=torch.float64)
        count = preset.min_steps + int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
    if preset.by_group:
        if preset.group_weights is None:
            order = torch.randperm(len(preset.groups), generator=generator)[:count]
        else:
            weights = torch.tensor(preset.group_probs, dtype=torch.float64)
            order = torch.multinomial(weights / weights.sum(), count, replacement=False, generator=generator)
        groups = [preset.groups[i] for i in order]
        names = []
        for group in groups:
            members = [n for n in preset.distortions if get(n).group == group]
            names.append(members[_choice(len(members), generator)])
    else:
        names = [preset.distortions[i] for i in torch.randperm(len(preset.distortions), generator=generator)[:count]]
    return Plan(tuple(make_step(n, draw_level(preset, generator), generator, preset.table) for n in names))


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None and seed is not None:
        raise ValueError("pass a generator or a seed, not both")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    if generator.device.type != "cpu":
        raise ValueError("plans are drawn from a CPU generator, so that they do not depend on the device")
    return generator


def sample_plans(
    n: int, preset: str | Preset = "arniqa", generator: torch.Generator | None = None, *, seed: int | None = None
) -> list[Plan]:
    """Draw ``n`` plans from a composition preset.

    Args:
        n: number of plans.
        preset: ``"arniqa"`` (1-4 distortions from distinct groups, random order, milder levels
            likelier, 5% pristine), ``"kadid"`` (one KADID distortion at a uniform level) or a
            :class:`Preset`.
        generator: CPU generator that all draws come from; advanced by the call.
        seed: alternatively, a seed for a fresh generator (default 0).

    Returns:
        ``n`` plans; the same generator state always gives the same plans.
    """
    generator = _generator(generator, seed)
    return [sample_plan(preset, generator) for _ in range(n)]
