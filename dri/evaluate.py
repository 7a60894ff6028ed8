"""``python -m dri.evaluate``: the IQA protocol for a checkpoint.

Every image is scored once with fixed crops (deterministic: the same checkpoint gives the same
numbers); SRCC, PLCC (raw and 5-parameter logistic), KRCC and RMSE are computed on the test side
of each of ``--splits`` content-disjoint splits and their median is reported, with the SRCC per
distortion type where the dataset defines types. ``--test-on`` scores a whole other dataset
(cross-dataset testing); ``--levels`` adds the within-image level-consistency check on held-out
pristine content of group shards.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from datasets import iqa
from datasets.shardformat import iter_samples, list_shards
from datasets.shards import PseudoIQAShards
from datasets.sources import decode_checked

from .checkpoint import load_model
from .evaluation import level_consistency, protocol, score_source, sides, whole_set
from .runlog import scatter

SOURCES = ("pseudo", "shards", *iqa.names())


def held_out_references(shards: str, count: int, seed: int, train: float, unit: str) -> list[torch.Tensor]:
    """Up to ``count`` pristine crops (``ref_a``) on the test side of split 0 (the training set's own rule)."""
    split = PseudoIQAShards(shards, side="test", mode="eval", unit=unit, split=0, split_seed=seed, train=train)
    refs = []
    for shard in list_shards(shards):
        for sample in iter_samples(shard):
            if split.side_of(json.loads(sample["meta.json"])["a"]) == "test":
                refs.append(decode_checked(sample["ref_a.png"], sample["__key__"]))
                if len(refs) >= count:
                    return refs
    return refs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dri.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a model checkpoint written by dri.train (e.g. runs/tiny/stage2/best.pt)")
    p.add_argument("--dataset", choices=SOURCES, help="what to test on: a dataset name, 'shards' (packed by "
                   "pipelines.pack_iqa) or 'pseudo' (pseudo-MOS from group shards)")
    p.add_argument("--root", help="the dataset's folder, or the shard folder")
    p.add_argument("--splits", type=int, default=10, help="content-disjoint splits (median reported)")
    p.add_argument("--split", type=int, default=None, help="evaluate only this split's test side")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits")
    p.add_argument("--train", type=float, default=0.8, help="train fraction of contents in each split")
    p.add_argument("--train-on", help="cross-dataset mode: the dataset the checkpoint was trained on (recorded)")
    p.add_argument("--test-on", choices=SOURCES, help="cross-dataset mode: score every image of this dataset")
    p.add_argument("--pseudo-split", choices=("crop", "photo"), default="crop",
                   help="pseudo-MOS set: held-out crops or whole source photos (as in training)")
    p.add_argument("--levels", type=int, default=0, metavar="N",
                   help="also check level consistency on N held-out pristine crops (group shards only)")
    p.add_argument("--out", help="folder for results.json and scatter.png (default: next to the checkpoint)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="dataset reader option")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    source = args.test_on or args.dataset
    if source is None or args.root is None:
        print("error: give --dataset (or --test-on) and --root", file=sys.stderr)
        return 2
    options = {k: v for k, _, v in (o.partition("=") for o in args.option)}
    try:
        model, info = load_model(args.checkpoint, args.device)
        one_split = args.split if args.split is not None else (0 if args.splits == 1 else None)
        test_of = (one_split, args.seed, args.train) if (source == "pseudo" and one_split is not None) else None
        predictions, labels = score_source(model, source, args.root, args.device, args.batch, args.workers,
                                           unit=args.pseudo_split, test_of=test_of, progress="scoring", **options)
        if args.test_on:
            results = {"mode": "cross-dataset", "train_on": args.train_on or info.get("trained_on"),
                       "test_on": source, **whole_set(predictions, labels)}
            shown, subset = results, range(len(labels))
        else:
            results = {"mode": "splits", "dataset": source, **protocol(predictions, labels, source, args.splits,
                                                                        args.seed, args.train, args.split)}
            shown = results["median"]
            k = args.split or 0
            subset = [i for i, side in enumerate(sides(labels, source, k + 1, args.seed, args.train)[k]) if side == "test"]
        if args.levels:
            if source != "pseudo":
                raise ValueError("--levels needs group shards: use --dataset pseudo --root SHARDS")
            refs = held_out_references(args.root, args.levels, args.seed, args.train, args.pseudo_split)
            results["level_consistency"] = level_consistency(model, refs, args.device)
    except (FileNotFoundError, ValueError, KeyError, iqa.DatasetError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    results.update(checkpoint=str(args.checkpoint), sha256=info["sha256"], model=info.get("model_name"))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval-{source}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    scatter([predictions[i] for i in subset], [labels[i]["quality"] for i in subset], out / "scatter.png",
            f"{source}: SRCC {shown['srcc']:.3f}, PLCC {shown['plcc']:.3f}",
            ylabel="pseudo-MOS" if source == "pseudo" else "normalised MOS")
    label = "median of splits" if not args.test_on else "whole set"
    print(f"{source} ({label}): SRCC {shown['srcc']:.3f}  PLCC {shown['plcc']:.3f}  PLCC(logistic) "
          f"{shown['plcc_logistic']:.3f}  KRCC {shown['krcc']:.3f}  RMSE {shown['rmse']:.3f}")
    if "level_consistency" in results:
        lc = results["level_consistency"]
        print(f"level consistency (mean within-image SRCC against level, {lc['references']} held-out crops): "
              f"{lc['mean_srcc']:.3f} (the pseudo-MOS labels themselves: {lc['pseudo_mos_mean_srcc']:.3f})")
    print(f"results: {out / 'results.json'}, plot: {out / 'scatter.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
