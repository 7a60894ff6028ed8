"""``python -m pipelines.verify_shards DIR``: check a shard folder and replay every group exactly."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import ray

from .verify import verify


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.verify_shards",
        description="Check every shard of a folder against its manifest (sha256, sample count, fields) and, for "
                    "group shards, re-derive x1, x2, y from the references and recorded plans, requiring exact "
                    "equality. Exits 1 when anything is wrong.")
    parser.add_argument("folder")
    parser.add_argument("--no-replay", action="store_true", help="skip re-rendering (checksums and counts only)")
    parser.add_argument("--workers", type=int, default=None, help="CPUs for a local Ray (default: all)")
    parser.add_argument("--ray-address", default=None)
    args = parser.parse_args(argv)
    try:
        report = verify(args.folder, replay=not args.no_replay, workers=args.workers, ray_address=args.ray_address)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if ray.is_initialized():
            ray.shutdown()
    for problems in report.problems.values():
        for problem in problems:
            print(problem)
    bad = len(report.problems)
    print(f"{args.folder}: {report.shards - bad} of {report.shards} shards sound" + (f", {bad} with problems" if bad else ""))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
