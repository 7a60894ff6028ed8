"""A map-style torch dataset over IQA records read from their files (no packing needed)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from degrade.seeding import generator

from ..crops import iqa_view
from ..decoding import read
from .table import Record


class RecordDataset(Dataset):
    """Items ``{"image", "ref", "has_ref", "quality", "score", "key", "label"}`` for a list of records.

    ``mode="train"``: a random crop (seeded by (seed, epoch, image); call ``set_epoch``) and a
    flip; ``mode="eval"``: five fixed crops. Unreadable files raise with their path.
    """

    def __init__(self, records: Sequence[Record], mode: str = "eval", patch: int = 224, seed: int = 0,
                 flip: bool = True) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be train or eval, got {mode!r}")
        self.records, self.mode, self.patch, self.seed, self.flip = list(records), mode, patch, seed, flip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        image = read(record.image)
        ref = read(record.ref) if record.ref is not None else None
        g = None
        if self.mode == "train":
            g = generator(self.seed, self.epoch, record.image)
        crop, ref_crop, has_ref = iqa_view(image, ref, self.mode, self.patch, g, self.flip)
        label = {"image": str(record.image), "content": record.content, "distortion": record.distortion,
                 "level": record.level, "score": record.score, "quality": record.quality}
        return {"image": crop, "ref": ref_crop, "has_ref": has_ref, "quality": torch.tensor(record.quality, dtype=torch.float32),
                "score": torch.tensor(record.score, dtype=torch.float64), "key": str(record.image), "label": label}


def collate(items: list[dict]) -> dict:
    """Batch items of :class:`RecordDataset` (the same keys as ``datasets.shards.IQAShards`` batches)."""
    return {"images": torch.stack([i["image"] for i in items]), "refs": torch.stack([i["ref"] for i in items]),
            "has_ref": torch.tensor([i["has_ref"] for i in items]), "quality": torch.stack([i["quality"] for i in items]),
            "score": torch.stack([i["score"] for i in items]), "keys": [i["key"] for i in items],
            "labels": [i["label"] for i in items]}
