"""The shard format: the contract between the writers in ``pipelines`` and the readers here.

Group shards (``pipelines.build_shards``) hold one sample per dual-representation group:
``ref_a.png``, ``x1.png``, ``x2.png`` (content A), ``ref_b.png``, ``y.png`` (content B), all
lossless 8-bit RGB PNG of one size, and ``meta.json`` (schema version, contents with source
paths and crop boxes, the three plans, engine version, device, render batch, group seed).
IQA shards (``pipelines.pack_iqa``) hold ``image.<ext>`` (one extension for the whole dataset: the
original JPEG bytes when every image is a JPEG, else lossless PNG), ``ref.<ext>`` when the dataset
has references, and ``label.json``.

A shard folder holds only the shards, so tools read it as it lies (``ray.data.read_webdataset``,
webdataset's brace patterns); the rest is in its ``_meta/`` folder: ``shard-NNNNNN.stats.json`` per
shard (written last: the "done" marker), ``manifest.json`` for the whole folder, ``scan.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


SCHEMA = 1
GROUP_IMAGES = ("ref_a", "x1", "x2", "ref_b", "y")
GROUP_FIELDS = tuple(f"{name}.png" for name in GROUP_IMAGES) + ("meta.json",)
IQA_LABEL = "label.json"
META = "_meta"
MANIFEST = "manifest.json"
SCAN = "scan.json"
_REMOTE = re.compile(r"^(pipe:|[a-zA-Z][a-zA-Z0-9+.-]*://)")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class BuildSpec:
    """Everything that decides the content of a group-shard build, defined once.

    ``pipelines.build_shards`` builds from it (its flags are these fields), ``dri.train`` passes it
    on (``shards.<field>`` in its config) and the manifest records it.
    """

    source: str = field(default="samples", metadata=_help(
        "pristine content: a folder, 'samples' (the built-in photos), 'textures' (scikit-image's grey textures), "
        "'synthetic[:COUNT[:SEED]]' (procedural images), or several joined by commas, each with an optional =WEIGHT "
        "(e.g. samples=0.3,synthetic:5000=0.7)"))
    groups: int = field(default=512, metadata=_help("number of groups"))
    per_shard: int = field(default=32, metadata=_help("groups per shard"))
    size: int = field(default=256, metadata=_help("square crop side in pixels"))
    preset: str = field(default="arniqa-monotone", metadata=_help(
        "degradation composition preset: arniqa-monotone (ARNIQA's composition, levels that mean severity), arniqa "
        "(ARNIQA's own tables), broad (every distortion, single ones most often), balanced (compression four "
        "times as likely, levels uniform), kadid"))
    policy: str = field(default="dri", metadata=_help("how x1, x2 and y relate (sampling policy)"))
    seed: int = field(default=0, metadata=_help("seed of contents, crops and plans"))
    min_scale: float = field(default=1.0, metadata=_help(
        "content augmentation: crops cover size/scale source pixels, scale drawn in [min_scale, 1]"))
    rot90: bool = field(default=False, metadata=_help("content augmentation: random quarter turns"))
    flip: bool = field(default=False, metadata=_help("content augmentation: random mirror images"))
    permute: bool = field(default=False, metadata=_help("content augmentation: random colour-channel orders"))
    grey: float = field(default=0.0, metadata=_help("content augmentation: probability that a crop becomes "
                                                   "black-and-white"))
    saturation: float = field(default=1.0, metadata=_help(
        "content augmentation: colour-saturation factors drawn log-uniformly in [1/S, S] (1: off)"))
    device: str = field(default="cpu", metadata=_help("engine device: cpu or cuda (each task then asks for a GPU)"))
    render_batch: int = field(default=16, metadata=_help("groups per engine call (recorded; replay uses it)"))
    png_level: int = field(default=3, metadata=_help("PNG compression level 0-9 (0: stored, about twice the bytes; 1-9: deflate with the run-length strategy, within 1%% of each other in time and bytes)"))

    def __post_init__(self) -> None:
        from degrade.pairs import POLICIES
        from degrade.sampling import PRESETS

        for name in ("groups", "per_shard", "render_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 px, got {self.size}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {sorted(POLICIES)}")
        if not 0 <= self.png_level <= 9:
            raise ValueError(f"png_level must be in 0..9, got {self.png_level}")
        self.augment  # noqa: B018 - validates the content augmentation

    @property
    def augment(self):  # -> datasets.content.Augment (imported here: this module loads no torch)
        from .content import Augment

        return Augment(self.min_scale, self.rot90, self.flip, self.permute, self.grey, self.saturation)

    @property
    def shards(self) -> int:
        return math.ceil(self.groups / self.per_shard)

    def shard_groups(self, index: int) -> range:
        return range(index * self.per_shard, min(self.groups, (index + 1) * self.per_shard))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> BuildSpec:
        """The spec from any mapping holding (at least) its fields, e.g. a config section."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One command-line flag per field (``--per-shard``, ``--flip/--no-flip``...), with its default."""
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            kind = {"int": int, "float": float, "str": str, "bool": bool}[f.type if isinstance(f.type, str)
                                                                            else f.type.__name__]
            if kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                    help=f.metadata["help"])
            else:
                parser.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BuildSpec:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def to_argv(self) -> list[str]:
        """Flags that make :meth:`add_arguments`'s parser rebuild this spec."""
        argv: list[str] = []
        for f in dataclasses.fields(self):
            flag, value = "--" + f.name.replace("_", "-"), getattr(self, f.name)
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        return argv


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def meta_dir(folder: str | os.PathLike) -> Path:
    """Where a shard folder keeps everything that is not a shard: manifest, stats, scan cache.

    Tools that read a folder of tars as it lies (Ray Data's ``read_webdataset``, webdataset's
    directory listing) skip names that start with ``_``, so the folder itself holds only shards.
    """
    return Path(folder) / META


