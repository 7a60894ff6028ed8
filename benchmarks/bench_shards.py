"""Shard building: groups/s with 1 and W Ray workers, and where a worker's time goes.

Builds the same shards (built-in photos, arniqa preset, dri policy) twice, with a local Ray of 1
CPU and of W CPUs, timing ``build`` after Ray has started. Stage shares come from the shards'
stats sidecars. Writes ``benchmarks/results/shards.json`` and its BENCHMARKS.md section.

    python benchmarks/bench_shards.py [--groups 192] [--workers 2]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import describe, machine, update_section, write_json  # noqa: E402
from datasets.shardformat import BuildSpec
from pipelines.build import build  # noqa: E402
from pipelines.runner import start_ray  # noqa: E402


def timed_build(config: BuildSpec, workers: int) -> tuple[float, dict[str, float]]:
    start_ray(None, workers)
    try:
        with tempfile.TemporaryDirectory() as warm:  # start and import the worker processes first
            build(BuildSpec(groups=4 * workers, per_shard=2, size=config.size), warm)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            report = build(config, out)
            seconds = time.perf_counter() - start
            assert report.ok, report.failed
            import json

            stages: dict[str, float] = {}
            for path in Path(out).glob("*.stats.json"):
                for stage, value in json.loads(path.read_text())["seconds"].items():
                    stages[stage] = stages.get(stage, 0.0) + value
    finally:
        ray.shutdown()
    return seconds, stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=192)
    parser.add_argument("--per-shard", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("ray").setLevel(logging.ERROR)
    config = BuildSpec(groups=args.groups, per_shard=args.per_shard, size=args.size)
    one, stages = timed_build(config, 1)
    many, _ = timed_build(config, args.workers)
    rate1, rate_n = args.groups / one, args.groups / many
    speedup = rate_n / rate1
    total = sum(stages.values())
    shares = {k: v / total for k, v in sorted(stages.items(), key=lambda kv: -kv[1])}
    info = machine()
    print(f"1 worker {rate1:.1f} groups/s; {args.workers} workers {rate_n:.1f} groups/s; speedup {speedup:.2f}x")
    print("time in a worker: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    write_json("shards", {"machine": info, "config": vars(args), "groups_per_second": {"1": rate1, str(args.workers): rate_n},
                          "speedup": speedup, "stage_share": shares})
    update_section("bench_shards", "\n".join([
        f"Measured on {describe(info)}. {args.groups} groups of {args.size}x{args.size} crops (built-in photos, "
        f"arniqa preset, dri policy), {args.per_shard} per shard; wall time of `build` (scan included) "
        "once Ray and its worker processes have started.",
        "",
        "| Ray workers | groups/s | speedup |",
        "|---:|---:|---:|",
        f"| 1 | {rate1:.1f} | 1.00 |",
        f"| {args.workers} | {rate_n:.1f} | {speedup:.2f} (efficiency {speedup / args.workers:.0%}) |",
        "",
        "Where a worker's time goes: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
        + " (degrade: the engine on x1, x2, y; encode: five lossless PNGs and the JSON per group; "
        "load: decoding and cropping the sources; write: the tar).",
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
