"""Writing shard folders safely: atomic tars, stats sidecars as done markers, manifest, fingerprint.

A shard is written to a temporary ``shard-NNNNNN.tar.<writer>.tmp``, flushed to disk and renamed; its stats sidecar
is written after the rename, also through a temporary file. A shard therefore counts as done
exactly when its sidecar exists, names the current configuration's fingerprint and matches the
tar's size. Only files this module names are ever written or removed: an output folder can hold
anything else without risk.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import webdataset as wds

from datasets.shardformat import MANIFEST, SCHEMA, shard_name, stats_name

_OWN_FILES = re.compile(r"^(shard-\d{6}\.(tar|stats\.json)|manifest\.json|scan\.json)(\.[0-9a-f]+-[0-9a-f]+\.tmp)?$")


class ConfigMismatch(Exception):
    """The output folder holds shards built with another configuration."""


def fingerprint(config: Mapping[str, Any]) -> str:
    """A stable digest of everything that determines the shards' content."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(out: Path, name: str) -> Path:
    path = out / name
    if path.parent.resolve() != out.resolve() or "/" in name or name.startswith("."):
        raise ValueError(f"refusing to write {name!r} outside {out}")
    return path


def _temporary(path: Path) -> Path:
    """A temporary name of this writer's own: a build interrupted on the driver can leave a Ray
    worker finishing the same shard while the rerun writes it too; they must not share a file."""
    return path.with_name(f"{path.name}.{os.getpid():x}-{secrets.token_hex(4)}.tmp")


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = _temporary(path)
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_tar(out: Path, index: int, samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Write one shard atomically; every field value must be bytes (nothing is re-encoded).

    Members carry mtime 0, fixed owner and mode, and sorted field order, so the same samples
    always give the same bytes.

    Returns:
        ``name``, ``samples``, ``bytes`` and ``sha256`` of the finished tar.
    """
    final = _inside(out, shard_name(index))
    tmp = _temporary(final)
    count = 0
    with open(tmp, "wb") as handle:
        writer = wds.TarWriter(handle, encoder=False, mtime=0)
        for sample in samples:
            writer.write(dict(sample))
            count += 1
        writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    sha = file_sha256(tmp)
    os.replace(tmp, final)
    return {"name": final.name, "samples": count, "bytes": final.stat().st_size, "sha256": sha}


def write_stats(out: Path, index: int, stats: Mapping[str, Any]) -> None:
    write_json_atomic(_inside(out, stats_name(index)), {"schema": SCHEMA, **stats})


def completed(out: Path, index: int, config_fingerprint: str) -> dict[str, Any] | None:
    """The stats of a finished shard of this configuration, or None if it must be (re)built."""
    stats_path, tar = out / stats_name(index), out / shard_name(index)
    try:
        stats = json.loads(stats_path.read_text())
    except (OSError, ValueError):
        return None
    if stats.get("fingerprint") != config_fingerprint or not tar.is_file() or tar.stat().st_size != stats.get("bytes"):
        return None
    return stats


def prepare(out: Path, config_fingerprint: str, overwrite: bool) -> None:
    """Create ``out``; refuse (or with ``overwrite`` clear) shards of another configuration; drop temporaries."""
    out.mkdir(parents=True, exist_ok=True)
    own = [p for p in out.iterdir() if _OWN_FILES.match(p.name)]
    if overwrite:
        for path in own:
            path.unlink()
        return
    for path in own:
        if path.name.endswith(".tmp"):
            path.unlink()  # left by an interrupted writer; always safe to delete
    found = set()
    manifest = out / MANIFEST
    if manifest.is_file():
        found.add(json.loads(manifest.read_text()).get("fingerprint"))
    for path in out.glob("shard-*.stats.json"):
        try:
            found.add(json.loads(path.read_text()).get("fingerprint"))
        except ValueError:
            path.unlink()
    found.discard(None)
    if found - {config_fingerprint}:
        raise ConfigMismatch(
            f"{out} holds shards of another configuration (fingerprint {sorted(found - {config_fingerprint})[0]}, "
            f"this run {config_fingerprint}); choose another --out, or pass --overwrite to replace them"
        )


def write_manifest(out: Path, payload: Mapping[str, Any]) -> Path:
    path = _inside(out, MANIFEST)
    write_json_atomic(path, {"schema": SCHEMA, **payload})
    return path
