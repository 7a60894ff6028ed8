"""The IQA evaluation protocol: score every image once (fixed crops), then metrics per split and their median.

Sources: a dataset in its native layout (``datasets.iqa``), packed IQA shards (``pipelines.pack_iqa``)
or the pseudo-MOS set derived from group shards. Synthetic datasets also get the SRCC per
distortion type; ``level_consistency`` checks that scores fall as a distortion's level rises.
"""
from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

import degrade
from datasets import iqa
from datasets.iqa.records import RecordDataset, collate
from datasets.iqa.table import split_contents
from datasets.shards import IQAShards, PseudoIQAShards, crop_side, loader, pseudo_mos, shard_contents
from degrade.plan import Plan
from degrade.sampling import at_level, make_step, get_preset

from . import metrics
from .inference import score_batches, score_crops
from .models import DRIIQA


def score_source(model: DRIIQA, source: str, root: str | Path, device, batch: int = 16, workers: int = 0,
                 unit: str = "crop", test_of: tuple[int, int, float] | None = None, progress: str | None = None,
                 **options: Any) -> tuple[list[float], list[dict]]:
    """Predictions and labels (with ``quality``, ``content``, ``distortion``) for the images of a source.

    ``source`` is a ``datasets.iqa`` name, ``"shards"`` (packed IQA shards) or ``"pseudo"`` (group
    shards). For the pseudo set, ``test_of=(split, seed, train)`` scores only that split's test side.
    """
    size = model.config.input_size
    if source == "pseudo":
        split, seed, train = test_of if test_of is not None else (0, 0, 0.8)
        data = PseudoIQAShards(root, side="test" if test_of is not None else "all", mode="eval", patch=size,
                               batch_size=batch, unit=unit, split=split, split_seed=seed, train=train,
                               contents=shard_contents(root) if unit == "photo" else None)
        return score_batches(model, loader(data, num_workers=workers), device, progress)
    if source == "shards":
        data = IQAShards(root, side="all", mode="eval", patch=size, batch_size=batch)
        return score_batches(model, loader(data, num_workers=workers), device, progress)
    table = iqa.load(source, root, **options)
    batches = DataLoader(RecordDataset(table.records, "eval", size), batch_size=batch, num_workers=workers,
                         collate_fn=collate)
    predictions, labels = score_batches(model, batches, device, progress)
    for label, record in zip(labels, table.records):
        label["folds_source"] = "table"
        label["official"] = record.official
    return predictions, labels


def sides(labels: Sequence[dict], source: str, n: int, seed: int, train: float) -> list[list[str]]:
    """For each split, the side of every image: recorded folds for packed shards, recomputed otherwise."""
    if source == "shards":
        if any(len(label.get("folds") or []) < n for label in labels):
            raise ValueError(f"the shards record fewer than {n} splits; pack them with --splits {n} or ask for fewer")
        return [[label["folds"][k] for label in labels] for k in range(n)]
    if source == "pseudo" and labels and labels[0].get("unit") == "crop":
        return [[crop_side(label["content"], seed, k, train) for label in labels] for k in range(n)]
    contents = sorted({label["content"] for label in labels})
    out = []
    for k in range(n):
        side = split_contents(contents, seed, k, train)
        out.append([side[label["content"]] for label in labels])
    return out


def _metrics(predictions: Sequence[float], labels: Sequence[dict]) -> dict[str, float]:
    quality = [float(label["quality"]) for label in labels]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return metrics.evaluate(predictions, quality)


