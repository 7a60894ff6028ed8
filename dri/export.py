"""``python -m dri.export``: a trained checkpoint as release weights: fp16 safetensors and a model card.

Writes ``<out>/<name>.safetensors`` (floating tensors in fp16 but a linear head's, which stay fp32;
the model name and overrides in its metadata) and ``<out>/<name>.json``, the card ``dri.model_card``
reads: the weights' sha256, the recipe that made them, what they were trained on, and measured transfer numbers (from
``benchmarks/bench_transfer.py``'s JSON). With ``--out dri/weights`` and a registered name, the
weights ship: ``dri.create_model(name, pretrained=True)`` and ``python -m dri.predict --model name``
load them offline.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from degrade._cli import HelpFormatter
from degrade._version import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dri.export", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--checkpoint", required=True,
                   help="a checkpoint written by dri.train (e.g. runs/x/stage2/best.pt, or last.pt for its latest step)")
    p.add_argument("--name", required=True, help="the registered model name the weights are for, e.g. dri_iqa_tiny")
    p.add_argument("--out", default="dri/weights", help="folder for <name>.safetensors and <name>.json")
    p.add_argument("--recipe", help="the config that made the weights (its path is recorded)")
    p.add_argument("--transfer", help="bench_transfer.py's results JSON; the named model's numbers are recorded")
    p.add_argument("--transfer-name", help="which model of the transfer JSON (default: its first)")
    p.add_argument("--trained-on", help="what the weights were trained on, for the card and the file's metadata "
                   "(default: the checkpoint's own record, which names the shards' folder as the run saw it)")
    return p


def transfer_summary(path: Path, name: str | None) -> dict:
    """The headline transfer numbers of one model in bench_transfer's JSON."""
    results = json.loads(path.read_text())
    models = results["models"]
    key = name or next(iter(models))
    cells = models[key]["cells"]
    out = {"benchmark": "benchmarks/bench_transfer.py", "crop": results.get("crop", "five"),
           "photos": results["photos"]["unseen"]}
    for cell, r in cells.items():
        out[cell] = {k: round(r[k], 4) for k in ("srcc_oracle", "srcc_gmsd", "within_level", "pristine_mean",
                                                 "degraded_mean", "pristine_above_degraded")}
        out[cell]["per_type_within_level"] = {t: round(v["within_level"], 3) for t, v in r["per_type"].items()}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoint import export_safetensors, load_model

    try:
        model, info = load_model(args.checkpoint)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if info.get("model_name") != args.name:
        print(f"error: {args.checkpoint} holds {info.get('model_name')}, not {args.name}", file=sys.stderr)
        return 2
    out = Path(args.out)
    weights = out / f"{args.name}.safetensors"
    trained_on = args.trained_on or info.get("trained_on")
    sha = export_safetensors(model, weights, args.name, info.get("model_overrides", {}),
                             trained_on=trained_on or "", step=info.get("step", ""))
    card = {"weights": weights.name, "sha256": sha, "dtype": "float16"}
    if model.full_precision():
        card["float32"] = sorted(model.full_precision())
    card |= {"toolkit": __version__, "trained_on": trained_on, "recipe": args.recipe, "step": info.get("step"),
             "held_out": info.get("metrics")}
    if args.transfer:
        card["transfer"] = transfer_summary(Path(args.transfer), args.transfer_name)
    (out / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n")
    size = weights.stat().st_size / 2**20
    print(f"wrote {weights} ({size:.1f} MiB, sha256 {sha[:12]}) and {out / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
