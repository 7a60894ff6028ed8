"""``python -m dri.predict``: score image files and folders with a checkpoint, into a CSV.

Each row has the file, its score and what makes it traceable: model name, the checkpoint's
sha256, the toolkit version and the crop policy. Scores are about [0, 1], higher is better.
Unreadable files are listed with the reason and skipped. ``samples`` stands for the built-in photos.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from degrade.samples import sample_paths

from . import __version__
from .checkpoint import load_model
from .inference import find_images, predict_images


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dri.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_DIRS", help="image files, folders (recursive) or 'samples'")
    p.add_argument("--checkpoint", required=True, help="a model checkpoint written by dri.train")
    p.add_argument("--out", default="scores.csv", help="CSV to write")
    p.add_argument("--crop", choices=("five", "resize"), default="five",
                   help="five: average of the 4 corner and the centre crops at the model's input size; "
                        "resize: the whole image resized to the input size")
    p.add_argument("--max-side", type=int, default=None, help="first shrink images whose longer side exceeds this")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    inputs = []
    for item in args.inputs:
        inputs += list(sample_paths().values()) if item == "samples" else [item]
    paths = find_images(inputs)
    if not paths:
        print("error: no images found", file=sys.stderr)
        return 2
    try:
        model, info = load_model(args.checkpoint, args.device)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = predict_images(model, paths, batch_size=args.batch, device=args.device, crop=args.crop,
                             max_side=args.max_side, workers=args.workers, progress=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "score", "model", "weights_sha256", "toolkit_version", "crop"])
        for r in results:
            if r.score is not None:
                writer.writerow([r.item, f"{r.score:.6f}", info.get("model_name"), info["sha256"], __version__,
                                 args.crop if args.max_side is None else f"{args.crop},max_side={args.max_side}"])
    scored = [r for r in results if r.score is not None]
    failed = [r for r in results if r.error is not None]
    print(f"scored {len(scored)} image(s) with {info.get('model_name')} ({info['sha256'][:12]}): scores about "
          f"[0, 1], higher is better; written to {out}")
    for r in failed:
        print(f"  skipped {r.item}: {r.error}", file=sys.stderr)
    return 0 if scored else 1


if __name__ == "__main__":
    sys.exit(main())
