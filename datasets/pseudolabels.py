"""Pseudo-labels of a group-shard folder, computed once per shard and teacher, kept in its ``_meta/``.

A full-reference teacher costs far more than decoding the images it scores (HaarPSI + MS-SSIM:
about 80 ms per 256 px image on one core, several times a model step), and the labels of a
shard never change. So they are computed once, in parallel, and written to
``_meta/pseudo-<teacher>.json``, keyed by each shard's sha256 from the manifest: a rebuilt or
edited shard gets new labels, the others are reused. Loaders read the file; a label missing from
it is computed on the spot, so the cache only ever saves time. The file is rewritten as shards are
done (at most every :data:`SAVE_EVERY_S` seconds), so an interrupted run keeps what it computed.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .shardformat import check_group, iter_samples, meta_dir, read_manifest

VERSION = 1
SAVE_EVERY_S = 20.0  # how often a long labelling run writes what it has so far
VIEWS = (("x1", "ref_a"), ("x2", "ref_a"), ("y", "ref_b"))


def cache_path(root: str | os.PathLike, teacher: str) -> Path:
    return meta_dir(root) / f"pseudo-{teacher}.json"


def label_key(group: str, view: str) -> str:
    return f"{group}/{view}"


def label_shard(path: str, teacher: str) -> dict[str, float]:
    """The teacher's label of every x1, x2 and y of one shard, on one torch thread (the shards are labelled
    side by side; in the calling process the thread count is restored after, so what runs next there,
    such as the head's features, runs as it would have)."""
    from degrade import torch_threads

    from .decoding import decode
    from .teachers import teacher as find

    with torch_threads(1):
        score = find(teacher)
        labels = {}
        for sample in iter_samples(path):
            key = sample["__key__"]
            check_group(sample)
            images = {name: decode(sample[f"{name}.png"], f"{path}:{key}.{name}.png")
                      for name in ("x1", "x2", "y", "ref_a", "ref_b")}
            for view, ref in VIEWS:
                labels[label_key(key, view)] = score(images[view], images[ref])
        return labels


def _read_cache(path: Path, teacher: str) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or data.get("teacher") != teacher:
        return {}
    shards = data.get("shards")
    return shards if isinstance(shards, dict) else {}


def _listed(root: str | os.PathLike) -> dict[str, str]:
    """Shard name -> sha256, as the manifest lists them (nothing without a manifest)."""
    manifest = read_manifest(root) or {"shards": []}
    return {s["name"]: s["sha256"] for s in manifest["shards"] if s.get("name") and s.get("sha256")}


def prepare(root: str | os.PathLike, teacher: str, workers: int = 1) -> Path | None:
    """Compute the labels of every shard the cache lacks (``workers`` processes) and write the cache.

    Returns the cache's path, or None for a folder without a manifest (nothing to key labels by).
    """
    from .progress import progress

    listed = _listed(root)
    if not listed:
        return None
    path = cache_path(root, teacher)
    cached = _read_cache(path, teacher)
    shards = {name: entry for name, entry in cached.items()
              if name in listed and isinstance(entry, dict) and entry.get("sha256") == listed[name]}
    todo = sorted(name for name in listed if name not in shards)
    if not todo and len(shards) == len(cached):
        return path
    saved = [time.monotonic()]

    def save() -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps({"version": VERSION, "teacher": teacher,
                                         "shards": dict(sorted(shards.items()))}, sort_keys=True))
        os.replace(temporary, path)
        saved[0] = time.monotonic()

    with progress(total=len(todo), unit="shard", desc=f"pseudo-labels ({teacher})", disable=not todo) as bar:
        def done(name: str, labels: dict[str, float]) -> None:
            shards[name] = {"sha256": listed[name], "labels": labels}
            bar.update(1)
            if time.monotonic() - saved[0] >= SAVE_EVERY_S:
                save()

        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
                futures = {name: pool.submit(label_shard, str(Path(root) / name), teacher) for name in todo}
                for name in todo:
                    done(name, futures[name].result())
        else:
            for name in todo:
                done(name, label_shard(str(Path(root) / name), teacher))
    save()
    return path


def load(root: str | os.PathLike, teacher: str) -> Mapping[str, float]:
    """Every cached label that still belongs to the folder's shards (``label_key`` -> label)."""
    listed = _listed(root)
    labels: dict[str, float] = {}
    for name, entry in _read_cache(cache_path(root, teacher), teacher).items():
        if listed.get(name) == entry.get("sha256") and isinstance(entry.get("labels"), dict):
            labels.update({k: float(v) for k, v in entry["labels"].items() if isinstance(v, (int, float))})
    return labels
