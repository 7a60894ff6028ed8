"""Command line: ``python -m degrade list | info NAME | apply ...``."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ._cli import HelpFormatter
from ._version import __version__



def _format_level(v: float) -> str:
    return f"{v:.4g}"


def cmd_list(args: argparse.Namespace) -> int:
    from . import info, list_distortions

    rows = [("name", "group", "parameter", "levels 1..5 (mildest first)")]
    for name in list_distortions(args.group):
        d = info(name)
        rows.append((name, d.group, d.parameter, ", ".join(_format_level(v) for v in d.table(args.table))))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import info

    d = info(args.name)
    print(f"{d.name}  ({d.group})")
    print(f"  parameter    {d.parameter}: {d.description}")
    print(f"  levels       {', '.join(_format_level(v) for v in d.levels)}")
    for table, values in d.tables.items():
        print(f"  {table:<12} {', '.join(_format_level(v) for v in values)}")
    if d.signed_around is not None:
        print(f"  direction    default table: distance from {d.signed_around}, random direction per plan")
    if d.extras:
        print(f"  random draws {', '.join(d.extras)} (recorded in the plan)")
    print(f"  stochastic   {d.stochastic} (noise/positions from the step seed)")
    print(f"  differentiable {d.differentiable}; native devices {', '.join(d.devices)}")
    if d.backends:
        print(f"  backends     {', '.join(d.backends)} (default {d.default_backend})")
    refs = [f"KADID-10k #{d.kadid}" if d.kadid else "", f"ARNIQA '{d.arniqa}'" if d.arniqa else ""]
    print(f"  source       {'; '.join(r for r in refs if r) or 'camera/restoration pipelines'}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from . import apply, apply_plans, sample_plans
    from .io import read_image, write_image
    from .plan import Plan

    x = read_image(args.input).to(args.device)
    if args.plan is not None:
        plan = Plan.from_json(Path(args.plan).read_text())
        y = apply_plans(x, plan, quantize=True)
    elif args.name is not None:
        y, plans = apply(
            x, args.name, args.level, seed=args.seed, backend=args.backend, table=args.table,
            quantize=True, return_plans=True,
        )
        plan = plans[0]
    else:
        plan = sample_plans(1, args.preset, seed=args.seed)[0]
        y = apply_plans(x, plan, quantize=True)
    write_image(args.output, y.cpu())
    print(json.dumps(plan.to_dict(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m degrade",
        description="Batched, replayable image degradations: the KADID-10k catalogue and more.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", formatter_class=HelpFormatter, help="table of distortions: name, group, parameter, levels")
    p.add_argument("--group", help="only this group (blur, color, compression, noise, brightness, spatial, "
                                   "sharpness_contrast)")
    p.add_argument("--table", default="default", help="level table: default, kadid-exact, arniqa")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", formatter_class=HelpFormatter, help="everything known about one distortion")
    p.add_argument("name")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "apply", formatter_class=HelpFormatter,
        help="degrade one image file and print the plan as JSON",
        description="Degrade IN and write OUT (8-bit; PNG is lossless). Choose one distortion "
        "(--name/--level), a preset draw (--preset/--seed, the default) or a saved plan (--plan). "
        "The plan printed on stdout replays the result exactly with --plan.",
    )
    p.add_argument("input", metavar="IN", help="input image")
    p.add_argument("output", metavar="OUT", help="output image (suffix picks the format)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--name", help="one distortion (see `python -m degrade list`)")
    how.add_argument("--preset", default="arniqa", help="draw a plan from a preset: kadid, arniqa (ARNIQA's own "
                                                       "tables) or arniqa-monotone")
    how.add_argument("--plan", help="replay a plan JSON file")
    p.add_argument("--level", type=float, default=3.0, help="level in [1, 5] for --name")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws (default 0)")
    p.add_argument("--backend", help="implementation, for distortions that have several")
    p.add_argument("--table", default="default", help="level table: default, kadid-exact, arniqa")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=cmd_apply)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    try:
        with torch.no_grad():
            return args.func(args)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except (KeyError, ValueError, TypeError, FileNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
