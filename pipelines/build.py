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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import ray
import torch

import degrade
from datasets.shardformat import SCHEMA, group_key, shard_name
from datasets.sources import decode_checked, open_source
from degrade.pairs import POLICIES, GroupPlans
from degrade.sampling import PRESETS

from . import shardio
from .groups import Content, crop, plan_group, render
from .runner import Timer, run_tasks, start_ray

SCAN_CHUNK = 32
PNG_LEVEL = 3


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides the shards' content (the fingerprint is taken over it and the contents)."""

    source: str = "samples"
    groups: int = 512
    groups_per_shard: int = 32
    size: int = 256
    preset: str = "arniqa"
    policy: str = "dri"
    seed: int = 0
    device: str = "cpu"
    render_batch: int = 16

    def __post_init__(self) -> None:
        if self.groups < 1 or self.groups_per_shard < 1 or self.size < 8 or self.render_batch < 1:
            raise ValueError("groups, groups_per_shard and render_batch must be >= 1 and size >= 8")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose from {POLICIES}")

    @property
    def shards(self) -> int:
        return math.ceil(self.groups / self.groups_per_shard)

    def shard_groups(self, index: int) -> range:
        return range(index * self.groups_per_shard, min(self.groups, (index + 1) * self.groups_per_shard))


# --- scanning ------------------------------------------------------------------------------


@ray.remote(num_cpus=1)
def _scan_chunk(entries: list[dict[str, Any]], min_side: int) -> list[dict[str, Any]]:
    for entry in entries:
        try:
            image = decode_checked(Path(entry["path"]).read_bytes(), entry["path"])
        except (OSError, ValueError) as error:
            entry.update(ok=False, reason=str(error).removeprefix(f"{entry['path']}: "))
            continue
        h, w = image.shape[-2:]
        entry.update(height=int(h), width=int(w), ok=min(h, w) >= min_side,
                     reason=None if min(h, w) >= min_side else f"{w}x{h} is smaller than the {min_side} px crop")
    return entries


