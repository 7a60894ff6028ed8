"""Degradation throughput: the batched engine against the per-image OpenCV/numpy loop, same plans.

For every distortion (32 plans at levels 1..5) and for the mixed ``arniqa`` preset, in one run:

* engine      ``degrade.apply_plans`` on the whole batch (torch threads = all cores, or the GPU);
* loop x1     the per-image loop of ``benchmarks/baseline.py`` in one process, one thread;
* loop xW     the same loop in W worker processes (how a DataLoader with W workers runs it;
              results are not sent back, which favours the loop).

For deterministic distortions the PSNR between engine and loop outputs is reported as a check
that both compute the same distortion. Writes ``benchmarks/results/degrade_<device>.json`` and
the matching section of BENCHMARKS.md.

    python benchmarks/bench_degrade.py [--device cuda] [--quick]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import degrade  # noqa: E402
from _report import describe, interleaved_times, machine, update_section, write_json  # noqa: E402
from baseline import apply_plan  # noqa: E402
from degrade.plan import Plan  # noqa: E402
from degrade.samples import SAMPLE_PHOTOS, load_sample  # noqa: E402
from degrade.sampling import make_step  # noqa: E402

_IMAGES: list[np.ndarray] = []


def make_batch(n: int, size: int) -> torch.Tensor:
    """n distinct size x size crops of the built-in photos (several crops per photo)."""
    crops = []
    photos = [load_sample(name) for name in SAMPLE_PHOTOS]
    for i in range(n):
        image = photos[i % len(photos)]
        h, w = image.shape[-2:]
        scale = 1.5 * size / min(h, w)
        image = F.interpolate(image[None], scale_factor=scale, mode="area", recompute_scale_factor=False)[0]
        h, w = image.shape[-2:]
        k = i // len(photos)
        top, left = (k * 37) % (h - size + 1), (k * 53) % (w - size + 1)
        crops.append(image[:, top : top + size, left : left + size])
    return torch.stack(crops).clamp(0, 1)


def _init_worker(images: list[np.ndarray]) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    _IMAGES[:] = images


def _work(job: tuple[int, Plan]) -> float:
    index, plan = job
    return float(apply_plan(_IMAGES[index], plan)[0, 0, 0])


GOAL_OPS = ("gaussian_blur", "lens_blur", "motion_blur", "jpeg", "white_noise", "pixelate")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def measure(x, images, plan_sets, pool, repeats, device) -> dict[str, float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    xd = x.to(device)
    total = sum(len(plans) for plans in plan_sets)

    def engine():
        for plans in plan_sets:
            degrade.apply_plans(xd, plans)

    def torch_only():
        with degrade.torch_path():
            engine()

    def loop():
        for plans in plan_sets:
            for image, plan in zip(images, plans):
                apply_plan(image, plan)

    def pooled():
        for plans in plan_sets:
            pool.map(_work, list(enumerate(plans)), chunksize=max(1, len(plans) // 8))

    runs = {"engine": engine, "loop_1": loop, "loop_pool": pooled}
    if device.type == "cpu":
        runs["engine_torch_only"] = torch_only
    # round-robin: each repeat times every contender once, so a slow spell of this shared machine
    # falls on all of them rather than on whichever ran then
    with torch.no_grad():
        times = interleaved_times(runs, repeats, sync)
    times.setdefault("engine_torch_only", times["engine"])
    return {name: total / statistics.median(t) for name, t in times.items()}


def agreement(x, images, plans) -> float:
    with torch.no_grad():
        out = degrade.apply_plans(x, plans).permute(0, 2, 3, 1).numpy()
    return min(psnr(out[i], apply_plan(images[i], plans[i])) for i in range(len(plans)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--processes", type=int, default=2, help="processes of the pooled loop (default 2)")
    parser.add_argument("--level", type=float, default=4, help="level of the single-distortion rows (default 4)")
    parser.add_argument("--preset", default="arniqa-monotone", help="the mixed preset (default arniqa-monotone)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, each running every contender once (default 5)")
    parser.add_argument("--mixed-batches", type=int, default=8, help="arniqa batches per timing (default 8)")
    parser.add_argument("--quick", action="store_true", help="one repeat, a few distortions: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results and BENCHMARKS.md alone")
    args = parser.parse_args()
    device = torch.device(args.device)
    names = degrade.list_distortions()
    if args.quick:
        names, args.repeats, args.mixed_batches = names[:3], 1, 2

    x = make_batch(args.batch, args.size)
    images = [im.permute(1, 2, 0).numpy().copy() for im in x]
    info = machine()
    print(f"{describe(info)}; batch {args.batch} at {args.size}x{args.size}; engine on {device}")
    print(f"{'distortion':24s} {'engine':>9s} {'loop x1':>9s} {f'loop x{args.processes}':>9s} {'engine/xW':>9s} {'PSNR':>7s}")
    rows = {}
    with mp.get_context("fork").Pool(args.processes, initializer=_init_worker, initargs=(images,)) as pool:
        for name in names:
            g = torch.Generator().manual_seed(0)
            plans = [Plan((make_step(name, args.level, g),)) for i in range(args.batch)]
            row = measure(x, images, [plans], pool, args.repeats, device)
            row["agreement_psnr"] = None if degrade.info(name).stochastic else agreement(x, images, plans)
            rows[name] = row
            check = "" if row["agreement_psnr"] is None else f"{min(row['agreement_psnr'], 99):7.1f}"
            print(f"{name:24s} {row['engine']:9.1f} {row['loop_1']:9.1f} {row['loop_pool']:9.1f} "
                  f"{row['engine'] / row['loop_pool']:9.2f} {check:>7s}")
        mixed_sets = [degrade.sample_plans(args.batch, args.preset, seed=s) for s in range(args.mixed_batches)]
        mixed = measure(x, images, mixed_sets, pool, args.repeats, device)
    print(f"{args.preset + ' (mixed)':24s} {mixed['engine']:9.1f} {mixed['loop_1']:9.1f} {mixed['loop_pool']:9.1f} "
          f"{mixed['engine'] / mixed['loop_pool']:9.2f}")
    six = [n for n in GOAL_OPS if n in rows]
    geomean = math.exp(sum(math.log(rows[n]["engine"] / rows[n]["loop_1"]) for n in six) / max(1, len(six)))
    geomean_torch = math.exp(sum(math.log(rows[n]["engine_torch_only"] / rows[n]["loop_1"]) for n in six)
                             / max(1, len(six)))
    print(f"geometric mean engine / loop x1 over {', '.join(six)}: {geomean:.2f} (torch path only: {geomean_torch:.2f})")
    if args.no_write or args.quick:
        return 0

    payload = {"machine": info, "device": str(device), "batch": args.batch, "size": args.size, "level": args.level,
               "processes": args.processes, "images_per_second": rows, "mixed_preset": args.preset, "mixed": mixed,
               "goal_ops_geomean_vs_loop_1": geomean, "goal_ops_geomean_torch_only": geomean_torch}
    path = write_json(f"degrade_{device.type}", payload)
    lines = [
        f"Measured on {describe(info)}; engine on `{device}`. Batch {args.batch}, {args.size}x{args.size}, "
        f"single distortions at level {args.level:g}, images/s (median of {args.repeats}). `engine`: with its CPU "
        "fast paths; `torch only`: the batched torch ops alone (the GPU path, run on the CPU); `loop x1`: a "
        f"per-image OpenCV/numpy loop in one process; `loop x{args.processes}`: the same loop in {args.processes} "
        "worker processes. PSNR: engine output against the loop's for the same plan (deterministic distortions; "
        "99 means equal to float precision).",
        "",
        f"Goal ops ({', '.join(six)}): geometric mean of engine / loop x1 **{geomean:.2f}** (torch only: "
        f"{geomean_torch:.2f}).",
        "",
        f"| distortion | engine | torch only | loop x1 | loop x{args.processes} | engine / loop x1 | "
        f"engine / loop x{args.processes} | PSNR (dB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.append(f"| **{args.preset} mixed preset** | **{mixed['engine']:.0f}** | {mixed['engine_torch_only']:.0f} | "
                 f"{mixed['loop_1']:.0f} | {mixed['loop_pool']:.0f} | {mixed['engine'] / mixed['loop_1']:.2f} | "
                 f"**{mixed['engine'] / mixed['loop_pool']:.2f}** | |")
    for name, r in rows.items():
        check = "" if r["agreement_psnr"] is None else f"{min(r['agreement_psnr'], 99):.1f}"
        lines.append(f"| {name} | {r['engine']:.0f} | {r['engine_torch_only']:.0f} | {r['loop_1']:.0f} | "
                     f"{r['loop_pool']:.0f} | {r['engine'] / r['loop_1']:.2f} | {r['engine'] / r['loop_pool']:.2f} | "
                     f"{check} |")
    update_section(f"bench_degrade:{device.type}", "\n".join(lines))
    print(f"wrote {path} and BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