def manifest_path(folder: str | os.PathLike) -> Path:
    return meta_dir(folder) / MANIFEST


def stats_name(index: int) -> str:
    return f"shard-{index:06d}.stats.json"


def stats_path(folder: str | os.PathLike, index: int) -> Path:
    """The stats sidecar of shard ``index``: written last, it marks the shard done."""
    return meta_dir(folder) / stats_name(index)


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and the fix."""


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's manifest, None when it has none, :class:`ManifestError` when it is damaged."""
    path = manifest_path(folder)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{path}: not a readable manifest ({type(error).__name__}: {error}); rerun the command "
                            "that wrote the folder to rewrite it") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list):
        raise ManifestError(f"{path}: not a shard manifest (no list of shards); rerun the command that wrote the folder")
    return manifest


def group_key(index: int) -> str:
    return f"g{index:09d}"


def sanitize_key(text: str) -> str:
    """A tar sample key from any text: WebDataset splits member names at the first dot, so keys
    may hold only letters, digits, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def content_id(meta_side: dict) -> str:
    """Identity of the clean content behind an image: source image, crop box and augmentation."""
    from .content import view_key

    return view_key(meta_side)


MAX_JSON_BYTES = 1 << 20  # a sample's metadata; more is not ours


class SampleError(ValueError):
    """A sample that does not follow the shard schema; the message says what is wrong."""


def read_json(data: bytes, field: str) -> dict[str, Any]:
    """A sample's JSON field as a dict, refusing oversized, malformed or absurdly nested JSON."""
    if len(data) > MAX_JSON_BYTES:
        raise SampleError(f"{field}: {len(data)} bytes, more than {MAX_JSON_BYTES}")
    try:
        value = json.loads(data)
    except RecursionError:
        raise SampleError(f"{field}: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SampleError(f"{field}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise SampleError(f"{field}: expected an object, got {type(value).__name__}")
    return value


def check_group(sample: Mapping[str, bytes]) -> dict[str, Any]:
    """A group sample's metadata after checking the sample against the schema (fields, metadata shape);
    the images are checked when decoded (:func:`check_images`)."""
    fields = set(sample) - {"__key__"}
    missing = set(GROUP_FIELDS) - fields
    if missing:
        raise SampleError(f"missing field(s) {sorted(missing)}")
    meta = read_json(sample["meta.json"], "meta.json")
    for side in ("a", "b"):
        part = meta.get(side)
        box = part.get("box") if isinstance(part, dict) else None
        if not (isinstance(part, dict) and isinstance(part.get("id"), str) and isinstance(box, list) and len(box) == 3
                and all(isinstance(v, int) for v in box)):
            raise SampleError(f"meta.json: {side!r} must hold a content id and a box [top, left, size]")
    plans = meta.get("plans")
    if not isinstance(plans, dict) or not all(isinstance(plans.get(v), dict) for v in ("x1", "x2", "y")):
        raise SampleError("meta.json: 'plans' must hold the plans of x1, x2 and y")
    return meta


def check_images(images: Mapping[str, Any], smallest: int = 1) -> None:
    """The decoded images of one sample all have one square size, at least ``smallest`` px."""
    shapes = {tuple(image.shape) for image in images.values()}
    if len(shapes) != 1:
        raise SampleError(f"images of different sizes in one sample: {sorted(shapes)}")
    channels, h, w = next(iter(shapes))
    if min(h, w) < smallest:
        raise SampleError(f"images of {w}x{h} px are smaller than the {smallest} px patches asked for")


def check_label(sample: Mapping[str, bytes]) -> dict[str, Any]:
    """An IQA sample's label after checking the sample against the schema (one image, a usable label)."""
    if IQA_LABEL not in sample:
        raise SampleError(f"no {IQA_LABEL}")
    label = read_json(sample[IQA_LABEL], IQA_LABEL)
    quality, score = label.get("quality"), label.get("score")
    if not (isinstance(quality, (int, float)) and not isinstance(quality, bool) and 0.0 <= quality <= 1.0):
        raise SampleError(f"{IQA_LABEL}: 'quality' must be a number in [0, 1], got {quality!r}")
    if not (isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)):
        raise SampleError(f"{IQA_LABEL}: 'score' must be a finite number, got {score!r}")
    images = [f for f in sample if f.startswith("image.")]
    if len(images) != 1:
        raise SampleError(f"expected one image field, found {sorted(images) or 'none'}")
    return label


