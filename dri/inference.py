"""Scoring images with a model: the deterministic crop policy, batched over a DataLoader.

Crop policy (``crop=``):

* ``"grid"`` (default): a 3 x 3 grid of crops at the model's input size spread from corner to
  corner, scores averaged: the five crops and the four edge midpoints, covering all of an image up
  to three input sizes on a side. On unseen photos of 384 px it orders degradation levels better
  than five crops (within-photo SRCC 0.77 against 0.68 for the first release of the tiny weights,
  ``benchmarks/bench_transfer.py``), at 9/5 of the cost.
* ``"five"``: the four corner crops and the centre crop (the evaluation protocol of ``dri.evaluate``).
* ``"resize"``: the whole image resized to the input size (aspect ratio not kept).

Images smaller than the input size are first resized up (short side = input size) for the crop
policies. ``max_side`` first shrinks images whose longer side exceeds it (area filter), so crops of
a very large photo still see a meaningful part of it.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from datasets.crops import five_crops, grid_crops
from datasets.decoding import read
from datasets.progress import progress as progress_bar

from .models import DRIIQA
from .models.cues import tone_of_images
from .policy import CROPS


def prepare(image: torch.Tensor, size: int, crop: str = CROPS[0], max_side: int | None = None) -> torch.Tensor:
    """A uint8 (3, H, W) image as the model's input: (9, 3, size, size) for the grid, (5, ...) for five
    crops, (1, ...) for resize."""
    if max_side is not None and max(image.shape[-2:]) > max_side:
        scale = max_side / max(image.shape[-2:])
        shape = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
        image = F.interpolate(image[None].float(), size=shape, mode="area")[0].round().clamp(0, 255).to(torch.uint8)
    if crop == "grid":
        return grid_crops(image, size)
    if crop == "five":
        return five_crops(image, size)
    if crop == "resize":
        out = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return out.round().clamp(0, 255).to(torch.uint8)
    raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")


# Crops per forward pass on the CPU. Larger sub-batches overflow the caches in the restoration
# network's full-resolution feature maps: on 2 cores, 80 crops at once run at a third of the rate
# of ten passes of 8 (``benchmarks/bench_train.py`` measures prediction).
CPU_CHUNK = 8


@torch.inference_mode()
def score_crops(model: DRIIQA, crops: torch.Tensor, device: torch.device | str, chunk: int | None = None) -> torch.Tensor:
    """Scores of (B, K, 3, S, S) or (B, 3, S, S) uint8 crops, one per image: (B,).

    Crops go through the model ``chunk`` at a time (default: :data:`CPU_CHUNK` on the CPU, all at
    once on a GPU), in channels-last layout; the result does not depend on ``chunk``. A fitted
    head scores each image's features averaged over its crops (:func:`image_features`); the score
    predictor's scores of the crops are averaged.
    """
    if model.has_head:
        return model.head(image_features(model, crops, device, chunk)).float().cpu()
    crops = _distinct_crops(crops)
    b, k = crops.shape[:2]
    scores = [model(x).float().cpu() for x, _ in _chunks(crops, device, chunk, tones=False)]
    return torch.cat(scores).view(b, k).mean(dim=1)


@torch.inference_mode()
def image_features(model: DRIIQA, crops: torch.Tensor, device: torch.device | str,
                   chunk: int | None = None) -> torch.Tensor:
    """The head's features of images from their (B, K, 3, S, S) uint8 crops: each crop's, with the tone of
    its whole image over all K crops (:func:`image_tones`), averaged over the K: (B, F) on ``device``.
    What the head is fitted to (``dri.stages.head_features``) and what it scores."""
    crops = _distinct_crops(crops)
    if crops.shape[-2:] != (model.config.input_size,) * 2:
        raise ValueError(f"the head's features need crops of {model.config.input_size} px, got {tuple(crops.shape[-2:])}")
    b, k = crops.shape[:2]
    features = []
    for x, tone in _chunks(crops, device, chunk, tones=True):
        f_q, f_d = model.represent(x)
        features.append(model.head.features(f_q, f_d, x, tone))
    return torch.cat(features).view(b, k, -1).mean(dim=1)


def _distinct_crops(crops: torch.Tensor) -> torch.Tensor:
    """(B, K, 3, S, S) crops, (B, 3, S, S) as K = 1, and K = 1 where an image's crops are one and the same
    (an image of exactly the input size)."""
    if crops.ndim == 4:
        crops = crops.unsqueeze(1)
    if crops.shape[1] > 1 and bool((crops == crops[:, :1]).all()):
        crops = crops[:, :1]
    return crops


def _chunks(crops: torch.Tensor, device: torch.device | str, chunk: int | None, tones: bool):
    """The crops of (B, K, ...) as floats in [0, 1] on ``device``, ``chunk`` at a time, each chunk with its
    crops' image tones (or ``None``), in channels-last layout."""
    b, k = crops.shape[:2]
    device = torch.device(device)
    if chunk is None:
        chunk = CPU_CHUNK if device.type == "cpu" else b * k
    flat = crops.flatten(0, 1)
    all_tones = image_tones(crops) if tones else None
    for start in range(0, b * k, chunk):
        x = flat[start : start + chunk].to(device).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        yield x, None if all_tones is None else all_tones[start : start + chunk].to(device)


