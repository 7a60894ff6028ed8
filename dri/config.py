"""Training configuration: typed dataclasses, loaded from YAML, with dotted command-line overrides.

``TrainConfig()`` is the tiny recipe of the demo (``dri/configs/tiny.yaml`` spells it out);
``dri/configs/base.yaml`` is the paper-scale recipe of the SPEC. Overrides name a field by its dotted
path: ``--stage2.lr 1e-4 --model.overrides.restoration false``.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from degrade._extras import require

require("dri.train's configuration", "train", "yaml")

import yaml  # noqa: E402

from datasets.shardformat import BuildSpec


class ConfigError(ValueError):
    """A setting that does not exist or has a value it cannot take; the message names it."""


def _require(ok: bool, setting: str, what: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{setting}: {what}, got {value!r}")


def _positive(section: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(isinstance(value, (int, float)) and math.isfinite(value) and value > 0, f"{section}.{name}",
                 "must be a finite number above 0", value)


def _at_least(section: str, obj: Any, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(value >= minimum, f"{section}.{name}", f"must be at least {minimum}", value)


def _finite(section: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(math.isfinite(value) and value >= 0, f"{section}.{name}", "must be a finite number >= 0", value)


@dataclass
class ModelSection:
    name: str = "dri_iqa_tiny"
    overrides: dict = field(default_factory=dict)  # ModelConfig fields, e.g. {restoration: false}


@dataclass
class ShardSection(BuildSpec):
    """Group shards for stage 1 (and the pseudo-MOS set), built with ``python -m pipelines.build_shards``
    when missing. Every field of the build spec (``datasets.shardformat.BuildSpec``) is a setting here."""

    # The demo's content: the built-in photos (60%) and procedural dead-leaves images (40%), augmented at
    # crop time, degraded by the balanced preset; the release recipe's kind of data at a tenth of its size
    # (on the photos alone the network learns the nine photos, not quality: BENCHMARKS.md).
    source: str = "samples=0.6,synthetic:2000=0.4"
    preset: str = "balanced"
    min_scale: float = 0.5
    rot90: bool = True
    flip: bool = True
    grey: float = 0.25
    path: str = "shards"
    build_if_missing: bool = True
    ray_cpus: int | None = None  # CPUs of the local Ray that builds them (default: all)

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as error:
            raise ConfigError(f"shards: {error}") from None
        _require(self.ray_cpus is None or self.ray_cpus >= 1, "shards.ray_cpus", "must be at least 1", self.ray_cpus)


@dataclass
class Stage1Config:
    """Contrastive training of DRE-Net on group shards."""

    steps: int = 240
    groups: int = 8  # groups per batch: 6 patches each
    patch: int = 96
    policy: str = "dri"  # relation policy of the masks
    temperature: float = 0.1
    queue: int = 0  # extra negatives kept from earlier batches (0: none)
    restoration_weight: float = 0.0  # > 0: also pre-train the restoration network on pixel L1
    degradation_weight: float = 0.0  # > 0: also read the plan's distortions and levels off f_d [design]
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 10
    prototype_batches: int = 8  # batches of pristine patches averaged into the RS prototypes

    def __post_init__(self) -> None:
        _at_least("stage1", self, 1, "steps", "groups", "prototype_batches")
        _at_least("stage1", self, 8, "patch")
        _at_least("stage1", self, 0, "queue", "warmup")
        _positive("stage1", self, "lr", "temperature")
        _finite("stage1", self, "weight_decay", "restoration_weight", "degradation_weight")
        _require(self.optimizer in OPTIMIZERS, "stage1.optimizer", f"must be one of {OPTIMIZERS}", self.optimizer)


@dataclass
class Stage2Config:
    """Score predictor with restoration assistance and the RS loss, on labelled data (``datasets.labelled``)."""

    steps: int = 150
    batch: int = 16
    init: str | None = None  # stage-1 model to start from; default <out>/stage1/model.pt
    data: str = "pseudo"  # "pseudo" (from the group shards), "shards" (pack_iqa output) or a datasets.iqa name
    root: str | None = None  # dataset folder or CSV ("csv"), IQA shard folder ("shards"); pseudo: shards.path
    options: dict = field(default_factory=dict)  # reader options, e.g. {low: 0, high: 10} for csv
    split: int = 0
    splits: int = 10
    split_seed: int = 0
    train_fraction: float = 0.8
    official: bool | None = None  # the dataset's official split; null: where it has one (KonIQ-10k)
    pseudo_split: str = "crop"  # pseudo-MOS set: hold out crops ("crop") or whole source photos ("photo")
    pseudo_teacher: str = "ssim_psnr"  # full-reference teacher of the pseudo-MOS labels (datasets.teachers)
    pseudo_pristine: bool = False  # also train on each group's pristine reference, labelled 1
    rs: bool = True
    rs_weight: float = 0.1
    rank_weight: float = 0.0  # pairwise ranking loss over the batch
    content_rank_weight: float = 0.0  # pairwise ranking among images of the same content (reference)
    finetune_dre: bool = False
    dre_lr_scale: float = 0.1
    optimizer: str = "adam"
    lr: float = 3e-4
    weight_decay: float = 1e-5
    warmup: int = 10
    flip: bool = True
    eval_every: int = 75

    def __post_init__(self) -> None:
        from datasets.labelled import KINDS
        from datasets.teachers import TEACHERS

        _at_least("stage2", self, 1, "steps", "batch", "splits")
        _at_least("stage2", self, 0, "split", "warmup", "eval_every")
        _positive("stage2", self, "lr", "dre_lr_scale")
        _finite("stage2", self, "weight_decay", "rs_weight", "rank_weight", "content_rank_weight")
        _require(0 < self.train_fraction < 1, "stage2.train_fraction", "must be in (0, 1)", self.train_fraction)
        _require(self.data in KINDS, "stage2.data", f"must be one of {', '.join(KINDS)}", self.data)
        _require(self.pseudo_split in ("crop", "photo"), "stage2.pseudo_split", "must be crop or photo",
                 self.pseudo_split)
        _require(self.pseudo_teacher in TEACHERS, "stage2.pseudo_teacher", f"must be one of {sorted(TEACHERS)}",
                 self.pseudo_teacher)
        _require(self.optimizer in OPTIMIZERS, "stage2.optimizer", f"must be one of {OPTIMIZERS}", self.optimizer)
        if self.data not in ("pseudo", "shards"):
            from datasets import iqa

            try:
                iqa.parse_options(self.data, self.options)
            except ValueError as error:
                raise ConfigError(f"stage2.options: {error}") from None
        elif self.options:
            raise ConfigError(f"stage2.options: reader options apply to datasets read from their layout, not to "
                              f"stage2.data={self.data}; got {self.options}")


OPTIMIZERS = ("adam", "adamw", "sgd")
STAGES = ("1", "2", "head", "all")  # what one dri.train command runs


@dataclass
class HeadConfig:
    """The linear quality head (``model.overrides.score_head: linear``): fitted in closed form after stage 2 to
    stage 2's kind of labels, on the training side of its own group shards (with each group's pristine
    reference, labelled 1, unless ``pristine`` is off), read as stage 2's evaluation reads images (fixed
    crops). Its shards are the stage-1 shards' spec with the ``source``, ``seed`` and ``groups`` below:
    content the network never trained on, since the head's features of the very crops stage 1 learnt
    from carry less to new photos (BENCHMARKS.md)."""

    fit: bool = True  # fit it at the end of --stage all on pseudo-MOS (other data: skipped; --stage head fits it alone)
    init: str | None = None  # the model to fit it on; default <out>/stage2/best.pt
    path: str = "shards-head"  # its shards, built when missing
    # their pristine content (null: the stage-1 shards' source); the demo's: its photos and dead-leaves images
    # other than stage 1's (synthetic seed 11)
    source: str | None = "samples=0.6,synthetic:2000:11=0.4"
    seed: int = 1
    groups: int = 512
    pristine: bool = True  # also fit to each group's pristine reference, labelled 1: where the top of the scale is
    kernel: bool = True  # add a kernel correction of the linear map's residuals (kept where it predicts 1% better)
    images: int = 1536  # training images read at most
    batch: int = 32

    def __post_init__(self) -> None:
        _at_least("head", self, 10, "images", "groups")
        _at_least("head", self, 1, "batch")


@dataclass
class TrainConfig:
    out: str = "runs/tiny"  # the run folder
    seed: int = 0
    device: str = "auto"  # auto: cuda when available
    workers: int = 2  # DataLoader workers
    checkpoint_every: int = 50
    log_every: int = 10
    model: ModelSection = field(default_factory=ModelSection)
    shards: ShardSection = field(default_factory=ShardSection)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    head: HeadConfig = field(default_factory=HeadConfig)

    def __post_init__(self) -> None:
        _at_least("config", self, 0, "workers")
        _at_least("config", self, 1, "checkpoint_every", "log_every")
        _require(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"), "device",
                 "must be auto, cpu or cuda[:N]", self.device)
        _require(not Path(self.out).exists() or Path(self.out).is_dir(), "out", "is a file, not a run folder",
                 self.out)


def _convert(value: Any, kind: Any, path: str) -> Any:
    """Convert a YAML or command-line value to the field's declared type."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _convert(value, options[0], path)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if kind is str:
        return str(value)
    if kind in (int, float):
        if isinstance(value, bool):
            _bad(path, kind, value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            _bad(path, kind, value)
        if kind is int:
            if not number.is_integer():
                _bad(path, kind, value)
            return int(number)
        return number
    if kind is dict or origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return value
    return value


def _bad(path: str, kind: type, value: Any) -> typing.NoReturn:
    raise ConfigError(f"{path}: expected {kind.__name__}, got {value!r}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build a config dataclass from a mapping, refusing unknown keys (with suggestions)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in hints:
            close = difflib.get_close_matches(key, hints, n=1)
            raise ConfigError(f"unknown setting {path!r}" + (f"; did you mean {prefix}{close[0]}?" if close else ""))
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            kwargs[key] = from_dict(kind, value or {}, f"{path}.")
        else:
            kwargs[key] = _convert(value, kind, path)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The configuration of a YAML file (defaults where it is silent) with dotted overrides applied.

    The file and the overrides are merged first and validated together, once: a setting may need
    another (``stage2.data: csv`` needs ``stage2.options.low`` and ``high``) whichever way they come.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    merged = _merge(to_dict(TrainConfig()), data)
    for dotted, value in (overrides or {}).items():
        _set(merged, dotted, value)
    return from_dict(TrainConfig, merged)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the setting at ``dotted`` in a config mapping, converted to its declared type."""
    node, keys = data, dotted.split(".")
    cls: Any = TrainConfig
    for i, key in enumerate(keys[:-1]):
        hints = _hints(cls) if dataclasses.is_dataclass(cls) else {}
        if isinstance(node, dict) and key in node and (not hints or key in hints):
            node = node[key]
            cls = hints.get(key, dict)
        else:
            raise ConfigError(f"unknown setting {'.'.join(keys[: i + 1])!r}")
    last = keys[-1]
    if dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        if last not in hints:
            close = difflib.get_close_matches(last, hints, n=1)
            raise ConfigError(f"unknown setting {dotted!r}" + (f"; did you mean {'.'.join(keys[:-1] + close)}?" if close else ""))
        node[last] = _convert(value, hints[last], dotted)
    else:
        node[last] = yaml.safe_load(value) if isinstance(value, str) else value


def override(config: TrainConfig, dotted: str, value: Any) -> TrainConfig:
    """A copy of ``config`` with the field at ``dotted`` set (converted to its declared type)."""
    data = to_dict(config)
    _set(data, dotted, value)
    return from_dict(TrainConfig, data)


def save(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
