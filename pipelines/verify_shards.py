"""``python -m pipelines.verify_shards DIR``: check a shard folder and replay every group exactly."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from degrade._cli import HelpFormatter
from degrade._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.verify_shards", formatter_class=HelpFormatter,
        description="Check every shard of a folder against what its configuration calls for: the shards listed, "
                    "sha256 (manifest and stats), sample counts and fields, each group present exactly once with the "
                    "contents and plans its seed gives, and (group shards) x1, x2, y re-derived from the references "
                    "and plans, pixel-equal. Exits 1 when anything is wrong.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("folder", help="a folder written by build_shards or pack_iqa")
    parser.add_argument("--no-replay", action="store_true", help="skip re-rendering (metadata, checksums and counts only)")
    parser.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import ray

    from datasets.shardformat import ManifestError

    from .runner import RayUnavailable
    from .verify import FOLDER, verify

    try:
        report = verify(args.folder, replay=not args.no_replay, workers=args.ray_cpus, ray_address=args.ray_address)
    except (FileNotFoundError, ManifestError, RayUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if ray.is_initialized():
            ray.shutdown()
    for problems in report.problems.values():
        for problem in problems:
            print(problem)
    bad = report.shards - report.sound
    line = f"{args.folder}: {report.sound} of {report.shards} shards sound" + (f", {bad} with problems" if bad else "")
    if FOLDER in report.problems:
        line += f"; {len(report.problems[FOLDER])} problem(s) with the folder as a whole"
    print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
