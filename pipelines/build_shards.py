"""``python -m pipelines.build_shards``: dual-representation groups as WebDataset shards, built with Ray.

With no options it builds a small demo set from the built-in photos. Rerunning the same command
resumes an interrupted build; see ``pipelines.build`` for the library.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from degrade._version import __version__


def build_parser() -> argparse.ArgumentParser:
    from datasets.shardformat import BuildSpec

    p = argparse.ArgumentParser(
        prog="python -m pipelines.build_shards",
        description="Degrade pristine images into dual-representation groups (x1, x2 of content A; y of "
                    "content B) and write them as WebDataset shards, in parallel with Ray. Rerunning the same "
                    "command resumes an interrupted build.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    BuildSpec.add_arguments(p)
    p.add_argument("--out", default="shards", help="output folder")
    p.add_argument("--ray-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
    p.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (local Ray only)")
    p.add_argument("--retries", type=int, default=3, help="attempts per failing shard task after the first")
    p.add_argument("--overwrite", action="store_true", help="replace shards of another configuration in --out")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse source images above this many pixels (default: 100 megapixels, or DRI_MAX_PIXELS)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import ray

    from datasets.decoding import set_limits
    from datasets.shardformat import BuildSpec

    from .build import build, summary
    from .runner import RayUnavailable
    from .shardio import ConfigMismatch, WriteFailed

    if args.max_pixels is not None:
        set_limits(max_pixels=args.max_pixels)
    try:
        spec = BuildSpec.from_args(args)
        report = build(spec, args.out, workers=args.ray_cpus, ray_address=args.ray_address,
                       overwrite=args.overwrite, retries=args.retries, dashboard=args.dashboard)
    except (ValueError, FileNotFoundError, ConfigMismatch, WriteFailed, RayUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished shards are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if ray.is_initialized():
            ray.shutdown()
    print(summary(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
