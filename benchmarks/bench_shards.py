"""Shard building: groups/s per Ray worker, its PNG level, its scaling, and where a worker's time goes.

Builds the same shards (built-in photos, the default preset and policy) in one run:

* once per PNG compression level with one Ray worker: groups/s and bytes per group;
* at the default level with 1 and W workers: the speedup;
* PNG encoding alone, per row-filter choice and against OpenCV's encoder, on the images of a
  group (pristine and degraded crops): milliseconds and bytes per image;

timing ``build`` (scan included) after Ray and its worker processes have started, and reporting
the time to the first finished shard. Stage shares come from the shards' stats sidecars. Writes
``benchmarks/results/shards.json`` and its BENCHMARKS.md section.

    python benchmarks/bench_shards.py [--groups 384] [--workers 2] [--levels 0 1 3] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import describe, interleaved_times, machine, update_section, write_json  # noqa: E402
from datasets.shardformat import BuildSpec, meta_dir  # noqa: E402
from pipelines import png  # noqa: E402
from pipelines.build import build  # noqa: E402
from pipelines.runner import start_ray  # noqa: E402


def timed_builds(specs: list[BuildSpec], workers: int, repeats: int) -> list[dict]:
    """Build each spec ``repeats`` times, in interleaved rounds, on one local Ray of ``workers`` CPUs:
    the median rate, bytes, first shard and stage seconds of each (a slow spell of this shared machine
    falls on every spec alike rather than on whichever ran then)."""
    start_ray(None, workers)
    runs: list[list[dict]] = [[] for _ in specs]
    try:
        with tempfile.TemporaryDirectory() as warm:  # start and import the worker processes first
            build(BuildSpec(groups=4 * workers, per_shard=2, size=specs[0].size), warm)
        for _ in range(repeats):
            for k, spec in enumerate(specs):
                with tempfile.TemporaryDirectory() as out:
                    start = time.perf_counter()
                    report = build(spec, out)
                    seconds = time.perf_counter() - start
                    assert report.ok, report.failed
                    stages: dict[str, float] = {}
                    for path in meta_dir(out).glob("*.stats.json"):
                        for stage, value in json.loads(path.read_text())["seconds"].items():
                            stages[stage] = stages.get(stage, 0.0) + value
                    size = sum(p.stat().st_size for p in Path(out).glob("*.tar"))
                runs[k].append({"png_level": spec.png_level, "workers": workers,
                                "groups_per_second": spec.groups / seconds, "bytes_per_group": size / spec.groups,
                                "first_shard_s": report.first_shard_s, "stage_seconds": stages})
    finally:
        ray.shutdown()
    results = []
    for spec_runs in runs:
        ordered = sorted(spec_runs, key=lambda r: r["groups_per_second"])
        median = ordered[len(ordered) // 2]
        results.append({**median, "all_groups_per_second": [r["groups_per_second"] for r in spec_runs]})
    return results


def png_filters(spec: BuildSpec, repeats: int = 5) -> list[dict]:
    """Encoding time and bytes per image for each row-filter choice of ``pipelines.png`` and for
    OpenCV's encoder (libpng, its own filter choice, the same run-length strategy and level), on
    crops of the built-in photos pristine and degraded by the spec's preset (as in a group)."""
    import statistics

    import cv2
    import torch

    import degrade
    from degrade.samples import SAMPLE_PHOTOS, load_sample

    cv2.setNumThreads(1)
    crops = torch.stack([load_sample(name)[:, :spec.size, :spec.size] for name in SAMPLE_PHOTOS])
    degraded = degrade.apply_plans(crops, degrade.sample_plans(len(crops), spec.preset, seed=0), quantize=True)
    images = [(x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy().copy() for x in (*crops[:6], *degraded)]
    flags = [cv2.IMWRITE_PNG_COMPRESSION, spec.png_level, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    encoders = {f"pipelines.png, {name}": (lambda x, name=name: png.encode_png(x, spec.png_level, name))
                for name in png.FILTERS}
    encoders["OpenCV (libpng)"] = lambda x: cv2.imencode(".png", x[:, :, ::-1], flags)[1].tobytes()
    times = interleaved_times({k: (lambda f=f: [f(x) for x in images]) for k, f in encoders.items()}, repeats)
    return [{"encoder": k, "default": k == f"pipelines.png, {png.DEFAULT_FILTERS}",
             "ms_per_image": 1000 * statistics.median(times[k]) / len(images),
             "kib_per_image": sum(len(f(x)) for x in images) / len(images) / 1024} for k, f in encoders.items()]


def _rate(r: dict) -> str:
    runs = r["all_groups_per_second"]
    return f"{r['groups_per_second']:.1f} ({min(runs):.1f}-{max(runs):.1f})"


def _shares(stages: dict[str, float]) -> str:
    total = sum(stages.values()) or 1.0
    return ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=384)
    parser.add_argument("--per-shard", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 3], help="PNG levels to compare")
    parser.add_argument("--repeats", type=int, default=3, help="builds per configuration, median reported (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results and BENCHMARKS.md alone")
    args = parser.parse_args()
    logging.getLogger("ray").setLevel(logging.ERROR)
    spec = BuildSpec(groups=args.groups, per_shard=args.per_shard, size=args.size)
    levels = timed_builds([replace(spec, png_level=level) for level in args.levels], 1, args.repeats)
    default = (next((r for r in levels if r["png_level"] == spec.png_level), None)
               or timed_builds([spec], 1, args.repeats)[0])
    many = timed_builds([spec], args.workers, args.repeats)[0]
    filters = png_filters(spec)
    speedup = many["groups_per_second"] / default["groups_per_second"]
    info = machine()
    for r in levels:
        print(f"PNG level {r['png_level']}: {_rate(r)} groups/s, {r['bytes_per_group'] / 1024:.0f} KiB "
              f"per group ({_shares(r['stage_seconds'])})")
    print(f"{args.workers} workers: {_rate(many)} groups/s, speedup {speedup:.2f}x; first shard after "
          f"{many['first_shard_s']:.1f} s")
    for r in filters:
        print(f"PNG {r['encoder']}: {r['ms_per_image']:.2f} ms, {r['kib_per_image']:.1f} KiB per image")
    if args.no_write:
        return 0
    write_json("shards", {"machine": info, "config": vars(args), "spec": spec.to_dict(), "png_levels": levels,
                          "one_worker": default, "workers": many, "speedup": speedup,
                          "png_filters": filters})
    lines = [
        f"Measured on {describe(info)}. {args.groups} groups of {args.size}x{args.size} crops (built-in photos, "
        f"{spec.preset} preset, {spec.policy} policy), {args.per_shard} per shard; wall time of `build` (scan "
        "included) once Ray and its worker processes have started.",
        "",
        f"| PNG level (1 worker) | groups/s (median of {args.repeats}, range) | KiB per group | "
        "where the worker's time goes |",
        "|---:|---:|---:|---|",
    ]
    for r in levels:
        mark = " (default)" if r["png_level"] == spec.png_level else ""
        lines.append(f"| {r['png_level']}{mark} | {_rate(r)} | {r['bytes_per_group'] / 1024:.0f} | "
                     f"{_shares(r['stage_seconds'])} |")
    lines += [
        "",
        f"| Ray workers (default level) | groups/s (median of {args.repeats}, range) | speedup | first shard after |",
        "|---:|---:|---:|---:|",
        f"| 1 | {_rate(default)} | 1.00 | {default['first_shard_s']:.1f} s |",
        f"| {args.workers} | {_rate(many)} | {speedup:.2f} (efficiency {speedup / args.workers:.0%}) "
        f"| {many['first_shard_s']:.1f} s |",
        "",
        f"| PNG encoder, row filters (level {spec.png_level}, encoding alone, one thread) | ms per image | "
        "KiB per image |",
        "|---|---:|---:|",
        *(f"| {r['encoder']}{' (default)' if r['default'] else ''} | {r['ms_per_image']:.2f} | "
          f"{r['kib_per_image']:.1f} |" for r in filters),
        "",
        "degrade: the engine on x1, x2, y; encode: five lossless PNGs and the JSON per group; load: decoding, "
        "cropping and augmenting the sources; write: the tar.",
    ]
    update_section("bench_shards", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
