"""``python -m pipelines.pack_iqa``: an IQA dataset in its native layout, packed into WebDataset shards."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from degrade._cli import HelpFormatter
from degrade._version import __version__

from ._cli import add_run_arguments, run


def build_parser() -> argparse.ArgumentParser:
    from datasets import iqa

    p = argparse.ArgumentParser(
        prog="python -m pipelines.pack_iqa",
        description="Pack an IQA dataset, read from its native layout, into WebDataset shards with split folds.",
        formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
                   help="reader option, repeatable: " + "; ".join(f"{n}: {iqa.options_help(n)}" for n in iqa.names()
                                                                  if iqa.options_help(n) != "none"))
    add_run_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from datasets import iqa

        from .pack import PackConfig, pack

        options = iqa.key_values(args.option)
        iqa.parse_options(args.dataset, options)  # refuse a wrong option before any work
        config = PackConfig(args.dataset, args.per_shard, args.splits, args.seed, args.train, not args.no_refs)
        manifest = pack(args.dataset, args.root, args.out, config, strict=not args.lenient, options=options,
                        workers=args.ray_cpus, ray_address=args.ray_address, overwrite=args.overwrite)
        print(f"{args.out}: {manifest['records']} images of {args.dataset} in {len(manifest['shards'])} shards "
              f"({manifest['seconds']} s); the manifest lists {len(manifest['skipped_inputs'])} skipped input(s)")
        for skipped in manifest["skipped_inputs"][:10]:
            print(f"  skipped {skipped}")
        for failed in manifest["failed_shards"]:
            print(f"FAILED {failed['name']}: {failed['error']}")
        return 1 if manifest["failed_shards"] else 0

    from datasets.iqa import DatasetError

    return run(args, body, (DatasetError, KeyError))


if __name__ == "__main__":
    sys.exit(main())
