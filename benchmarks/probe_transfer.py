"""Which representation carries quality to unseen photos? Linear probes, fitted on shards, tested on the transfer cell.

    python benchmarks/probe_transfer.py --shards SHARDS [--model dri_iqa_tiny | --checkpoint CKPT] [--score]

Each probe is a ridge regression (standardised features, penalty chosen by cross-validation) from one
set of features to the pseudo-label of shard images (the engine's degradations; the shards need the
teacher's labels, which ``dri.train`` caches beside them, see ``--teacher``), tested on the unseen
cell of ``bench_transfer.py`` (photos no shard image may come from: groups made from them are
skipped; independent degradation code). Feature sets:

* ``nss``: NIQE's 36 natural-scene statistics per image (the mean over its 96 px patches; see
  ``_niqe.py``): local mean and contrast divided out, content-normalised by construction;
* ``dre``: the model's DRE-Net vectors ``f_q`` and ``f_d`` of the whole image;
* ``score``: the model's own score (``--score``; scores every shard image with the grid of crops,
  several times slower);
* their unions.

Writes ``benchmarks/results/probe_transfer.json`` (``--out``) and prints one line per probe.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_transfer as bt  # noqa: E402
from datasets import pseudolabels  # noqa: E402
from datasets.decoding import decode  # noqa: E402
from datasets.shardformat import check_group, iter_samples, list_shards  # noqa: E402
from _niqe import patch_features  # noqa: E402
from _report import machine, write_json  # noqa: E402


def nss(image: np.ndarray) -> np.ndarray:
    return patch_features(image)[0].mean(axis=0)


def shard_images(root: Path, labels: Mapping[str, float], every: int, skip: set[str]):
    """(image, label) of every labelled view of every ``every``-th shard, groups from ``skip``'s sources left out."""
    for path in list_shards(root)[::every]:
        for sample in iter_samples(path):
            key, meta = sample["__key__"], check_group(sample)
            for view, reference in pseudolabels.VIEWS:
                label = labels.get(pseudolabels.label_key(key, view))
                if label is None or Path(meta[reference[-1]]["source"]).stem in skip:  # ref_a's content is side a
                    continue
                image = decode(sample[f"{view}.png"], f"{path}:{key}.{view}.png")
                yield np.ascontiguousarray(image.permute(1, 2, 0).numpy()), label


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", required=True, help="a shard folder with the teacher's cached labels")
    parser.add_argument("--teacher", default=bt.TEACHER, help=f"the pseudo-label to fit (default {bt.TEACHER})")
    parser.add_argument("--model", default="dri_iqa_tiny", help="a registered model with shipped weights")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint of dri.train instead of --model")
    parser.add_argument("--every", type=int, default=4, help="use every N-th shard (default 4)")
    parser.add_argument("--score", action="store_true", help="also probe with the model's own score")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/probe_transfer.json)")
    args = parser.parse_args(argv)
    import torch
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import dri

    torch.set_grad_enabled(False)
    root = Path(args.shards)
    labels = pseudolabels.load(root, args.teacher)
    if not labels:
        parser.error(f"{root}: no cached {args.teacher} labels (dri.train writes them; or datasets.pseudolabels.prepare)")
    model = dri.load_model(args.checkpoint, "cpu")[0] if args.checkpoint else \
        dri.create_model(args.model, pretrained=True).eval()

    def features(image: np.ndarray) -> dict[str, np.ndarray]:
        x = bt._chw(image)
        f_q, f_d = model.represent(x[None].float() / 255)
        out = {"nss": nss(image), "dre": torch.cat([f_q, f_d], 1)[0].numpy()}
        if args.score:
            out["score"] = np.array([dri.predict_images(model, [x], batch_size=1, device="cpu")[0].score])
        return out

    start = time.perf_counter()
    train, targets = [], []
    for image, label in shard_images(root, labels, args.every, set(bt.UNSEEN)):
        train.append(features(image))
        targets.append(label)
    print(f"{len(train)} shard images in {time.perf_counter() - start:.0f} s", flush=True)
    items = bt.make_cell(bt.unseen_photos(), engine=False, teacher=args.teacher)
    test = [features(i["image"]) for i in items]
    names = list(train[0])
    combos = [(n,) for n in names] + [("nss", "dre")] + ([("nss", "score"), tuple(names)] if args.score else [])
    y = np.array(targets)
    results = {"machine": machine(), "shards": root.name, "teacher": args.teacher, "train_images": len(y),
               "model": args.checkpoint or args.model, "probes": {}}
    for combo in combos:
        xs = np.array([np.concatenate([f[k] for k in combo]) for f in train])
        ts = np.array([np.concatenate([f[k] for k in combo]) for f in test])
        probe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15))).fit(xs, y)
        summary = bt.summarise(items, [float(v) for v in probe.predict(ts)])
        summary["train_r2"] = float(probe.score(xs, y))
        results["probes"]["+".join(combo)] = summary
        print(f"{'+'.join(combo):18s} train R2 {summary['train_r2']:.3f}; unseen: SRCC vs MS-SSIM "
              f"{summary['srcc_oracle']:.3f}, within-photo {summary['within_level']:.3f}, vs the teacher "
              f"{summary['srcc_teacher']:.3f}; JPEG {summary['per_type']['jpeg']['srcc_oracle']:.2f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    else:
        write_json("probe_transfer", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
