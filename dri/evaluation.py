"""The IQA evaluation protocol: score every image once (fixed crops), then metrics per split and their median.

The images and their splits come from a labelled source (``datasets.labelled``): a dataset in its
native layout, packed IQA shards or the pseudo-MOS set of group shards. Synthetic datasets also get
the SRCC per distortion type; ``level_consistency`` checks that scores fall as a distortion's level
rises.
"""
from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

import degrade
from datasets.labelled import LabelledSource
from datasets.shards import pseudo_mos
from degrade.plan import Plan
from degrade.sampling import at_level, get_preset, make_step
from degrade.seeding import generator

from . import metrics
from .inference import score_batches, score_crops
from .models import DRIIQA


def score_labelled(model: DRIIQA, source: LabelledSource, device, *, side: str = "all", split: int = 0,
                 batch: int = 16, workers: int = 0, progress: str | None = None) -> tuple[list[float], list[dict]]:
    """Predictions and labels (``quality``, ``content``, ``distortion``...) for one side of a source."""
    batches = source.batches(side, split=split, mode="eval", patch=model.config.input_size, batch=batch,
                             workers=workers, distributed=False)
    return score_batches(model, batches, device, progress)


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


def protocol(predictions: Sequence[float], labels: Sequence[dict], source: LabelledSource, n: int = 10,
             only: int | None = None) -> dict[str, Any]:
    """Metrics on the test side of each of ``n`` splits and their median (``only``: that split alone).

    The side of every image comes from ``source.side_of``: the rule that split the whole source,
    whatever subset of it was scored.
    """
    chosen = list(range(n)) if only is None else [only]
    for k in chosen:
        source.check_split(k)
    splits = []
    for k in chosen:
        test = [i for i, label in enumerate(labels) if source.side_of(label, k) == "test"]
        p, lab = [predictions[i] for i in test], [labels[i] for i in test]
        if len(test) < 3:
            raise ValueError(f"split {k} has {len(test)} scored test image(s); metrics need at least 3")
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
                      seed: int = 0, teacher: str = "ssim_psnr") -> dict[str, Any]:
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
        for name in names:
            first = make_step(name, 1, generator("levels", seed, r, name))
            plans = [Plan((at_level(first, level),)) for level in range(1, 6)]
            whole = (degrade.apply_plans(batch, plans, quantize=True) * 255).round().to(torch.uint8)
            scores = score_crops(model, whole[..., top : top + size, left : left + size], device).tolist()
            labels = [pseudo_mos(image, ref, teacher) for image in whole]
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