def per_distortion(predictions: Sequence[float], labels: Sequence[dict], minimum: int = 5) -> dict[str, float]:
    """SRCC within each distortion type that has at least ``minimum`` images."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        if label.get("distortion"):
            groups[label["distortion"]].append(i)
    out = {}
    for name, idx in sorted(groups.items()):
        if len(idx) >= minimum:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[name] = metrics.srcc([predictions[i] for i in idx], [labels[i]["quality"] for i in idx])
    return out


def protocol(predictions: Sequence[float], labels: Sequence[dict], source: str, n: int = 10, seed: int = 0,
             train: float = 0.8, only: int | None = None) -> dict[str, Any]:
    """Metrics on the test side of each split and the median over splits (``only``: one split)."""
    assignment = sides(labels, source, n if only is None else only + 1, seed, train)
    chosen = range(n) if only is None else [only]
    splits = []
    for k in chosen:
        test = [i for i, side in enumerate(assignment[k]) if side == "test"]
        p, lab = [predictions[i] for i in test], [labels[i] for i in test]
        splits.append({"split": k, "images": len(test), **_metrics(p, lab), "per_distortion": per_distortion(p, lab)})
    keys = ("srcc", "plcc", "plcc_logistic", "krcc", "rmse")
    median = {key: statistics.median(s[key] for s in splits) for key in keys}
    kinds = sorted({k for s in splits for k in s["per_distortion"]})
    per_kind = {k: statistics.median(s["per_distortion"][k] for s in splits if k in s["per_distortion"]) for k in kinds}
    return {"splits": splits, "median": median, "per_distortion_median": per_kind}


def whole_set(predictions: Sequence[float], labels: Sequence[dict]) -> dict[str, Any]:
    """Metrics over every image (cross-dataset testing)."""
    return {"images": len(labels), **_metrics(predictions, labels), "per_distortion": per_distortion(predictions, labels)}


@torch.no_grad()
def level_consistency(model: DRIIQA, references: Sequence[torch.Tensor], device, preset: str = "arniqa",
                      seed: int = 0) -> dict[str, Any]:
    """Mean within-image SRCC between predicted quality and distortion level (1..5, higher = worse).

    Each pristine reference (uint8 (3, S, S), S >= the model input) is degraded by every
    distortion of the preset at levels 1..5 with shared random draws (only severity changes);
    the centre crop at the model's input size is scored. A perfect model scores 1. The same
    statistic for the pseudo-MOS labels of the whole degraded images (``pseudo_mos_*``) shows how
    far a model that learns those labels can go.
    """
    model = model.to(device).eval()
    size = model.config.input_size
    names = get_preset(preset).distortions
    levels = [-level for level in range(1, 6)]
    per_name: dict[str, list[float]] = defaultdict(list)
    per_name_labels: dict[str, list[float]] = defaultdict(list)
    for r, ref in enumerate(references):
        batch = (ref.float() / 255.0).unsqueeze(0).expand(5, -1, -1, -1).contiguous()
        top, left = (ref.shape[-2] - size) // 2, (ref.shape[-1] - size) // 2
        for n, name in enumerate(names):
            first = make_step(name, 1, torch.Generator().manual_seed(seed * 100003 + r * 101 + n))
            plans = [Plan((at_level(first, level),)) for level in range(1, 6)]
            whole = (degrade.apply_plans(batch, plans, quantize=True) * 255).round().to(torch.uint8)
            scores = score_crops(model, whole[..., top : top + size, left : left + size], device).tolist()
            labels = [pseudo_mos(image, ref) for image in whole]
            for values, into in ((scores, per_name[name]), (labels, per_name_labels[name])):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    value = metrics.srcc(values, levels)
                if value == value:  # skip NaN (constant values)
                    into.append(value)

    def summary(per: dict[str, list[float]]) -> tuple[float, dict[str, float]]:
        every = [x for v in per.values() for x in v]
        return (statistics.fmean(every) if every else float("nan"),
                {name: statistics.fmean(v) for name, v in per.items() if v})

    mean, means = summary(per_name)
    label_mean, label_means = summary(per_name_labels)
    return {"mean_srcc": mean, "references": len(references), "per_distortion": means,
            "pseudo_mos_mean_srcc": label_mean, "pseudo_mos_per_distortion": label_means}
