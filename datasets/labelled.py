"""Labelled data, one contract for training and evaluation: ``open_labelled(kind, root, ...)``.

Three kinds of labelled data, one class each, all with the same face:

* :class:`TableSource`: a dataset in its native layout read by ``datasets.iqa`` (any of
  ``datasets.iqa.names()``, the generic ``csv`` included), with its typed reader options;
* :class:`PackedSource` (``shards``): IQA shards written by ``pipelines.pack_iqa``;
* :class:`PseudoSource` (``pseudo``): every degraded image of a group-shard folder with a
  full-reference pseudo-label (``datasets.teachers``): not human opinion.

Each owns its batches (``batches``), its label schema (``human``, ``describe``) and the side of
every record in every split (``side_of``); splits never put one content on two sides, and the
same seed gives the same splits on every machine. Training (``dri.train``) and evaluation
(``dri.evaluate``) consume this interface and never ask which kind they hold.

Batches are dicts: ``images`` (uint8 (B, 3, P, P) to train, (B, 5, 3, P, P) five fixed crops to
evaluate), ``refs`` and ``has_ref``, ``quality`` (B,) in [0, 1] higher-better, ``score`` (raw),
``keys`` and ``labels`` (one dict per image: ``content``, ``distortion``, ``quality``...).
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from . import iqa
from .iqa.table import split_contents
from .shardformat import iter_samples, list_shards, read_manifest

# torch and the loaders are imported where batches are made, so that listing the kinds (for a
# command line's --help) costs nothing.

SIDES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitRule:
    """How a source is split: ``train`` fraction of contents, seeded; ``official``: the dataset's own
    split (True), the seeded ones (False), or the official one where it exists (None)."""

    seed: int = 0
    train: float = 0.8
    official: bool | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.train < 1.0:
            raise ValueError(f"the train fraction must be in (0, 1), got {self.train}")


class LabelledSource(ABC):
    """Images with quality labels in [0, 1] (higher is better), and their content-disjoint splits."""

    kind = "labelled"
    human = True  # labels are human opinion scores (False: full-reference pseudo-labels)
    reads_group_shards = False  # its root is a group-shard folder (so dri.train can build one)

    def __init__(self, name: str, root: str | os.PathLike, rule: SplitRule) -> None:
        self.name, self.root, self.rule = name, Path(root), rule

    @abstractmethod
    def describe(self) -> str:
        """One line for logs and results: what the data is and how it is labelled."""

    @property
    def max_splits(self) -> int | None:
        """How many splits exist (None: as many as asked for)."""
        return None

    def check_split(self, split: int) -> None:
        limit = self.max_splits
        if split < 0 or (limit is not None and split >= limit):
            raise ValueError(f"{self.describe()}: split {split} does not exist; "
                             f"{'it has ' + str(limit) + ' split(s): 0..' + str(limit - 1) if limit else ''}"
                             f"{' (the official split is one split; set official false for seeded ones)' if self.official else ''}")

    @property
    def official(self) -> bool:
        return False

    @abstractmethod
    def side_of(self, label: Mapping[str, Any], split: int) -> str:
        """``"train"``, ``"val"`` or ``"test"``: where the image of ``label`` falls in split ``split``."""

    @abstractmethod
    def batches(self, side: str, *, split: int = 0, mode: str = "eval", patch: int = 224, batch: int = 16,
                workers: int = 0, epoch: int = 0, seed: int = 0, flip: bool = True,
                distributed: bool = True) -> Iterable[dict]:
        """Batches of one side of one split (``side="all"``: every image). ``mode="eval"`` reads every
        image exactly once, in order, with five fixed crops (on this process alone when
        ``distributed`` is False); ``mode="train"`` shuffles per ``epoch`` with random crops."""

    def prepare(self, workers: int = 1) -> None:
        """Do once, before reading batches, what every epoch would otherwise redo (nothing, for most)."""

    def pristine_references(self, count: int, split: int = 0) -> list:
        """Up to ``count`` pristine crops on the test side of ``split`` (for the level-consistency check)."""
        raise ValueError(f"{self.describe()}: the level-consistency check needs group shards (--dataset pseudo)")


class TableSource(LabelledSource):
    """A dataset in its native layout (``datasets.iqa``), e.g. KADID-10k or one's own CSV."""

    kind = "table"

    def __init__(self, name: str, root: str | os.PathLike, rule: SplitRule = SplitRule(),
                 options: Mapping[str, Any] | None = None, strict: bool = True) -> None:
        super().__init__(name, root, rule)
        self.table = iqa.load(name, root, strict=strict, **dict(options or {}))
        if rule.official and not self.table.has_official_split:
            raise ValueError(f"{name} has no official split; set official false (or leave it unset)")
        self._official = self.table.has_official_split if rule.official is None else rule.official
        self._sides: dict[int, dict[str, str]] = {}

    @property
    def official(self) -> bool:
        return self._official

    @property
    def max_splits(self) -> int | None:
        return 1 if self._official else None

    def describe(self) -> str:
        split = "its official split" if self._official else f"content-disjoint splits (seed {self.rule.seed})"
        return f"{self.name} at {self.root}, {len(self.table)} images of {len(self.table.contents())} contents, {split}"

    def side_of(self, label: Mapping[str, Any], split: int) -> str:
        self.check_split(split)
        if self._official:
            return label["official"] or "train"
        if split not in self._sides:
            self._sides[split] = split_contents(self.table.contents(), self.rule.seed, split, self.rule.train)
        return self._sides[split][label["content"]]

    def batches(self, side, *, split=0, mode="eval", patch=224, batch=16, workers=0, epoch=0, seed=0, flip=True,
                distributed=True):
        from torch.utils.data import DataLoader, DistributedSampler

        from .iqa.records import RecordDataset, collate
        from .shards import ignore_stop_signals, rank_and_world

        records = [r for r in self.table if side == "all" or self.side_of(_label(r), split) == side]
        data = RecordDataset(records, mode, patch, seed, flip)
        if mode == "eval":
            return DataLoader(data, batch_size=batch, num_workers=workers, collate_fn=collate,
                              worker_init_fn=ignore_stop_signals if workers else None)
        rank, world = rank_and_world() if distributed else (0, 1)
        sampler = DistributedSampler(data, world, rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        data.set_epoch(epoch)
        return DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers,
                          collate_fn=collate, worker_init_fn=ignore_stop_signals if workers else None)


