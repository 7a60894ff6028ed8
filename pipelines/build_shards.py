"""``python -m pipelines.build_shards``: dual-representation groups as WebDataset shards, built with Ray.

With no options it builds a small set from the built-in photos. Rerunning the same command
resumes an interrupted build; see ``pipelines.build`` for the library.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from degrade._cli import HelpFormatter
from degrade._version import __version__

from ._cli import add_run_arguments, run


def build_parser() -> argparse.ArgumentParser:
    from datasets.shardformat import BuildSpec

    p = argparse.ArgumentParser(
        prog="python -m pipelines.build_shards",
        description="Degrade pristine images into dual-representation groups (x1, x2 of content A; y of "
                    "content B) and write them as WebDataset shards, in parallel with Ray. Rerunning the same "
                    "command resumes an interrupted build.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    BuildSpec.add_arguments(p)
    p.add_argument("--out", default="shards", help="output folder")
    p.add_argument("--retries", type=int, default=3, help="attempts per failing shard task after the first")
    add_run_arguments(p, dashboard=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from datasets.shardformat import BuildSpec

        from .build import build, summary

        report = build(BuildSpec.from_args(args), args.out, workers=args.ray_cpus, ray_address=args.ray_address,
                       overwrite=args.overwrite, retries=args.retries, dashboard=args.dashboard)
        print(summary(report))
        return 0 if report.ok else 1

    return run(args, body, ())


if __name__ == "__main__":
    sys.exit(main())
