"""Training input throughput: group shards against degrading on the fly in DataLoader workers.

* shards: ``datasets.shards.GroupShards`` over shards built beforehand (decode 5 PNGs per group,
  cut patches, compute masks);
* on the fly: the way IQA training code usually works: each DataLoader worker reads a pristine
  photo, crops it, draws the group's plans and degrades x1, x2, y image by image with
  OpenCV/numpy (``benchmarks/baseline.py``), then cuts the same patches and the masks are computed.

Both use W DataLoader workers and the same batch (groups) and patch size. Writes
``benchmarks/results/loader.json`` and its BENCHMARKS.md section.

    python benchmarks/bench_loader.py [--groups 384] [--workers 2]
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import describe, machine, update_section, write_json  # noqa: E402
from baseline import apply_plan  # noqa: E402
from datasets.shards import GroupShards, loader  # noqa: E402
from datasets.decoding import read  # noqa: E402
from degrade.pairs import group_plans, relation_masks  # noqa: E402
from degrade.samples import sample_paths  # noqa: E402
from datasets.shardformat import BuildSpec
from pipelines.build import build  # noqa: E402
from pipelines.runner import start_ray  # noqa: E402


class OnTheFly(Dataset):
    """One dual-representation group per item, degraded per image in the worker."""

    def __init__(self, n: int, size: int, patch: int) -> None:
        self.paths = list(sample_paths().values())
        self.n, self.size, self.patch = n, size, patch

    def __len__(self) -> int:
        return self.n

    def _crop(self, path, g) -> np.ndarray:
        image = read(path)  # read the pristine photo, as loaders do
        h, w = image.shape[-2:]
        top = int(torch.randint(h - self.size + 1, (), generator=g))
        left = int(torch.randint(w - self.size + 1, (), generator=g))
        return image[:, top : top + self.size, left : left + self.size].permute(1, 2, 0).numpy().astype(np.float32) / 255

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        a, b = torch.randperm(len(self.paths), generator=g)[:2].tolist()
        ref_a, ref_b = self._crop(self.paths[a], g), self._crop(self.paths[b], g)
        plans = group_plans("arniqa", "dri", g)
        views = [apply_plan(ref_a, plans.x1), apply_plan(ref_a, plans.x2), apply_plan(ref_b, plans.y)]
        p = self.patch
        patches = []
        for view in views:
            u8 = (np.clip(view, 0, 1) * 255 + 0.5).astype(np.uint8)
            tops = torch.randint(self.size - p + 1, (2,), generator=g).tolist()
            lefts = torch.randint(self.size - p + 1, (2,), generator=g).tolist()
            patches.append(np.stack([u8[t : t + p, l : l + p] for t, l in zip(tops, lefts)]))
        return torch.from_numpy(np.stack(patches)).permute(0, 1, 4, 2, 3), (str(a), str(b)), plans


def collate(items):
    images = torch.stack([i[0] for i in items])
    contents = [c for _, (a, b), _ in items for c in (a, a, a, a, b, b)]
    plans = [p for _, _, g in items for p in (g.x1, g.x1, g.x2, g.x2, g.y, g.y)]
    return images, relation_masks(contents, plans, "dri")


def rate(batches, groups_per_batch: int, warmup: int = 2) -> float:
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    count, start = 0, time.perf_counter()
    for _ in iterator:
        count += groups_per_batch
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=384)
    parser.add_argument("--batch", type=int, default=16, help="groups per batch")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = parser.parse_args()
    logging.getLogger("ray").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as out:
        start_ray(None, None)
        build(BuildSpec(groups=args.groups, per_shard=32, size=args.size), out)
        ray.shutdown()
        shards = rate(loader(GroupShards(out, batch_size=args.batch, patch=args.patch), num_workers=args.workers),
                      args.batch)
    fly = rate(DataLoader(OnTheFly(args.groups, args.size, args.patch), batch_size=args.batch,
                          num_workers=args.workers, collate_fn=collate), args.batch)
    info = machine()
    print(f"shards {shards:.1f} groups/s; on the fly {fly:.1f} groups/s; {shards / fly:.1f}x")
    write_json("loader", {"machine": info, "config": vars(args), "groups_per_second": {"shards": shards, "on_the_fly": fly},
                          "ratio": shards / fly})
    update_section("bench_loader", "\n".join([
        f"Measured on {describe(info)}. Batches of {args.batch} groups (six {args.patch} px patches each, relation "
        f"masks included), {args.workers} DataLoader workers, {args.size} px crops, arniqa preset; first two batches "
        "excluded.",
        "",
        "| input pipeline | groups/s | patches/s |",
        "|---|---:|---:|",
        f"| group shards (`datasets.shards.GroupShards`) | {shards:.0f} | {6 * shards:.0f} |",
        f"| degrade on the fly, per image, in the workers | {fly:.0f} | {6 * fly:.0f} |",
        "",
        f"Shards are **{shards / fly:.1f}x** faster.",
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
