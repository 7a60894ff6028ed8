"""Building WebDataset shards of dual-representation groups in parallel with Ray (the library
behind ``python -m pipelines.build_shards``).

The driver scans the source (in parallel, cached in ``scan.json``), plans every group
from the seed, and runs one Ray task per shard with a bounded number in flight; each task
degrades its groups with the ``degrade`` engine, writes ``shard-NNNNNN.tar`` atomically, then
its stats sidecar. Re-running the same command resumes: finished shards are kept.
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

import degrade
from datasets.content import View
from datasets.decoding import ImageError
from datasets.shardformat import SCAN, SCHEMA, BuildSpec, group_key, manifest_path, meta_dir, shard_name
from datasets.sources import load_uri, open_source
from degrade.pairs import GroupPlans

from . import png, shardio
from .groups import Content, plan_group, render
from .runner import Timer, run_tasks, start_ray

SCAN_CHUNK = 32


# --- scanning ------------------------------------------------------------------------------


def scan_entries(entries: list[dict[str, Any]], min_side: int) -> list[dict[str, Any]]:
    """Decode each entry's image once (inside the entry's ``root``): its size, or why it cannot be used."""
    for entry in entries:
        try:
            image = load_uri(entry["uri"], root=entry["root"])
        except ImageError as error:
            entry.update(ok=False, reason=str(error).removeprefix(f"{entry['uri']}: "))
            continue
        h, w = image.shape[-2:]
        entry.update(height=int(h), width=int(w), ok=min(h, w) >= min_side,
                     reason=None if min(h, w) >= min_side else f"{w}x{h} is smaller than the {min_side} px crop")
    return entries


_scan_chunk = ray.remote(num_cpus=1)(scan_entries)
SCAN_LOCAL = 256  # up to this many images are scanned on the driver's threads (no Ray task start-up)


def scan(source_spec: str, min_side: int, out: Path, window: int
         ) -> tuple[list[Content], list[dict[str, str]], list[float]]:
    """Usable contents of the source (decoded once, sizes recorded), the skipped inputs with
    reasons, and the mixture weights of its parts.

    File results are cached in ``out/scan.json`` by size and modification time, so a resumed build
    does not decode the source again; procedural content is rendered at ``min_side`` and needs no scan.
    """
    source = open_source(source_spec, min_side=min_side)
    cache_path = meta_dir(out) / SCAN
    try:
        cache = {e["uri"]: e for e in json.loads(cache_path.read_text())["entries"]}
    except (OSError, ValueError, KeyError, TypeError):
        cache = {}
    entries, todo = [], []
    for item in source:
        if item.path is None:  # procedural: always usable, at the crop size
            entries.append({"id": item.id, "uri": item.uri, "source": item.id, "part": item.part, "ok": True,
                            "height": min_side, "width": min_side})
            continue
        stat = item.path.stat()
        entry = {"id": item.id, "uri": item.uri, "source": item.cite or item.id, "part": item.part,
                 "root": str(item.root) if item.root else None,
                 "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "min_side": min_side}
        cached = cache.get(entry["uri"])
        if cached and all(cached.get(k) == entry[k] for k in ("id", "root", "bytes", "mtime_ns", "min_side", "part")):
            entries.append(cached)
        else:
            entries.append(entry)
            todo.append(entry)
    step = max(1, min(SCAN_CHUNK, math.ceil(len(todo) / window)))
    chunks = [todo[i : i + step] for i in range(0, len(todo), step)]
    if len(todo) <= SCAN_LOCAL:  # decoding releases the GIL: threads are enough, and start at once
        with ThreadPoolExecutor(max(1, window // 2)) as pool:
            results = list(pool.map(lambda chunk: scan_entries(chunk, min_side), chunks))
        scanned = {e["uri"]: e for result in results for e in result}
    else:
        outcome = run_tasks(lambda i: _scan_chunk.remote(chunks[i], min_side), list(range(len(chunks))),
                            window, units=lambda i: len(chunks[i]), unit="image", description="scanning")
        scanned = {e["uri"]: e for result in outcome.results.values() for e in result}
        for i, error in outcome.failures.items():
            for e in chunks[i]:
                scanned[e["uri"]] = {**e, "ok": False, "reason": error}
    entries = [scanned.get(e["uri"], e) for e in entries]
    shardio.write_json_atomic(cache_path, {"entries": [e for e in entries if "bytes" in e]})
    contents = [Content(e["id"], e["uri"], e["source"], e["height"], e["width"], e["part"], e.get("root"))
                for e in entries if e.get("ok")]
    skipped = [{"path": e["source"], "reason": e["reason"]} for e in entries if not e.get("ok")]
    skipped += [{"path": r.cite, "reason": r.reason} for r in source.rejected if r.kind == "skipped"]
    return contents, skipped, source.weights()


# --- one shard -------------------------------------------------------------------------------


def encode_png(image: torch.Tensor, level: int, filters: str = png.DEFAULT_FILTERS) -> bytes:
    """Lossless PNG bytes of a (3, H, W) uint8 RGB tensor (:mod:`pipelines.png`)."""
    return png.encode_png(image.permute(1, 2, 0).numpy(), level, filters)


@functools.lru_cache(maxsize=16)
def _source_image(uri: str, root: str | None, size: int, stamp: tuple) -> torch.Tensor:
    """Decoded sources are kept per worker process: consecutive shards mostly reuse contents."""
    return load_uri(uri, root=root, size=size)


def load_source(uri: str, root: str | None, size: int) -> torch.Tensor:
    """A source image by its uri (a file is reloaded when it changes on disk)."""
    if uri.startswith("synthetic://"):
        return load_uri(uri, size=size)
    stat = os.stat(uri)
    return _source_image(uri, root, size, (stat.st_size, stat.st_mtime_ns))


def write_group_shard(out: Path, index: int, metas: list[dict], sources: dict[str, tuple[str, str | None]],
                      spec: BuildSpec, config_fingerprint: str) -> dict[str, Any]:
    """Degrade, encode and write one shard; returns its stats (also written as the sidecar).

    ``sources`` maps each content id the shard needs to its uri and the folder it must be read inside.
    """
    timer = Timer()
    with timer("load"):
        images = {cid: load_source(*sources[cid], spec.size) for cid in {m[s]["id"] for m in metas for s in "ab"}}
        refs_a = torch.stack([View.from_dict(m["a"]).apply(images[m["a"]["id"]]) for m in metas])
        refs_b = torch.stack([View.from_dict(m["b"]).apply(images[m["b"]["id"]]) for m in metas])
    with timer("degrade"):
        plans = [GroupPlans.from_dict(m["plans"]) for m in metas]
        x1, x2, y = render(refs_a, refs_b, plans, spec.device, spec.render_batch)
    with timer("encode"):
        samples = []
        for i, meta in enumerate(metas):
            full = {"schema": SCHEMA, **meta, "engine": degrade.ENGINE_VERSION, "device": spec.device,
                    "render_batch": spec.render_batch}
            encode = functools.partial(encode_png, level=spec.png_level)
            samples.append({
                "__key__": group_key(meta["index"]),
                "ref_a.png": encode(refs_a[i]), "x1.png": encode(x1[i]), "x2.png": encode(x2[i]),
                "ref_b.png": encode(refs_b[i]), "y.png": encode(y[i]),
                "meta.json": json.dumps(full, sort_keys=True).encode(),
            })
    with timer("write"):
        written = shardio.write_tar(out, index, samples)
    stats = {**written, "index": index, "fingerprint": config_fingerprint, "groups": len(metas),
             "keys": [group_key(metas[0]["index"]), group_key(metas[-1]["index"])],
             "seconds": {k: round(v, 4) for k, v in timer.seconds.items()}}
    shardio.write_stats(out, index, stats)
    return stats


@ray.remote
def _remote_shard(*args: Any) -> dict[str, Any]:
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    return write_group_shard(*args)


# --- the whole build ----------------------------------------------------------------------------


@dataclass
class BuildReport:
    out: Path
    fingerprint: str
    built: list[int]
    kept: list[int]
    failed: dict[int, str]
    skipped_inputs: list[dict[str, str]]
    groups: int
    built_groups: int
    seconds: float
    first_shard_s: float | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def build(spec: BuildSpec, out: str | os.PathLike = "shards", *, workers: int | None = None,
          ray_address: str | None = None, overwrite: bool = False, retries: int = 3,
          dashboard: bool = False) -> BuildReport:
    """Build (or finish building) the shards of ``spec`` in ``out``.

    Raises:
        ValueError: too few usable images, or ``out`` is not a folder.
        ConfigMismatch: ``out`` holds shards of another configuration (and not ``overwrite``).
        WriteFailed: the manifest could not be written (finished shards are kept).
    """
    start = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; choose another --out")
    if overwrite:
        shardio.prepare(out, "", overwrite=True)
    meta_dir(out).mkdir(parents=True, exist_ok=True)
    cpus = start_ray(ray_address, workers, dashboard=dashboard)
    window = 2 * cpus
    contents, skipped, weights = scan(spec.source, spec.size, out, window)
    if len(contents) < 2:
        raise ValueError(f"{spec.source}: {len(contents)} usable image(s) of at least {spec.size} px; need 2. "
                         f"Skipped: {skipped[:5]}")
    for k, weight in enumerate(weights):
        if weight > 0 and not any(c.part == k for c in contents):
            raise ValueError(f"{spec.source}: part {k + 1} of the source list has no usable image of at least "
                             f"{spec.size} px, so its weight cannot be honoured; fix or drop it. Skipped: {skipped[:5]}")
    content_list = [[c.id, c.source, c.height, c.width, c.part] for c in contents]
    fp = shardio.fingerprint({**spec.to_dict(), "source": None, "contents": content_list, "weights": weights,
                              "engine": degrade.ENGINE_VERSION, "schema": SCHEMA})
    shardio.prepare(out, fp, overwrite=False)
    kept = shardio.completed(out, range(spec.shards), fp)
    todo = [i for i in range(spec.shards) if i not in kept]
    sources = {c.id: (c.uri, c.root) for c in contents}
    gpus = 1 if spec.device.startswith("cuda") else 0
    first: list[float] = []

    def submit(index: int) -> ray.ObjectRef:
        metas = [plan_group(g, contents, seed=spec.seed, size=spec.size, preset=spec.preset, policy=spec.policy,
                            augment=spec.augment, weights=weights) for g in spec.shard_groups(index)]
        needed = {m[side]["id"]: sources[m[side]["id"]] for m in metas for side in ("a", "b")}
        return _remote_shard.options(num_cpus=1, num_gpus=gpus, max_retries=retries, retry_exceptions=True).remote(
            out, index, metas, needed, spec, fp)

    def on_result(index: int, stats: dict) -> None:
        if not first:
            first.append(time.perf_counter() - start)

    outcome = run_tasks(submit, todo, window, units=lambda i: len(spec.shard_groups(i)), unit="group",
                        description="building shards", on_result=on_result)
    finished = {**kept, **outcome.results}
    shards = [{k: finished[i][k] for k in ("name", "samples", "bytes", "sha256")} for i in sorted(finished)]
    shardio.write_manifest(out, {
        "kind": "groups", "fingerprint": fp, "config": spec.to_dict(), "engine": degrade.ENGINE_VERSION,
        "contents": content_list, "weights": weights,
        "shards": shards, "groups": sum(s["samples"] for s in shards),
        "skipped_inputs": skipped,
        "failed_shards": [{"name": shard_name(i), "error": e} for i, e in sorted(outcome.failures.items())],
    })
    return BuildReport(out, fp, sorted(outcome.results), sorted(kept), dict(outcome.failures), skipped,
                       sum(s["samples"] for s in shards), sum(r["samples"] for r in outcome.results.values()),
                       time.perf_counter() - start, first[0] if first else None)


def summary(report: BuildReport) -> str:
    lines = [
        f"{report.out}: {len(report.built) + len(report.kept)} shards, {report.groups} groups "
        f"({len(report.built)} shards built now, {len(report.kept)} already done) in {report.seconds:.1f} s"
        + (f", {report.built_groups / report.seconds:.1f} groups/s including start-up" if report.built else "")
        + (f"; first shard after {report.first_shard_s:.1f} s" if report.first_shard_s is not None else ""),
        f"manifest: {manifest_path(report.out)}",
    ]
    if report.skipped_inputs:
        lines.append(f"skipped {len(report.skipped_inputs)} input image(s) (listed in the manifest):")
        lines += [f"  {s['path']}: {s['reason']}" for s in report.skipped_inputs[:10]]
    if report.failed:
        lines.append(f"FAILED {len(report.failed)} shard(s); the others are kept. Fix the cause and rerun the same "
                     "command to build only the missing ones:")
        lines += [f"  {shard_name(i)}: {e}" for i, e in sorted(report.failed.items())]
    return "\n".join(lines)
