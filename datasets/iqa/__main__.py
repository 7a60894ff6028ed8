"""``python -m datasets.iqa inspect NAME ROOT``: what a dataset holds and everything wrong with it."""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
from collections.abc import Sequence

from . import DatasetError, key_values, load, names, options_help


def _verify(table) -> list[str]:
    from ..decoding import ImageError, read
    from ..progress import progress

    bad = []
    with progress(total=len(table), desc="decoding", unit="image") as bar:
        for record in table:
            for path in {record.image, record.ref} - {None}:
                try:
                    read(path)
                except ImageError as error:
                    bad.append(str(error))
            bar.update(1)
    return sorted(set(bad))


def inspect(args: argparse.Namespace) -> int:
    try:
        table = load(args.name, args.root, strict=False, **key_values(args.option))
    except (DatasetError, KeyError, ValueError) as error:
        print(f"unusable: {error.args[0] if error.args else error}", file=sys.stderr)
        return 1
    scores = [r.score for r in table]
    scale = table.scale
    print(f"{table.dataset} at {table.root}")
    print(f"  records      {len(table)}")
    print(f"  contents     {len(table.contents())}" + ("  (references)" if any(r.ref for r in table) else ""))
    print(f"  score        {min(scores):.4g} .. {max(scores):.4g} (median {statistics.median(scores):.4g}); "
          f"scale {scale.kind} {scale.low:g}..{scale.high:g}, "
          f"{'higher' if scale.higher_is_better else 'lower'} is better")
    kinds = collections.Counter(r.distortion for r in table if r.distortion)
    if kinds:
        print(f"  distortions  {len(kinds)}: " + ", ".join(f"{k} ({n})" for k, n in sorted(kinds.items())))
    if table.has_official_split:
        sides = collections.Counter(r.official for r in table)
        print("  official split " + ", ".join(f"{k} {n}" for k, n in sides.items()))
    problems = list(table.problems)
    print(f"  problems     {len(problems)}")
    for problem in problems:
        print(f"    {problem}")
    if args.verify:
        bad = _verify(table)
        print(f"  undecodable  {len(bad)}")
        for line in bad:
            print(f"    {line}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from degrade._cli import HelpFormatter
    from degrade._version import __version__

    parser = argparse.ArgumentParser(prog="python -m datasets.iqa", description="Inspect IQA datasets.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", formatter_class=HelpFormatter,
                       help="counts, score range and direction, contents and every problem found",
                       description="Read a dataset leniently and report it. Exits 1 when the layout is unusable.")
    p.add_argument("name", choices=names())
    p.add_argument("root", help="the dataset's folder (for csv: the CSV file)")
    p.add_argument("--verify", action="store_true", help="also decode every image and reference")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, repeatable: " + "; ".join(f"{n}: {options_help(n)}" for n in names()
                                                                  if options_help(n) != "none"))
    p.set_defaults(func=inspect)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
