"""The shard format: the contract between the writers in ``pipelines`` and the readers here.

Group shards (``pipelines.build_shards``) hold one sample per dual-representation group:
``ref_a.png``, ``x1.png``, ``x2.png`` (content A), ``ref_b.png``, ``y.png`` (content B), all
lossless 8-bit RGB PNG of one size, and ``meta.json`` (schema version, contents with source
paths and crop boxes, the three plans, engine version, device, render batch, group seed).
IQA shards (``pipelines.pack_iqa``) hold ``image.<ext>`` (original bytes; BMP transcoded
losslessly to PNG), ``ref.<ext>`` when the dataset has references, and ``label.json``.

Next to ``shard-NNNNNN.tar`` the writer puts ``shard-NNNNNN.stats.json`` (written last: the
"done" marker) and one ``manifest.json`` for the whole folder.
"""
from __future__ import annotations

import glob
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import braceexpand

SCHEMA = 1
GROUP_IMAGES = ("ref_a", "x1", "x2", "ref_b", "y")
GROUP_FIELDS = tuple(f"{name}.png" for name in GROUP_IMAGES) + ("meta.json",)
IQA_LABEL = "label.json"
MANIFEST = "manifest.json"
_SHARD = re.compile(r"^shard-(\d{6})\.tar$")


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


def stats_name(index: int) -> str:
    return f"shard-{index:06d}.stats.json"


def group_key(index: int) -> str:
    return f"g{index:09d}"


def sanitize_key(text: str) -> str:
    """A tar sample key from any text: WebDataset splits member names at the first dot, so keys
    may hold only letters, digits, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def content_id(meta_side: dict) -> str:
    """Identity of the clean content behind an image: source image and crop box."""
    top, left, size = meta_side["box"]
    return f"{meta_side['id']}@{top},{left},{size}"


def list_shards(spec: str | os.PathLike | list) -> list[str]:
    """Shard paths from a folder (its manifest's order, else sorted ``shard-*.tar``), a brace
    pattern (``out/shard-{000000..000009}.tar``), a glob, or a list of any of these."""
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in list_shards(s)]
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        manifest = path / MANIFEST
        if manifest.is_file():
            names = [s["name"] for s in json.loads(manifest.read_text())["shards"]]
            return [str(path / n) for n in names if (path / n).is_file()]
        return sorted(str(p) for p in path.iterdir() if _SHARD.match(p.name))
    if "{" in text:
        return list(braceexpand.braceexpand(text))
    if any(c in text for c in "*?["):
        return sorted(glob.glob(text))
    return [text]


def iter_samples(path: str | os.PathLike) -> Iterator[dict[str, bytes]]:
    """Samples of one tar in order: consecutive members sharing a key (the name up to the first
    dot of the base name), as ``{"__key__": key, field: bytes}``.

    Raises:
        tarfile.TarError, OSError: for unreadable or truncated tars (callers decide to skip or fail).
    """
    with tarfile.open(path, "r|*") as archive:
        sample: dict = {}
        for member in archive:
            if not member.isfile():
                continue
            folder, _, base = member.name.rpartition("/")
            stem, dot, field = base.partition(".")
            if not dot:
                continue
            key = f"{folder}/{stem}" if folder else stem
            if sample and sample["__key__"] != key:
                yield sample
                sample = {}
            handle = archive.extractfile(member)
            sample.setdefault("__key__", key)
            sample[field.lower()] = handle.read() if handle is not None else b""
        if sample:
            yield sample
