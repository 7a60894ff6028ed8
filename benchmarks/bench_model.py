"""Model cost: parameters, MACs, forward and forward+backward time per batch for every variant.

Forward+backward is a stage-2 step (predictor and restoration trainable, DRE-Net frozen);
MACs are counted by torch's FLOP counter on one image (FLOPs / 2). For the shipped weights, whose
fitted linear head gives the score, the score alone (DRE-Net and the head) is timed beside the
whole network (``return_all``: restoration and score predictor too), on one image's 9 crops. Writes
``benchmarks/results/model_<device>.json`` and its BENCHMARKS.md section.

    python benchmarks/bench_model.py [--device cuda]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dri  # noqa: E402
from _report import describe, machine, median_time, update_section, write_json  # noqa: E402

BATCH = {"dri_iqa_tiny": 8, "dri_iqa_base": 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = {}
    for name in dri.list_models():
        torch.manual_seed(0)
        model = dri.create_model(name).to(device)
        model.set_stage(2)
        size, batch = model.config.input_size, BATCH.get(name, 4)
        x = torch.rand(batch, 3, size, size, device=device)
        params = {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in ("dre", "restorer", "predictor")}
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x[:1])
        macs = counter.get_total_flops() / 2

        def forward():
            with torch.no_grad():
                model(x)

        def step():
            model.zero_grad(set_to_none=True)
            model(x).mean().backward()

        rows[name] = {"batch": batch, "input": size, "params": params, "params_total": sum(params.values()),
                      "macs_per_image": macs, "forward_s": median_time(forward, args.repeats, sync),
                      "forward_backward_s": median_time(step, args.repeats, sync)}
        r = rows[name]
        print(f"{name}: {r['params_total'] / 1e6:.1f}M params, {macs / 1e9:.2f} GMACs/image, batch {batch}: "
              f"forward {r['forward_s']:.3f} s, forward+backward {r['forward_backward_s']:.3f} s")
    shipped = shipped_scoring(device, args.repeats, sync)
    print(f"dri_iqa_tiny (shipped), 9 crops: score {shipped['score_s']:.4f} s, whole network "
          f"{shipped['whole_s']:.4f} s")
    info = machine()
    write_json(f"model_{device.type}", {"machine": info, "device": str(device), "models": rows, "shipped": shipped})
    lines = [f"Measured on {describe(info)}; device `{device}`. Forward+backward: a stage-2 step (DRE-Net frozen).",
             "", "| variant | params (DRE / restoration / predictor) | GMACs / image | batch | forward | forward+backward |",
             "|---|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        p = r["params"]
        lines.append(f"| {name} ({r['input']} px) | {r['params_total'] / 1e6:.1f}M ({p['dre'] / 1e6:.1f} / "
                     f"{p['restorer'] / 1e6:.2f} / {p['predictor'] / 1e6:.1f}) | {r['macs_per_image'] / 1e9:.2f} | "
                     f"{r['batch']} | {r['forward_s']:.3f} s | {r['forward_backward_s']:.3f} s |")
    lines += ["", f"Shipped `dri_iqa_tiny` (linear head), one image's 9 crops: the score {shipped['score_s'] * 1e3:.1f} ms, "
              f"the whole network {shipped['whole_s'] * 1e3:.1f} ms ({shipped['whole_s'] / shipped['score_s']:.2f}x)."]
    update_section(f"bench_model:{device.type}", "\n".join(lines))
    return 0


def shipped_scoring(device: torch.device, repeats: int, sync) -> dict[str, float]:
    """Seconds per forward of the shipped weights on 9 crops: the score alone and the whole network."""
    model = dri.create_model("dri_iqa_tiny", pretrained=True).to(device).eval()
    size = model.config.input_size
    x = torch.rand(9, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)

    def score():
        with torch.no_grad():
            model(x)

    def whole():
        with torch.no_grad():
            model(x, return_all=True)

    runs = 5 * repeats  # a short forward: more runs for a steady median
    return {"crops": 9, "score_s": median_time(score, runs, sync), "whole_s": median_time(whole, runs, sync)}


if __name__ == "__main__":
    sys.exit(main())
