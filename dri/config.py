"""Training configuration: typed dataclasses, loaded from YAML, with dotted command-line overrides.

``TrainConfig()`` is the tiny recipe on the built-in photos (``dri/configs/tiny.yaml`` spells it
out); ``dri/configs/base.yaml`` is the paper-scale recipe of the SPEC. Overrides name a field by
its dotted path: ``--stage2.lr 1e-4 --model.overrides.restoration false``.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelSection:
    name: str = "dri_iqa_tiny"
    overrides: dict = field(default_factory=dict)  # ModelConfig fields, e.g. {restoration: false}


@dataclass
class ShardSection:
    """Group shards for stage 1 (and the pseudo-MOS set); built from ``source`` if missing."""

    path: str = "shards"
    build_if_missing: bool = True
    source: str = "samples"
    groups: int = 512
    groups_per_shard: int = 32
    size: int = 256
    preset: str = "arniqa"
    policy: str = "dri"
    seed: int = 0


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
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 10
    prototype_batches: int = 8  # batches of pristine patches averaged into the RS prototypes


@dataclass
class Stage2Config:
    """Score predictor with restoration assistance and the RS loss, on an IQA set."""

    steps: int = 150
    batch: int = 16
    init: str | None = None  # stage-1 model to start from; default <out>/stage1/model.pt
    data: str = "pseudo"  # "pseudo" (from the group shards), "shards" (pack_iqa output) or a datasets.iqa name
    root: str | None = None  # dataset folder (datasets.iqa name) or IQA shard folder ("shards")
    split: int = 0
    splits: int = 10
    split_seed: int = 0
    train_fraction: float = 0.8
    official: bool = False  # use the dataset's official split (KonIQ-10k)
    pseudo_split: str = "crop"  # pseudo-MOS set: hold out crops ("crop") or whole source photos ("photo")
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


class ConfigError(ValueError):
    pass


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
    """The configuration of a YAML file (defaults where it is silent) with dotted overrides applied."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        data = yaml.safe_load(path.read_text()) or {}
    config = from_dict(TrainConfig, data)
    for dotted, value in (overrides or {}).items():
        config = override(config, dotted, value)
    return config


def override(config: TrainConfig, dotted: str, value: Any) -> TrainConfig:
    """A copy of ``config`` with the field at ``dotted`` set (converted to its declared type)."""
    data = to_dict(config)
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
    return from_dict(TrainConfig, data)


def save(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