def _label(record: iqa.Record) -> dict[str, Any]:
    return {"content": record.content, "official": record.official}


class PackedSource(LabelledSource):
    """IQA shards written by ``pipelines.pack_iqa`` (their labels record the sides of every split)."""

    kind = "shards"

    def __init__(self, root: str | os.PathLike, rule: SplitRule = SplitRule()) -> None:
        manifest = read_manifest(root)
        if manifest is None:
            raise FileNotFoundError(f"{root}: no _meta/manifest.json; expected a folder written by pipelines.pack_iqa")
        if manifest.get("kind") != "iqa":
            raise ValueError(f"{root}: not written by pipelines.pack_iqa (kind {manifest.get('kind')!r})")
        super().__init__(str(manifest.get("dataset", "shards")), root, rule)
        self.manifest = manifest
        self._splits = int(manifest.get("config", {}).get("splits", 0))
        self._official = bool(rule.official)

    @property
    def official(self) -> bool:
        return self._official

    @property
    def max_splits(self) -> int | None:
        return 1 if self._official else self._splits

    def describe(self) -> str:
        split = "its official split" if self._official else f"its {self._splits} recorded splits"
        return f"packed {self.name} shards at {self.root} ({self.manifest.get('records')} images), {split}"

    def side_of(self, label, split):
        from .shards import packed_side

        self.check_split(split)
        return packed_side(label, split, self._official)

    def batches(self, side, *, split=0, mode="eval", patch=224, batch=16, workers=0, epoch=0, seed=0, flip=True,
                distributed=True):
        from .shards import IQAShards, loader

        if side != "all":
            self.check_split(split)
        data = IQAShards(self.root, split=split, side=side, official=self._official, mode=mode, patch=patch,
                         batch_size=batch, flip=flip, seed=seed)
        data.split_ranks = distributed
        data.set_epoch(epoch)
        return loader(data, num_workers=workers)


