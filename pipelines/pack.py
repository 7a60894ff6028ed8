"""Packing an IQA dataset (read by ``datasets.iqa``) into WebDataset shards, in parallel with Ray
(the library behind ``python -m pipelines.pack_iqa``).

Each sample holds the image's original bytes (``image.jpg``, ``image.png``...; BMP is
transcoded to PNG, which is lossless: nothing is ever re-encoded lossily), the reference's
bytes when the dataset has one (``ref.<ext>``, duplicated into each sample so streaming needs
no join) and ``label.json``: raw and normalised score, scale, content id, distortion, level,
official side, and for each of the ``--splits`` seeded content-disjoint splits the side the
record is on. Same atomic writes, resume and manifest as ``build_shards``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import ray

from datasets import iqa
from datasets.iqa import DatasetError, Record
from datasets.shardformat import IQA_LABEL, SCHEMA, sanitize_key, shard_name

from . import shardio
from .runner import run_tasks, start_ray


@dataclass(frozen=True)
class PackConfig:
    dataset: str
    per_shard: int = 256
    splits: int = 10
    seed: int = 0
    train: float = 0.8
    refs: bool = True


def original_bytes(path: Path) -> tuple[str, bytes]:
    """The file's bytes and field extension; BMP (and other raw formats) become lossless PNG."""
    data = path.read_bytes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jpg", "jpeg", "png", "webp"):
        return ("jpg" if suffix == "jpeg" else suffix), data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a decodable image")
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"{path}: PNG transcoding failed")
    return "png", png.tobytes()


def write_iqa_shard(out: Path, index: int, entries: list[dict[str, Any]], config_fingerprint: str) -> dict[str, Any]:
    samples = []
    for entry in entries:
        label = entry["label"]
        ext, image = original_bytes(Path(entry["image_path"]))
        sample = {"__key__": entry["key"], f"image.{ext}": image}
        if entry["ref_path"] is not None:
            ref_ext, ref = original_bytes(Path(entry["ref_path"]))
            sample[f"ref.{ref_ext}"] = ref
        sample[IQA_LABEL] = json.dumps({"schema": SCHEMA, **label}, sort_keys=True).encode()
        samples.append(sample)
    written = shardio.write_tar(out, index, samples)
    stats = {**written, "index": index, "fingerprint": config_fingerprint, "keys": [entries[0]["key"], entries[-1]["key"]]}
    shardio.write_stats(out, index, stats)
    return stats


_remote_shard = ray.remote(write_iqa_shard)


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def entries_for(table: iqa.Table, config: PackConfig) -> list[dict[str, Any]]:
    """One entry per record, sorted by image path: key, file paths and the label."""
    folds = table.folds(config.splits, config.seed, config.train) if config.splits else {}
    scale = asdict(table.scale)
    entries = []
    for record in sorted(table, key=lambda r: _relative(r.image, table.root)):
        rel = _relative(record.image, table.root)
        entries.append({
            "key": sanitize_key(f"{table.dataset}_{Path(rel).with_suffix('').as_posix()}"),
            "image_path": str(record.image),
            "ref_path": str(record.ref) if (record.ref is not None and config.refs) else None,
            "label": _label(record, table, rel, scale, folds),
        })
    return entries


def _label(record: Record, table: iqa.Table, rel: str, scale: dict, folds: dict[str, list[str]]) -> dict[str, Any]:
    return {"dataset": table.dataset, "image": rel, "ref": _relative(record.ref, table.root),
            "score": record.score, "quality": record.quality, "scale": scale, "content": record.content,
            "distortion": record.distortion, "level": record.level, "official": record.official,
            "folds": folds.get(record.content, [])}


def pack(name: str, root: str | Path, out: str | Path, config: PackConfig | None = None, *, strict: bool = True,
         options: dict[str, Any] | None = None, workers: int | None = None, ray_address: str | None = None,
         overwrite: bool = False, retries: int = 3) -> dict[str, Any]:
    """Pack a dataset; returns the manifest (also written to ``out/manifest.json``)."""
    start = time.perf_counter()
    config = config or PackConfig(name)
    table = iqa.load(name, root, strict=strict, **(options or {}))
    entries = entries_for(table, config)
    keys = [e["key"] for e in entries]
    if len(set(keys)) != len(keys):
        raise DatasetError(f"{name}: two images map to the same sample key; keys are built from relative paths")
    fp = shardio.fingerprint({**asdict(config), "options": options or {}, "schema": SCHEMA,
                              "records": [(e["key"], e["label"]["score"]) for e in entries]})
    out = Path(out)
    shardio.prepare(out, fp, overwrite)
    n_shards = math.ceil(len(entries) / config.per_shard)
    chunk = lambda i: entries[i * config.per_shard : (i + 1) * config.per_shard]  # noqa: E731
    kept = {i: s for i in range(n_shards) if (s := shardio.completed(out, i, fp)) is not None}
    cpus = start_ray(ray_address, workers)
    outcome = run_tasks(
        lambda i: _remote_shard.options(num_cpus=1, max_retries=retries, retry_exceptions=True).remote(out, i, chunk(i), fp),
        [i for i in range(n_shards) if i not in kept], 2 * cpus, units=lambda i: len(chunk(i)), unit="image",
        description=f"packing {name}")
    finished = {**kept, **outcome.results}
    manifest = {
        "kind": "iqa", "dataset": name, "fingerprint": fp, "config": asdict(config), "scale": asdict(table.scale),
        "records": len(entries), "contents": len(table.contents()),
        "shards": [{k: finished[i][k] for k in ("name", "samples", "bytes", "sha256")} for i in sorted(finished)],
        "skipped_inputs": [str(p) for p in table.problems],
        "failed_shards": [{"name": shard_name(i), "error": e} for i, e in sorted(outcome.failures.items())],
        "seconds": round(time.perf_counter() - start, 2),
    }
    shardio.write_manifest(out, manifest)
    return manifest
