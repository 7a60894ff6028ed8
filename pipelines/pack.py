"""Packing an IQA dataset (read by ``datasets.iqa``) into WebDataset shards, in parallel with Ray
(the library behind ``python -m pipelines.pack_iqa``).

Each sample holds the image under one key for the whole dataset: ``image.jpg`` (the original
bytes) when every image of the dataset is a JPEG, else ``image.png`` (PNG files as they are, other
formats transcoded to PNG, which is lossless: nothing is ever re-encoded lossily), so every sample
has the same fields and tools that read the folder as a table (Ray Data) see one column. The
reference follows the same rule (``ref.<ext>``, duplicated into each sample so streaming needs no
join), and ``label.json`` holds the raw and normalised score, scale, content id, distortion,
level, official side, and for each of the ``--splits`` seeded content-disjoint splits the side the
record is on. Every image is decoded once before it is packed (within the pixel limit): a file
that is not an image is left out and listed, with the reason, in the manifest. Same atomic
writes, resume and manifest as ``build_shards``.
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
from datasets.decoding import ImageError, check_file, decode, read_bytes
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


def stored_bytes(path: Path, ext: str) -> bytes:
    """The bytes to store for ``path`` under extension ``ext`` (``jpg``: as they are; ``png``: PNG files as
    they are, anything else decoded and written as lossless PNG), after checking that it decodes.

    Raises:
        ImageError: the file is not a readable image (or is above the pixel limit).
    """
    data = read_bytes(path)
    image = decode(data, str(path))  # refuses non-images, bombs and truncated files
    if ext == "jpg" or data[:8] == b"\x89PNG\r\n\x1a\n":
        return data
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image.permute(1, 2, 0).numpy()[:, :, ::-1]))
    if not ok:
        raise ImageError(f"{path}: PNG transcoding failed")
    return png.tobytes()


def dataset_extension(paths: list[Path]) -> str:
    """``jpg`` when every file is a JPEG (kept as it is), else ``png`` (lossless for everything)."""
    return "jpg" if paths and all(p.suffix.lower() in (".jpg", ".jpeg") for p in paths) else "png"


def write_iqa_shard(out: Path, index: int, entries: list[dict[str, Any]], config_fingerprint: str,
                    root: str, ext: str) -> dict[str, Any]:
    samples, skipped = [], []
    for entry in entries:
        try:
            sample = {"__key__": entry["key"], f"image.{ext}": stored_bytes(check_file(entry["image_path"], root), ext)}
            if entry["ref_path"] is not None:
                sample[f"ref.{ext}"] = stored_bytes(check_file(entry["ref_path"], root), ext)
        except ImageError as error:
            skipped.append({"path": entry["label"]["image"], "reason": str(error)})
            continue
        sample[IQA_LABEL] = json.dumps({"schema": SCHEMA, **entry["label"]}, sort_keys=True).encode()
        samples.append(sample)
    if not samples:
        raise ImageError(f"shard {index}: none of its {len(entries)} images could be packed: {skipped[0]['reason']}")
    written = shardio.write_tar(out, index, samples)
    stats = {**written, "index": index, "fingerprint": config_fingerprint, "skipped": skipped,
             "keys": [entries[0]["key"], entries[-1]["key"]]}
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
    """Pack a dataset; returns the manifest (also written to ``out/_meta/manifest.json``)."""
    start = time.perf_counter()
    config = config or PackConfig(name)
    table = iqa.load(name, root, strict=strict, **(options or {}))
    entries = entries_for(table, config)
    keys = [e["key"] for e in entries]
    if len(set(keys)) != len(keys):
        raise DatasetError(f"{name}: two images map to the same sample key; keys are built from relative paths")
    parsed = asdict(iqa.parse_options(name, options))
    fp = shardio.fingerprint({**asdict(config), "options": parsed, "schema": SCHEMA,
                              "records": [(e["key"], e["label"]["score"]) for e in entries]})
    out = Path(out)
    shardio.prepare(out, fp, overwrite)
    n_shards = math.ceil(len(entries) / config.per_shard)
    chunk = lambda i: entries[i * config.per_shard : (i + 1) * config.per_shard]  # noqa: E731
    kept = shardio.completed(out, range(n_shards), fp)
    ext = dataset_extension([Path(e["image_path"]) for e in entries])
    root = str(table.root.resolve() if table.root.is_dir() else table.root.parent.resolve())
    cpus = start_ray(ray_address, workers)
    outcome = run_tasks(
        lambda i: _remote_shard.options(num_cpus=1, max_retries=retries, retry_exceptions=True).remote(out, i, chunk(i), fp, root, ext),
        [i for i in range(n_shards) if i not in kept], 2 * cpus, units=lambda i: len(chunk(i)), unit="image",
        description=f"packing {name}")
    finished = {**kept, **outcome.results}
    manifest = {
        "kind": "iqa", "dataset": name, "fingerprint": fp, "config": asdict(config), "scale": asdict(table.scale),
        "records": len(entries), "contents": len(table.contents()),
        "shards": [{k: finished[i][k] for k in ("name", "samples", "bytes", "sha256")} for i in sorted(finished)],
        "image_field": f"image.{ext}",
        "skipped_inputs": [str(p) for p in table.problems] + [f"{s['path']}: {s['reason']}" for i in sorted(finished)
                                                               for s in finished[i].get("skipped", [])],
        "failed_shards": [{"name": shard_name(i), "error": e} for i, e in sorted(outcome.failures.items())],
        "seconds": round(time.perf_counter() - start, 2),
    }
    shardio.write_manifest(out, manifest)
    return manifest