def _is_remote(url: str) -> bool:
    return bool(_REMOTE.match(url)) and not url.startswith("file://")


def list_shards(spec: str | os.PathLike | Sequence) -> list[str]:
    """Shard URLs from what webdataset accepts, and folders.

    * a folder: its manifest's order, else every ``*.tar`` in it (sorted), whatever the names;
    * brace patterns (``out/shard-{000000..000009}.tar``), ``::``-joined lists, ``file://`` URLs and
      local globs;
    * ``pipe:COMMAND`` (e.g. ``pipe:aws s3 cp s3://bucket/shard-000000.tar -``) and http(s) URLs, opened
      with webdataset's ``gopen``;
    * a list of any of these.

    Raises:
        FileNotFoundError: when local paths are named and none of them exists.
    """
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in list_shards(s)]
    text = str(spec)
    path = Path(text.removeprefix("file://"))
    if path.is_dir():
        manifest = read_manifest(path)
        if manifest is not None:
            names = [s["name"] for s in manifest["shards"]]
            return [str(path / n) for n in names if (path / n).is_file()]
        return sorted(str(p) for p in path.iterdir() if p.suffix == ".tar" and p.is_file())
    from webdataset.shardlists import expand_urls

    urls = expand_urls(text)
    local = [u.removeprefix("file://") for u in urls if not _is_remote(u)]
    found = [u for u in urls if _is_remote(u)]
    for u in local:
        found += sorted(glob.glob(u)) if any(c in u for c in "*?[") else ([u] if Path(u).is_file() else [])
    if local and len(found) == len(urls) - len(local):
        raise FileNotFoundError(f"no shards match {text!r} (looked for {local[0]}"
                                + (f" and {len(local) - 1} more" if len(local) > 1 else "") + ")")
    return found


def iter_samples(url: str | os.PathLike) -> Iterator[dict[str, bytes]]:
    """Samples of one tar, in order, as ``{"__key__": key, field: bytes}`` (webdataset's own grouping:
    consecutive members sharing the name up to the first dot of the base name).

    ``url`` is a local path or anything webdataset's ``gopen`` opens (``pipe:``, http(s)).

    Raises:
        tarfile.TarError, OSError, ValueError: for unreadable or truncated tars, or a field repeated
            in one sample (callers decide to skip or fail).
    """
    from webdataset.gopen import gopen
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    url = str(url).removeprefix("file://")
    stream = gopen(url, "rb")
    try:
        files = ({**f, "__url__": url} for f in tar_file_iterator(stream))
        for sample in group_by_keys(files):
            yield {k: v for k, v in sample.items() if not k.startswith("__") or k == "__key__"}
        # Python's tar reader ends quietly at an invalid header after the first: what follows the end
        # of a sound archive is zeros, so anything else means the rest of the shard was cut off.
        while block := stream.read(1 << 16):
            if block.strip(b"\x00"):
                raise tarfile.ReadError(f"{url}: an invalid tar header; the rest of the shard cannot be read")
    finally:
        stream.close()