def scan(source_spec: str, min_side: int, out: Path, window: int) -> tuple[list[Content], list[dict[str, str]]]:
    """Usable contents of the source (decoded once, sizes recorded) and the skipped inputs with reasons.

    Results are cached in ``out/scan.json`` by file size and modification time, so a resumed
    build does not decode the source again.
    """
    source = open_source(source_spec)
    root = getattr(source, "root", None)
    cache_path = out / "scan.json"
    try:
        cache = {e["path"]: e for e in json.loads(cache_path.read_text())["entries"]}
    except (OSError, ValueError, KeyError):
        cache = {}
    entries, todo = [], []
    for item in source:
        stat = item.path.stat()
        rel = item.path.relative_to(root).as_posix() if root is not None else f"samples/{item.path.name}"
        entry = {"id": item.id, "path": str(item.path), "source": rel, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        cached = cache.get(entry["path"])
        if cached and all(cached.get(k) == entry[k] for k in ("bytes", "mtime_ns")) and cached.get("min_side") == min_side:
            entries.append(cached)
        else:
            entry["min_side"] = min_side
            entries.append(entry)
            todo.append(entry)
    step = max(1, min(SCAN_CHUNK, math.ceil(len(todo) / window)))
    chunks = [todo[i : i + step] for i in range(0, len(todo), step)]
    outcome = run_tasks(lambda i: _scan_chunk.remote(chunks[i], min_side), list(range(len(chunks))), window,
                        units=lambda i: len(chunks[i]), unit="image", description="scanning")
    scanned = {e["path"]: e for result in outcome.results.values() for e in result}
    for i, error in outcome.failures.items():
        for e in chunks[i]:
            scanned[e["path"]] = {**e, "ok": False, "reason": error}
    entries = [scanned.get(e["path"], e) for e in entries]
    shardio.write_json_atomic(cache_path, {"entries": entries})
    contents = [Content(e["id"], e["path"], e["source"], e["height"], e["width"]) for e in entries if e.get("ok")]
    skipped = [{"path": e["source"], "reason": e["reason"]} for e in entries if not e.get("ok")]
    return contents, skipped


# --- one shard -------------------------------------------------------------------------------


def encode_png(image: torch.Tensor) -> bytes:
    """Lossless PNG bytes of a (3, H, W) uint8 RGB tensor."""
    bgr = np.ascontiguousarray(image.permute(1, 2, 0).numpy()[:, :, ::-1])
    ok, buffer = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


@functools.lru_cache(maxsize=16)
def _source_image(path: str, size: int, mtime_ns: int) -> torch.Tensor:
    """Decoded sources are kept per worker process: consecutive shards mostly reuse contents."""
    return decode_checked(Path(path).read_bytes(), path)


def load_source(path: str) -> torch.Tensor:
    stat = os.stat(path)
    return _source_image(path, stat.st_size, stat.st_mtime_ns)


def write_group_shard(out: Path, index: int, metas: list[dict], paths: dict[str, str], config: BuildConfig,
                      config_fingerprint: str) -> dict[str, Any]:
    """Degrade, encode and write one shard; returns its stats (also written as the sidecar)."""
    timer = Timer()
    with timer("load"):
        images: dict[str, torch.Tensor] = {}
        for content_id in {m[side]["id"] for m in metas for side in ("a", "b")}:
            images[content_id] = load_source(paths[content_id])
        refs_a = torch.stack([crop(images[m["a"]["id"]], m["a"]["box"]) for m in metas])
        refs_b = torch.stack([crop(images[m["b"]["id"]], m["b"]["box"]) for m in metas])
    with timer("degrade"):
        plans = [GroupPlans.from_dict(m["plans"]) for m in metas]
        x1, x2, y = render(refs_a, refs_b, plans, config.device, config.render_batch)
    with timer("encode"):
        samples = []
        for i, meta in enumerate(metas):
            full = {"schema": SCHEMA, **meta, "engine": degrade.__version__, "device": config.device,
                    "render_batch": config.render_batch}
            samples.append({
                "__key__": group_key(meta["index"]),
                "ref_a.png": encode_png(refs_a[i]), "x1.png": encode_png(x1[i]), "x2.png": encode_png(x2[i]),
                "ref_b.png": encode_png(refs_b[i]), "y.png": encode_png(y[i]),
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

    @property
    def ok(self) -> bool:
        return not self.failed


def build(config: BuildConfig, out: str | os.PathLike = "shards", *, workers: int | None = None,
          ray_address: str | None = None, overwrite: bool = False, retries: int = 3) -> BuildReport:
    """Build (or finish building) the shards of ``config`` in ``out``."""
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        shardio.prepare(out, "", overwrite=True)
    cpus = start_ray(ray_address, workers)
    window = 2 * cpus
    contents, skipped = scan(config.source, config.size, out, window)
    if len(contents) < 2:
        raise ValueError(f"{config.source}: {len(contents)} usable image(s) of at least {config.size} px; need 2. "
                         f"Skipped: {skipped[:5]}")
    content_digest = [(c.id, c.source, c.height, c.width) for c in contents]
    fp = shardio.fingerprint({**asdict(config), "source": None, "contents": content_digest,
                              "engine": degrade.__version__, "schema": SCHEMA})
    shardio.prepare(out, fp, overwrite=False)
    kept = {i: s for i in range(config.shards) if (s := shardio.completed(out, i, fp)) is not None}
    todo = [i for i in range(config.shards) if i not in kept]
    paths = {c.id: c.path for c in contents}
    gpus = 1 if config.device.startswith("cuda") else 0

    def submit(index: int) -> ray.ObjectRef:
        metas = [plan_group(g, contents, seed=config.seed, size=config.size, preset=config.preset,
                            policy=config.policy) for g in config.shard_groups(index)]
        needed = {m[side]["id"]: paths[m[side]["id"]] for m in metas for side in ("a", "b")}
        return _remote_shard.options(num_cpus=1, num_gpus=gpus, max_retries=retries, retry_exceptions=True).remote(
            out, index, metas, needed, config, fp)

    outcome = run_tasks(submit, todo, window, units=lambda i: len(config.shard_groups(i)), unit="group",
                        description="building shards")
    finished = {**kept, **outcome.results}
    shards = [{k: finished[i][k] for k in ("name", "samples", "bytes", "sha256")} for i in sorted(finished)]
    shardio.write_manifest(out, {
        "kind": "groups", "fingerprint": fp, "config": asdict(config), "engine": degrade.__version__,
        "shards": shards, "groups": sum(s["samples"] for s in shards),
        "skipped_inputs": skipped,
        "failed_shards": [{"name": shard_name(i), "error": e} for i, e in sorted(outcome.failures.items())],
    })
    return BuildReport(out, fp, sorted(outcome.results), sorted(kept), dict(outcome.failures), skipped,
                       sum(s["samples"] for s in shards), sum(r["samples"] for r in outcome.results.values()),
                       time.perf_counter() - start)


def summary(report: BuildReport) -> str:
    lines = [
        f"{report.out}: {len(report.built) + len(report.kept)} shards, {report.groups} groups "
        f"({len(report.built)} shards built now, {len(report.kept)} already done) in {report.seconds:.1f} s"
        + (f", {report.built_groups / report.seconds:.1f} groups/s including start-up" if report.built else ""),
        f"manifest: {report.out / 'manifest.json'}",
    ]
    if report.skipped_inputs:
        lines.append(f"skipped {len(report.skipped_inputs)} input image(s) (listed in the manifest):")
        lines += [f"  {s['path']}: {s['reason']}" for s in report.skipped_inputs[:10]]
    if report.failed:
        lines.append(f"FAILED {len(report.failed)} shard(s); the others are kept. Fix the cause and rerun the same "
                     "command to build only the missing ones:")
        lines += [f"  {shard_name(i)}: {e}" for i, e in sorted(report.failed.items())]
    return "\n".join(lines)
