"""``python -m pipelines.build_shards``: dual-representation groups as WebDataset shards, built with Ray.

With no options it builds a small demo set from the built-in photos. Rerunning the same command
resumes an interrupted build; see ``pipelines.build`` for the library.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import ray

from datasets.sources import IMAGE_SUFFIXES
from degrade.pairs import POLICIES
from degrade.sampling import PRESETS

from .build import BuildConfig, build, summary
from .shardio import ConfigMismatch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.build_shards",
        description="Degrade pristine images into dual-representation groups (x1, x2 of content A; y of "
                    "content B) and write them as WebDataset shards, in parallel with Ray. Rerunning the same "
                    "command resumes an interrupted build.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--source", default="samples",
                   help=f"folder of pristine images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) or 'samples' "
                        "for the built-in photos")
    p.add_argument("--out", default="shards", help="output folder")
    p.add_argument("--groups", type=int, default=BuildConfig.groups, help="number of groups")
    p.add_argument("--groups-per-shard", type=int, default=BuildConfig.groups_per_shard)
    p.add_argument("--size", type=int, default=BuildConfig.size, help="square crop side in pixels")
    p.add_argument("--preset", choices=sorted(PRESETS), default=BuildConfig.preset, help="degradation composition")
    p.add_argument("--policy", choices=POLICIES, default=BuildConfig.policy, help="how x1, x2 and y relate")
    p.add_argument("--seed", type=int, default=BuildConfig.seed)
    p.add_argument("--workers", type=int, default=None, help="CPUs for a local Ray (default: all)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
    p.add_argument("--device", default=BuildConfig.device, help="engine device: cpu or cuda (tasks then ask for a GPU)")
    p.add_argument("--render-batch", type=int, default=BuildConfig.render_batch, help="groups per engine call")
    p.add_argument("--retries", type=int, default=3, help="attempts per failing shard task after the first")
    p.add_argument("--overwrite", action="store_true", help="replace shards of another configuration in --out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = BuildConfig(args.source, args.groups, args.groups_per_shard, args.size, args.preset, args.policy,
                             args.seed, args.device, args.render_batch)
        report = build(config, args.out, workers=args.workers, ray_address=args.ray_address,
                       overwrite=args.overwrite, retries=args.retries)
    except (ValueError, FileNotFoundError, ConfigMismatch) as error:
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