def image_tones(crops: torch.Tensor) -> torch.Tensor:
    """The tone cues of the images of (B, K, 3, S, S) uint8 crops, one row per crop: (B * K, 12), float64."""
    return tone_of_images(crops.float() / 255).repeat_interleave(crops.shape[1], 0)


def score_batches(model: DRIIQA, batches: Iterable[dict], device: torch.device | str,
                  progress: str | None = None) -> tuple[list[float], list[dict]]:
    """Predictions and labels over batches with ``images`` (crops) and ``labels``.

    ``progress``: a description for a progress bar on stderr (none when ``None``).
    """
    predictions: list[float] = []
    labels: list[dict] = []
    was_training = model.training
    model.eval()
    with progress_bar(desc=progress or "", unit="img", disable=progress is None, leave=False) as bar:
        for batch in batches:
            predictions += score_crops(model, batch["images"], device).tolist()
            labels += batch["labels"]
            bar.update(len(batch["labels"]))
    model.train(was_training)
    return predictions, labels


def find_images(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files and folders (searched recursively, sorted) to image paths, and what was left out with why.

    Folders follow the rules of ``datasets.sources.FolderSource``: image suffixes only, no hidden
    files, no links that leave the folder, dangle or loop, only regular files. Files named
    directly are kept (reading them reports any problem).
    """
    from datasets.sources import FolderSource

    paths: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            source = FolderSource(path)
            paths += [i.path for i in source.items()]
            skipped += [(r.path, r.reason) for r in source.rejected]
        else:
            paths.append(path)
    return paths, skipped


def _quiet_worker(_: int) -> None:
    """DataLoader workers decode on one thread each: the cores are shared out once, not fought over."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class _Images(Dataset):
    def __init__(self, items: Sequence, size: int, crop: str, max_side: int | None) -> None:
        self.items, self.size, self.crop, self.max_side = list(items), size, crop, max_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        try:
            if isinstance(item, torch.Tensor):
                image = (item.clamp(0, 1) * 255).round().to(torch.uint8) if item.is_floating_point() else item
            else:
                image = read(item, max_side=self.max_side)
            return i, prepare(image, self.size, self.crop, self.max_side), None
        except (OSError, ValueError) as error:
            return i, None, str(error)


def _collate(items):
    good = [(i, x) for i, x, e in items if x is not None]
    bad = [(i, e) for i, _, e in items if e is not None]
    crops = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], crops, bad


@dataclass
class Prediction:
    item: str
    score: float | None
    error: str | None = None


def predict_images(model: DRIIQA, inputs: Sequence, *, batch_size: int = 16, device: str | torch.device = "cpu",
                   crop: str = CROPS[0], max_side: int | None = None, workers: int = 0,
                   progress: bool = False, chunk: int | None = None) -> list[Prediction]:
    """Score image files, folders (recursive) or tensors ((3, H, W) float in [0, 1] or uint8), in input order.

    Unreadable files get ``score=None`` and the reason in ``error``; the others are unaffected. Files a
    folder scan leaves out (other suffixes, hidden files, links leaving the folder, non-regular
    files) come last, also with ``score=None`` and the reason. ``chunk``: crops per forward pass
    (default: :data:`CPU_CHUNK` on the CPU, a whole batch on a GPU).
    """
    items: list = []
    skipped: list[tuple[str, str]] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            items.append(x)
        else:
            found, left_out = find_images([x])
            items += found
            skipped += left_out
    model = model.to(device).eval()
    data = _Images(items, model.config.input_size, crop, max_side)
    results: list[Prediction] = [Prediction(str(x) if not isinstance(x, torch.Tensor) else f"tensor[{i}]", None)
                                 for i, x in enumerate(items)]
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                        worker_init_fn=_quiet_worker if workers else None)
    with progress_bar(total=len(items), desc="scoring", unit="img", disable=not progress) as bar:
        for indices, crops, bad in loader:
            if crops is not None:
                for i, score in zip(indices, score_crops(model, crops, device, chunk).tolist()):
                    results[i].score = score
            for i, error in bad:
                results[i].error = error
            bar.update(len(indices) + len(bad))
    return results + [Prediction(path, None, reason) for path, reason in skipped]