class PseudoSource(LabelledSource):
    """Every x1, x2 and y of a group-shard folder, labelled by a full-reference teacher (pseudo-labels).

    ``unit="crop"`` holds out crops (source image and view), ``"photo"`` whole source images;
    ``pristine`` adds each group's reference with the label 1 to the training side.
    """

    kind = "pseudo"
    human = False
    reads_group_shards = True

    def __init__(self, root: str | os.PathLike, rule: SplitRule = SplitRule(), *, unit: str = "crop",
                 teacher: str = "ssim_psnr", pristine: bool = False) -> None:
        super().__init__("pseudo", root, rule)
        if rule.official:
            raise ValueError("the pseudo-MOS set has no official split; set official false")
        if unit not in ("crop", "photo"):
            raise ValueError(f"unit must be 'crop' or 'photo', got {unit!r}")
        from .teachers import teacher as find

        find(teacher)
        if not list_shards(root):
            raise FileNotFoundError(f"{root}: no group shards")
        self.unit, self.teacher, self.pristine = unit, teacher, pristine

    @cached_property
    def contents(self) -> list[str]:
        from .shards import shard_contents

        return shard_contents(self.root)

    def describe(self) -> str:
        return (f"pseudo-MOS from the group shards at {self.root} ({self.teacher} against each image's reference: "
                f"pseudo-labels, not human scores), held-out {self.unit}s")

    def prepare(self, workers: int = 1) -> None:
        """Compute the teacher's labels of every shard once (``_meta/pseudo-<teacher>.json``)."""
        from . import pseudolabels

        pseudolabels.prepare(self.root, self.teacher, workers)
        self.__dict__.pop("labels", None)

    @cached_property
    def labels(self) -> Mapping[str, float]:
        from . import pseudolabels

        return pseudolabels.load(self.root, self.teacher)

    def _stream(self, split: int, side: str, **kw: Any):
        from .shards import PseudoIQAShards

        return PseudoIQAShards(self.root, split=split, side=side, split_seed=self.rule.seed, train=self.rule.train,
                               unit=self.unit, contents=self.contents if self.unit == "photo" else None,
                               teacher=self.teacher, labels=self.labels, **kw)

    def side_of(self, label, split):
        return self._stream(split, "all", mode="eval").side_of_content(label["content"])

    def batches(self, side, *, split=0, mode="eval", patch=224, batch=16, workers=0, epoch=0, seed=0, flip=True,
                distributed=True):
        from .shards import loader

        data = self._stream(split, side, mode=mode, patch=patch, batch_size=batch, flip=flip, seed=seed,
                            pristine=self.pristine and side == "train")
        data.split_ranks = distributed
        data.set_epoch(epoch)
        return loader(data, num_workers=workers)

    def pristine_references(self, count, split=0):
        from .decoding import decode

        stream = self._stream(split, "test", mode="eval")
        refs = []
        for shard in list_shards(self.root):
            for sample in iter_samples(shard):
                if stream.side_of(json.loads(sample["meta.json"])["a"]) == "test":
                    refs.append(decode(sample["ref_a.png"], f"{shard}:{sample['__key__']}.ref_a.png"))
                    if len(refs) >= count:
                        return refs
        return refs


KINDS = ("pseudo", "shards", *iqa.names())


def source_class(kind: str) -> type[LabelledSource]:
    """The class that reads labelled data of ``kind`` (see :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown labelled data {kind!r}; choose from {', '.join(KINDS)}")
    return {"pseudo": PseudoSource, "shards": PackedSource}.get(kind, TableSource)


def open_labelled(kind: str, root: str | os.PathLike, *, rule: SplitRule = SplitRule(),
                  options: Mapping[str, Any] | None = None, unit: str = "crop", teacher: str = "ssim_psnr",
                  pristine: bool = False, strict: bool = True) -> LabelledSource:
    """The labelled source ``kind`` names: ``pseudo`` (group shards), ``shards`` (packed IQA shards) or a
    ``datasets.iqa`` name (``csv`` for one's own CSV), read from ``root``.

    ``options`` are reader options (tables only); ``unit``, ``teacher`` and ``pristine`` apply to the
    pseudo-MOS set only.
    """
    cls = source_class(kind)
    if cls is PseudoSource:
        return PseudoSource(root, rule, unit=unit, teacher=teacher, pristine=pristine)
    if cls is PackedSource:
        return PackedSource(root, rule)
    return TableSource(kind, root, rule, options, strict)
