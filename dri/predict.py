"""``python -m dri.predict``: score image files and folders with the shipped weights or a checkpoint, into a CSV.

``--model dri_iqa_tiny`` uses the weights that ship inside the package (no training, no network);
``--checkpoint`` one's own run. Each row has the file, its score and what makes it traceable: model
name, the weights' sha256, the toolkit version and the crop policy. Scores are about [0, 1],
higher is better. Files that cannot be scored (unreadable, not an image, above the pixel limit, a
link leaving its folder...) are listed with the reason and skipped. ``samples`` stands for the
built-in photos.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

from degrade._cli import HelpFormatter
from degrade._version import __version__

from .policy import CROPS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dri.predict", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("inputs", nargs="+", metavar="IMAGES_OR_DIRS", help="image files, folders (recursive) or 'samples'")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a registered model with shipped weights, e.g. dri_iqa_tiny")
    which.add_argument("--checkpoint", help="a model checkpoint written by dri.train")
    p.add_argument("--out", default="scores.csv", help="CSV to write (default scores.csv)")
    p.add_argument("--crop", choices=CROPS, default=CROPS[0],
                   help="grid: average over a 3x3 grid of crops at the model's input size, corner to corner; "
                        "five: the 4 corner and the centre crops (5/9 of the cost); resize: the whole image "
                        f"resized to the input size (default {CROPS[0]})")
    p.add_argument("--max-side", type=int, default=None,
                   help="first shrink images whose longer side exceeds this (large JPEGs decode reduced; default: none)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images above this many pixels (default: 100 megapixels, or DRI_MAX_PIXELS)")
    p.add_argument("--batch", type=int, default=16, help="images per batch (default 16)")
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers decoding images (default 1)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from datasets.decoding import set_limits
    from degrade.samples import sample_paths

    from .checkpoint import load_model
    from .inference import predict_images
    from .models import create_model, model_card

    if args.max_pixels is not None:
        set_limits(max_pixels=args.max_pixels)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    inputs = []
    for item in args.inputs:
        inputs += list(sample_paths().values()) if item == "samples" else [item]
    try:
        if args.model:
            model = create_model(args.model, pretrained=True)
            card = model_card(args.model)
            info = {"model_name": args.model, "sha256": card.sha256}
        else:
            model, info = load_model(args.checkpoint, device)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as error:
        print(f"error: {error.args[0] if isinstance(error, KeyError) and error.args else error}", file=sys.stderr)
        return 2
    results = predict_images(model, inputs, batch_size=args.batch, device=device, crop=args.crop,
                             max_side=args.max_side, workers=args.workers, progress=True)
    if not results:
        print("error: no images found", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    policy = args.crop if args.max_side is None else f"{args.crop},max_side={args.max_side}"
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "score", "model", "weights_sha256", "toolkit_version", "crop"])
        for r in results:
            if r.score is not None:
                writer.writerow([r.item, f"{r.score:.6f}", info.get("model_name"), info["sha256"], __version__, policy])
    scored = [r for r in results if r.score is not None]
    failed = [r for r in results if r.error is not None]
    print(f"scored {len(scored)} image(s) with {info.get('model_name')} ({str(info['sha256'])[:12]}): scores about "
          f"[0, 1], higher is better; written to {out}")
    for r in failed:
        print(f"  skipped {r.item}: {r.error}", file=sys.stderr)
    return 0 if scored else 1


if __name__ == "__main__":
    sys.exit(main())
