"""Training and prediction throughput: stage 1 and stage 2 samples/s, DDP vs one process, predict images/s.

Runs the real CLIs (``python -m dri.train``, under ``torchrun`` for DDP) for a few steps on demo
shards built first, and reads the rates from the runs' ``metrics.jsonl`` (the first logged
window, which includes start-up, is dropped). Prediction uses ``dri.predict_images``
on the built-in photos and crops of them. Writes ``benchmarks/results/train_<device>.json`` and
its BENCHMARKS.md section.

    python benchmarks/bench_train.py [--device cuda] [--skip-base]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dri  # noqa: E402
from _report import describe, machine, update_section, write_json  # noqa: E402
from degrade.samples import sample_paths  # noqa: E402


def rate(run: Path, stage: str, key: str) -> float:
    rows = [json.loads(line) for line in (run / stage / "metrics.jsonl").read_text().splitlines()]
    values = [r[key] for r in rows if key in r][1:]
    return statistics.median(values) if values else float("nan")


def train(shards: Path, out: Path, stage: str, args: list[str], processes: int = 1) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--master_port", str(29600 + os.getpid() % 500)] if processes > 1 else [sys.executable]
    command = [*launcher, "-m", "dri.train", "--stage", stage, "--out", str(out), "--shards.path", str(shards),
               "--log_every", "2", "--checkpoint_every", "1000", "--workers", "2",
               "--head.fit", "false", *args]  # the head's fit is no training rate (and would build shards of its own)
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])


def render(payload: dict) -> str:
    """The BENCHMARKS.md section for one result file."""
    lines = [f"Measured on {describe(payload['machine'])}; device `{payload['device']}`. Rates are medians of the "
             "logged windows after the first; a stage-1 sample is a group (6 patches), a stage-2 sample an image "
             "crop. Tiny: 128 px stage-2 crops, 96 px stage-1 patches; base: 224 px for both.", "",
             "| variant | stage 1 groups/s | stage 2 images/s |", "|---|---:|---:|"]
    for name, r in payload["training"].items():
        lines.append(f"| {name} | {r['stage1_groups_per_s']:.3g} | {r['stage2_images_per_s']:.3g} |")
    lines += ["", "Prediction, the same images side by side: `before`, every crop of a batch in one forward pass and 2 "
              "DataLoader workers at full threads (the previous behaviour); `after`, 8 crops per pass, channels-last, "
              "inference mode, 1 worker decoding on one thread.", "",
              "| prediction | before images/s | after images/s | speed-up |", "|---|---:|---:|---:|"]
    for name, r in payload["predict"].items():
        lines.append(f"| {name} | {r['before']:.3g} | {r['after']:.3g} | {r['after'] / r['before']:.2f}x |")
    return "\n".join(lines)


def predict_rates(name: str, images: list, device: str) -> dict[str, float]:
    """``dri.predict_images`` images/s the old way (one pass per batch, 2 busy workers) and the new."""
    model = dri.create_model(name)
    dri.predict_images(model, images[:2], device=device)
    out = {}
    for label, options in (("before", {"chunk": 10_000, "workers": 2, "crop": "five"}),
                           ("after", {"workers": 1, "crop": "five"})):
        start = time.perf_counter()
        dri.predict_images(model, images, device=device, **options)
        out[label] = len(images) / (time.perf_counter() - start)
    return out


def predict_cli(device: str, tmp: Path, count: int = 240) -> dict[str, float]:
    """``python -m dri.predict`` end to end on ``count`` 256 px photos crops, old and new settings."""
    import cv2

    from degrade.samples import load_sample

    folder = tmp / "photos"
    folder.mkdir()
    names = list(sample_paths())
    for i in range(count):
        image = (load_sample(names[i % len(names)]) * 255).byte().permute(1, 2, 0).numpy()
        top, left = (i * 37) % (image.shape[0] - 256), (i * 53) % (image.shape[1] - 256)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image[top : top + 256, left : left + 256, ::-1])
    weights = tmp / "tiny.pt"
    from dri import checkpoint

    checkpoint.save_inference(weights, dri.create_model("dri_iqa_tiny"), "dri_iqa_tiny", {})
    out = {}
    runs = (("after", ["--workers", "1", "--crop", "five"]), ("cli_2_workers", ["--workers", "2", "--crop", "five"]),
            ("cli_grid", ["--workers", "1"]))  # five crops as the earlier figures; the default grid costs 9/5
    for label, extra in runs:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dri.predict", "--checkpoint", str(weights), str(folder), "--out",
                        str(tmp / "scores.csv"), "--device", device, *extra], check=True, capture_output=True)
        out[label] = count / (time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--skip-base", action="store_true", help="only the tiny variant")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results and BENCHMARKS.md alone")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    device = args.device
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shards = tmp / "shards"
        subprocess.run([sys.executable, "-m", "pipelines.build_shards", "--out", str(shards), "--groups", "128",
                        "--per-shard", "16"], check=True, capture_output=True)
        steps = ["--stage1.steps", str(args.steps), "--stage2.steps", str(args.steps), "--stage2.eval_every", "0",
                 "--device", device]
        for processes in (1, 2):
            out = tmp / f"tiny{processes}"
            train(shards, out, "all", steps, processes)
            rows[f"dri_iqa_tiny, {processes} process{'es' if processes > 1 else ''}"] = {
                "stage1_groups_per_s": rate(out, "stage1", "groups_per_s"),
                "stage2_images_per_s": rate(out, "stage2", "images_per_s")}
        if not args.skip_base:
            out = tmp / "base"
            base = ["--model.name", "dri_iqa_base", "--stage1.steps", "6", "--stage1.groups", "2", "--stage1.patch",
                    "224", "--stage2.steps", "6", "--stage2.batch", "4", "--stage2.eval_every", "0",
                    "--stage1.prototype_batches", "1", "--device", device]
            big = tmp / "shards_base"
            subprocess.run([sys.executable, "-m", "pipelines.build_shards", "--out", str(big), "--groups", "32",
                            "--per-shard", "8", "--size", "256"], check=True, capture_output=True)
            train(big, out, "all", base)
            rows["dri_iqa_base, 1 process"] = {"stage1_groups_per_s": rate(out, "stage1", "groups_per_s"),
                                               "stage2_images_per_s": rate(out, "stage2", "images_per_s")}
    photos = list(sample_paths().values())
    predictions = {}
    for name in (["dri_iqa_tiny"] if args.skip_base else ["dri_iqa_tiny", "dri_iqa_base"]):
        predictions[f"{name}, built-in photos"] = predict_rates(name, photos * (4 if name == "dri_iqa_tiny" else 1),
                                                               device)
    with tempfile.TemporaryDirectory() as tmp:
        cli = predict_cli(device, Path(tmp))
    payload = {"machine": machine(), "device": device, "training": rows, "predict": predictions,
               "predict_cli_images_per_s": cli}
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    if args.no_write:
        print(json.dumps(payload, indent=1))
        return 0
    write_json(f"train_{torch.device(device).type}", payload)
    text = render(payload) + (f"\n\n`python -m dri.predict` end to end on 240 crops of 256 px (tiny, five crops): "
                              f"{cli['after']:.3g} images/s with 1 worker, {cli['cli_2_workers']:.3g} with 2; "
                              f"{cli['cli_grid']:.3g} with 1 worker and the default 3x3 grid of crops.")
    update_section(f"bench_train:{torch.device(device).type}", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
