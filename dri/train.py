"""``python -m dri.train``: two-stage DRI-IQA training.

With no options it runs the tiny recipe end to end on the built-in photos and procedural dead-leaves
images (60/40): builds the demo shards if they are missing, trains stage 1 (contrastive DRE-Net) and
stage 2 (score predictor with restoration assistance) on pseudo-MOS labels derived from the shards,
and evaluates on held-out contents. Where ``head.fit`` is set (both recipes), a linear quality head is
then fitted in closed form to the same kind of labels (``--stage head`` does that step alone).
Settings come from ``--config`` (YAML) and dotted overrides, e.g. ``--stage2.lr 1e-4``.
Under ``torchrun --nproc_per_node N -m dri.train`` it trains with DDP.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from degrade._cli import HelpFormatter

from . import __version__
from .config import STAGES


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict[str, str]]:
    parser = argparse.ArgumentParser(
        prog="python -m dri.train", description=__doc__, formatter_class=HelpFormatter,
        epilog="Any setting can be overridden by its dotted name: --stage1.steps 500 --stage2.data kadid10k "
               "--stage2.root /data/kadid10k --model.name dri_iqa_base --model.overrides.restoration false. "
               "--settings prints every setting and its value; dri/configs/tiny.yaml spells out the defaults.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", help="YAML config (default: the tiny recipe, dri/configs/tiny.yaml)")
    parser.add_argument("--stage", choices=STAGES, default="all",
                        help="1: contrastive DRE-Net; 2: score predictor from the stage-1 model; head: fit the linear "
                             "quality head on the stage-2 model (--head.init another); all: 1 and 2, and the head "
                             "where head.fit is set (default)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoints")
    parser.add_argument("--out", help="run folder (default runs/tiny)")
    parser.add_argument("--settings", action="store_true",
                        help="print every setting with its value (after --config and the overrides) and exit")
    args, rest = parser.parse_known_args(argv)
    overrides: dict[str, str] = {}
    i = 0
    while i < len(rest):
        key = rest[i]
        if not key.startswith("--") or len(key) < 3:
            parser.error(f"overrides come as --dotted.name value pairs; got {key!r}")
        if "=" in key:
            name, value = key[2:].split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            name, value = key[2:], rest[i + 1]
            i += 2
        else:
            parser.error(f"{key} needs a value")
        overrides[name] = value
    if args.out:
        overrides["out"] = args.out
    return args, overrides


def main(argv: Sequence[str] | None = None) -> int:
    args, overrides = parse(argv)
    from .config import ConfigError, load
    from .trainer import Diverged, Interrupted, train

    try:
        cfg = load(args.config, overrides)
        if args.settings:
            import yaml

            from .config import to_dict

            print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
            return 0
        results = train(cfg, args.stage, args.resume)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"\n{stop}", file=sys.stderr)
        return 130
    except Diverged as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    if "stage2" in results and results["stage2"].get("held_out"):
        held = results["stage2"]["held_out"]
        print(f"held-out ({results['stage2']['held_out_images']} images): SRCC {held['srcc']:.3f}, "
              f"PLCC {held['plcc']:.3f}, KRCC {held['krcc']:.3f}, RMSE {held['rmse']:.3f}")
        print(f"best model: {results['stage2']['best']}")
    if results.get("head", {}).get("model"):
        head = results["head"]
        if head.get("held_out"):
            print(f"linear head, held-out ({head['held_out_images']} images): SRCC {head['held_out']['srcc']:.3f}, "
                  f"PLCC {head['held_out']['plcc']:.3f}")
        print(f"model with the linear head: {head['model']}")
    if results.get("stage1", {}).get("sha256"):
        print(f"stage-1 model: {cfg.out}/stage1/model.pt")
    print(json.dumps(results, indent=1, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
