"""``python -m dri.evaluate``: the IQA protocol for a checkpoint.

Every image is scored once with fixed crops (deterministic: the same checkpoint gives the same
numbers); SRCC, PLCC (raw and 5-parameter logistic), KRCC and RMSE are computed on the test side
of each of ``--splits`` content-disjoint splits and their median is reported, with the SRCC per
distortion type where the dataset defines types. ``--test-on`` scores a whole other dataset
(cross-dataset testing); ``--levels`` adds the within-image level-consistency check on held-out
pristine content of group shards. Reader options (``-o KEY=VALUE``) are those of
``python -m datasets.iqa inspect``, e.g. ``-o low=0 -o high=10 -o higher_is_better=false`` for a CSV.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from degrade._cli import HelpFormatter

from . import __version__

KINDS_HELP = "a datasets.iqa name (csv: one's own CSV), 'shards' (packed by pipelines.pack_iqa) or 'pseudo' " \
             "(pseudo-MOS from group shards)"


def build_parser() -> argparse.ArgumentParser:
    from datasets.labelled import KINDS

    p = argparse.ArgumentParser(prog="python -m dri.evaluate", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--checkpoint", required=True, help="a model checkpoint written by dri.train (e.g. runs/tiny/stage2/best.pt)")
    p.add_argument("--dataset", choices=KINDS, metavar="KIND", help=f"what to test on: {KINDS_HELP}")
    p.add_argument("--root", help="the dataset's folder (csv: the CSV file), or the shard folder")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="reader option, repeatable (see python -m datasets.iqa inspect --help)")
    p.add_argument("--splits", type=int, default=10, help="content-disjoint splits, median reported (default 10)")
    p.add_argument("--split", type=int, default=None, help="evaluate only this split's test side")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits (default 0)")
    p.add_argument("--train", type=float, default=0.8, help="train fraction of contents in each split (default 0.8)")
    p.add_argument("--official", choices=("auto", "true", "false"), default="auto",
                   help="the dataset's official split: where it has one (auto), always, never (default auto)")
    p.add_argument("--train-on", help="cross-dataset mode: the dataset the checkpoint was trained on (recorded)")
    p.add_argument("--test-on", choices=KINDS, metavar="KIND", help="cross-dataset mode: score every image of this")
    p.add_argument("--pseudo-split", choices=("crop", "photo"), default="crop",
                   help="pseudo-MOS set: held-out crops or whole source photos, as in training (default crop)")
    p.add_argument("--teacher", default="ssim_psnr", help="pseudo-MOS set: the full-reference teacher")
    p.add_argument("--levels", type=int, default=0, metavar="N",
                   help="also check level consistency on N held-out pristine crops (group shards only; default 0)")
    p.add_argument("--out", help="folder for results.json and scatter.png (default: next to the checkpoint)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kind = args.test_on or args.dataset
    if kind is None or args.root is None:
        print("error: give --dataset (or --test-on) and --root", file=sys.stderr)
        return 2
    import torch

    from datasets import iqa
    from datasets.labelled import SplitRule, open_labelled

    from .checkpoint import load_model
    from .evaluation import level_consistency, protocol, score_labelled, whole_set
    from .runlog import scatter

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    official = {"auto": None, "true": True, "false": False}[args.official]
    try:
        options = iqa.key_values(args.option)
        source = open_labelled(kind, args.root, rule=SplitRule(args.seed, args.train, official), options=options,
                               unit=args.pseudo_split, teacher=args.teacher)
        model, info = load_model(args.checkpoint, device)
        if args.test_on:
            predictions, labels = score_labelled(model, source, device, batch=args.batch, workers=args.workers,
                                               progress="scoring")
            results = {"mode": "cross-dataset", "train_on": args.train_on or info.get("trained_on"),
                       "test_on": kind, "data": source.describe(), **whole_set(predictions, labels)}
            shown, subset = results, list(range(len(labels)))
        else:
            one = args.split if args.split is not None else (0 if args.splits == 1 else None)
            side = "all" if one is None else "test"  # one split: score only its test side
            predictions, labels = score_labelled(model, source, device, side=side, split=one or 0, batch=args.batch,
                                               workers=args.workers, progress="scoring")
            results = {"mode": "splits", "dataset": kind, "data": source.describe(),
                       **protocol(predictions, labels, source, args.splits, one)}
            shown = results["median"]
            k = one or 0
            subset = [i for i, label in enumerate(labels) if source.side_of(label, k) == "test"]
        if args.levels:
            refs = source.pristine_references(args.levels, split=args.split or 0)
            results["level_consistency"] = level_consistency(model, refs, device, teacher=args.teacher)
    except (FileNotFoundError, ValueError, KeyError, iqa.DatasetError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    results.update(checkpoint=str(args.checkpoint), sha256=info["sha256"], model=info.get("model_name"))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval-{kind}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    scatter([predictions[i] for i in subset], [labels[i]["quality"] for i in subset], out / "scatter.png",
            f"{kind}: SRCC {shown['srcc']:.3f}, PLCC {shown['plcc']:.3f}",
            ylabel="normalised MOS" if source.human else "pseudo-MOS (full-reference teacher)")
    label = "median of splits" if not args.test_on else "whole set"
    print(f"{kind} ({label}): SRCC {shown['srcc']:.3f}  PLCC {shown['plcc']:.3f}  PLCC(logistic) "
          f"{shown['plcc_logistic']:.3f}  KRCC {shown['krcc']:.3f}  RMSE {shown['rmse']:.3f}")
    if "level_consistency" in results:
        lc = results["level_consistency"]
        print(f"level consistency (mean within-image SRCC against level, {lc['references']} held-out crops): "
              f"{lc['mean_srcc']:.3f} (the pseudo-MOS labels themselves: {lc['pseudo_mos_mean_srcc']:.3f})")
    print(f"results: {out / 'results.json'}, plot: {out / 'scatter.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
