"""Writing shard folders safely: atomic tars, stats sidecars as done markers, manifest, fingerprint.

A shard is written to a hidden temporary ``.shard-NNNNNN.tar.<writer>.tmp``, flushed to disk and
renamed; its stats sidecar (``_meta/shard-NNNNNN.stats.json``) is written after the rename, also
through a temporary file. A shard therefore counts as done exactly when its sidecar exists, names
the current configuration's fingerprint and matches the tar's size and sha256. Only files this
module names are ever written or removed: an output folder can hold anything else without risk.
When the disk fills up (or any write fails), the temporaries of that write are removed and
:class:`WriteFailed` says what could not be written; every finished shard is kept.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import webdataset as wds

from datasets.shardformat import (
    SCHEMA,
    ManifestError,
    manifest_path,
    meta_dir,
    read_manifest,
    shard_name,
    stats_name,
    stats_path,
)

_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]+-[0-9a-f]+\.tmp$")
_OWN = re.compile(r"^(shard-\d{6}\.tar)$")
_OWN_META = re.compile(r"^(shard-\d{6}\.stats\.json|manifest\.json|scan\.json)$")


class ConfigMismatch(Exception):
    """The output folder holds shards built with another configuration."""


class WriteFailed(OSError):
    """A file of the output could not be written (disk full, permissions); nothing half-written remains."""


def fingerprint(config: Mapping[str, Any]) -> str:
    """A stable digest of everything that determines the shards' content."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(folder: Path, name: str) -> Path:
    path = folder / name
    if path.parent.resolve() != folder.resolve() or "/" in name or name.startswith("."):
        raise ValueError(f"refusing to write {name!r} outside {folder}")
    return path


def _temporary(path: Path) -> Path:
    """A hidden temporary name of this writer's own: a build interrupted on the driver can leave a Ray
    worker finishing the same shard while the rerun writes it too; they must not share a file."""
    return path.with_name(f".{path.name}.{os.getpid():x}-{secrets.token_hex(4)}.tmp")


def _failed(path: Path, error: OSError) -> WriteFailed:
    full = error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    reason = "the disk is full" if full else (error.strerror or str(error))
    return WriteFailed(error.errno or 0, f"could not write {path}: {reason}; finished shards are kept, and "
                                        "rerunning the same command after freeing space resumes")


def _atomic(path: Path, write: Any) -> None:
    """Run ``write(handle)`` into a temporary, fsync and rename onto ``path``; clean up on any failure."""
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _failed(path, error) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    text = json.dumps(payload, indent=1, sort_keys=True) + "\n"
    _atomic(path, lambda handle: handle.write(text.encode()))


def write_tar(out: Path, index: int, samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Write one shard atomically; every field value must be bytes (nothing is re-encoded).

    Members carry mtime 0, fixed owner and mode, and sorted field order, so the same samples
    always give the same bytes.

    Returns:
        ``name``, ``samples``, ``bytes`` and ``sha256`` of the finished tar.
    """
    final = _inside(out, shard_name(index))
    count = 0
    digest = hashlib.sha256()

    class _Hashing:
        def __init__(self, handle: Any) -> None:
            self.handle, self.abandoned = handle, False

        def write(self, data: bytes) -> int:
            if self.abandoned:  # a failed tar's finaliser flushing into the removed temporary
                return len(data)
            digest.update(data)
            return self.handle.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    def write(handle: Any) -> None:
        nonlocal count
        sink = _Hashing(handle)
        writer = wds.TarWriter(sink, encoder=False, mtime=0)
        try:
            for sample in samples:
                writer.write(dict(sample))
                count += 1
            writer.close()
        except BaseException:
            sink.abandoned = True
            raise

    _atomic(final, write)
    return {"name": final.name, "samples": count, "bytes": final.stat().st_size, "sha256": digest.hexdigest()}


def write_stats(out: Path, index: int, stats: Mapping[str, Any]) -> None:
    meta_dir(out).mkdir(exist_ok=True)
    write_json_atomic(_inside(meta_dir(out), stats_name(index)), {"schema": SCHEMA, **stats})


def _stats(out: Path, index: int) -> dict[str, Any] | None:
    try:
        stats = json.loads(stats_path(out, index).read_text())
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def completed(out: Path, indices: Iterable[int], config_fingerprint: str, threads: int = 4) -> dict[int, dict]:
    """The stats of the finished shards of this configuration among ``indices``.

    A shard is finished when its sidecar names this fingerprint and the tar's size *and sha256*
    equal the sidecar's; a tar edited after it was written is rebuilt, never copied into the
    manifest with a stale checksum.
    """

    def check(index: int) -> tuple[int, dict | None]:
        stats, tar = _stats(out, index), out / shard_name(index)
        if stats is None or stats.get("fingerprint") != config_fingerprint or not tar.is_file():
            return index, None
        if tar.stat().st_size != stats.get("bytes") or file_sha256(tar) != stats.get("sha256"):
            return index, None
        return index, stats

    with ThreadPoolExecutor(threads) as pool:
        return {i: s for i, s in pool.map(check, list(indices)) if s is not None}


def prepare(out: Path, config_fingerprint: str, overwrite: bool) -> None:
    """Create ``out``; refuse (or with ``overwrite`` clear) shards of another configuration; drop temporaries."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        meta_dir(out).mkdir(exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{out}: exists and is not a folder; choose another --out") from None
    own = [p for p in out.iterdir() if _OWN.match(p.name)] + [p for p in meta_dir(out).iterdir()
                                                              if _OWN_META.match(p.name)]
    for folder in (out, meta_dir(out)):
        for path in folder.iterdir():
            if _TEMPORARY.match(path.name):
                path.unlink()  # left by an interrupted or failed writer; always safe to delete
    if overwrite:
        for path in own:
            path.unlink()
        return
    found = set()
    try:
        manifest = read_manifest(out)
    except ManifestError:
        manifest = None  # rewritten at the end of this run
    if manifest is not None:
        found.add(manifest.get("fingerprint"))
    for path in meta_dir(out).glob("shard-*.stats.json"):
        try:
            found.add(json.loads(path.read_text()).get("fingerprint"))
        except (ValueError, AttributeError):
            path.unlink()
    found.discard(None)
    if found - {config_fingerprint}:
        raise ConfigMismatch(
            f"{out} holds shards of another configuration (fingerprint {sorted(found - {config_fingerprint})[0]}, "
            f"this run {config_fingerprint}); choose another --out, or pass --overwrite to replace them"
        )


def write_manifest(out: Path, payload: Mapping[str, Any]) -> Path:
    path = manifest_path(out)
    meta_dir(out).mkdir(exist_ok=True)
    write_json_atomic(path, {"schema": SCHEMA, **payload})
    return path
