"""``python -m pipelines.pack_iqa``: an IQA dataset in its native layout, packed into WebDataset shards."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import ray

from datasets import iqa
from datasets.iqa import DatasetError

from .pack import PackConfig, pack
from .shardio import ConfigMismatch


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.pack_iqa",
        description="Pack an IQA dataset, read from its native layout, into WebDataset shards with split folds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", required=True, choices=iqa.names())
    p.add_argument("--root", required=True, help="the dataset's folder (for csv: the CSV file)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--per-shard", type=int, default=256, help="images per shard")
    p.add_argument("--splits", type=int, default=10, help="seeded content-disjoint splits recorded in each label")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits")
    p.add_argument("--train", type=float, default=0.8, help="train fraction of contents in each split")
    p.add_argument("--no-refs", action="store_true", help="do not copy reference images into the samples")
    p.add_argument("--lenient", action="store_true", help="skip problem rows (listed in the manifest) instead of failing")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, e.g. part=Val (pipal); low=1 high=5 (csv)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--ray-address", default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    options: dict[str, Any] = {}
    for option in args.option:
        key, _, value = option.partition("=")
        options[key] = value if key in ("part", "file", "resolution", "score") else json.loads(value.lower())
    config = PackConfig(args.dataset, args.per_shard, args.splits, args.seed, args.train, not args.no_refs)
    try:
        manifest = pack(args.dataset, args.root, args.out, config, strict=not args.lenient, options=options,
                        workers=args.workers, ray_address=args.ray_address, overwrite=args.overwrite)
    except (DatasetError, KeyError, ValueError, ConfigMismatch) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    finally:
        if ray.is_initialized():
            ray.shutdown()
    print(f"{args.out}: {manifest['records']} images of {args.dataset} in {len(manifest['shards'])} shards "
          f"({manifest['seconds']} s); manifest.json lists {len(manifest['skipped_inputs'])} skipped row(s)")
    for failed in manifest["failed_shards"]:
        print(f"FAILED {failed['name']}: {failed['error']}")
    return 1 if manifest["failed_shards"] else 0


if __name__ == "__main__":
    sys.exit(main())
