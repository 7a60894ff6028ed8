"""Quality of the demo's tiny model, read from what ``make demo`` wrote, into BENCHMARKS.md.

Run after ``make demo`` (it trains nothing itself):

    python benchmarks/demo_quality.py [--outputs outputs] [--wall-s SECONDS]

Reads ``<outputs>/evaluation/results.json`` (held-out pseudo-MOS metrics and level consistency)
and ``<outputs>/run/results.json`` (training summary), writes ``benchmarks/results/demo_quality.json``
and the ``demo_quality`` section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import describe, machine, update_section, write_json  # noqa: E402


def _read(path: Path, outputs: Path) -> dict:
    """A results file of the demo; absolute paths the runs recorded under its folder read as `outputs/...`,
    the folder `make demo` writes by default (no machine paths in the results)."""
    return json.loads(path.read_text().replace(f"{outputs.resolve()}/", "outputs/"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", default="outputs", help="the demo's output folder (make demo OUT=...)")
    parser.add_argument("--wall-s", type=float, default=None, help="measured wall time of make demo, to record")
    args = parser.parse_args()
    outputs = Path(args.outputs)
    evaluation_path, run_path = outputs / "evaluation" / "results.json", outputs / "run" / "results.json"
    for path in (evaluation_path, run_path):
        if not path.is_file():
            print(f"error: {path} not found; run `make demo` first (or pass --outputs)", file=sys.stderr)
            return 2
    evaluation, run = _read(evaluation_path, outputs), _read(run_path, outputs)
    split = evaluation["splits"][0]
    levels = evaluation.get("level_consistency") or {}
    info = machine()
    write_json("demo_quality", {"machine": info, "evaluation": evaluation, "training": run, "wall_s": args.wall_s})
    wall = f", `make demo` wall time {args.wall_s / 60:.1f} min" if args.wall_s else ""
    scored_by = "/".join(Path(evaluation.get("checkpoint", "?")).parts[-2:])  # e.g. head/model.pt, no machine path
    lines = [f"Measured on {describe(info)}{wall}; scored by the run's `{scored_by}`. Held-out crops of split 0 "
             f"({split['images']} images); labels are pseudo-MOS (SSIM/PSNR against the reference), not human scores.",
             "", "| SRCC | PLCC | PLCC (logistic) | KRCC | RMSE | level consistency | the labels' own level consistency |",
             "|---:|---:|---:|---:|---:|---:|---:|",
             f"| {split['srcc']:.3f} | {split['plcc']:.3f} | {split['plcc_logistic']:.3f} | {split['krcc']:.3f} | "
             f"{split['rmse']:.3f} | {levels.get('mean_srcc', float('nan')):.3f} | "
             f"{levels.get('pseudo_mos_mean_srcc', float('nan')):.3f} |"]
    if levels.get("per_distortion"):
        lines += ["", f"Level consistency per distortion ({levels['references']} held-out pristine crops, "
                  "levels 1-5 with shared draws; model / labels):", ""]
        model, labels = levels["per_distortion"], levels.get("pseudo_mos_per_distortion", {})
        cells = [f"{name} {model[name]:.2f} / {labels.get(name, float('nan')):.2f}" for name in sorted(model)]
        lines += [", ".join(cells) + "."]
    update_section("demo_quality", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
