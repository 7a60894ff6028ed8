"""Streaming loaders over our shards: dual-representation groups and packed IQA datasets.

Both are ``IterableDataset``s that yield whole batches (use ``torch.utils.data.DataLoader(ds,
batch_size=None, num_workers=...)``, or :func:`loader`). They:

* split shards across DDP ranks and DataLoader workers; with fewer shards than (rank, worker)
  slots every slot reads all shards and keeps its share of samples, so nothing is lost;
* reshuffle shards and samples every epoch from (seed, epoch) (call ``set_epoch``);
* in exact mode (evaluation) read every sample exactly once across all ranks and workers,
  in order;
* skip corrupt shards and samples, count and report them, and stop only when more than
  ``max_corrupt`` of what was read is corrupt.
"""
from __future__ import annotations

import os
import random
import signal
import tarfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from degrade.pairs import POLICIES, relation_masks
from degrade.plan import Plan
from degrade.seeding import SEED_BITS, derive_seed

from .crops import iqa_view
from .iqa.table import split_contents
from .pseudolabels import label_key
from .shardformat import (
    GROUP_IMAGES,
    SampleError,
    check_group,
    check_images,
    check_label,
    content_id,
    iter_samples,
    list_shards,
    read_manifest,
)
from .decoding import ImageError, decode

VIEWS = ("x1", "x2", "y")


def rank_and_world() -> tuple[int, int]:
    """This process's DDP rank and world size (from an initialised process group or the environment)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class CorruptData(RuntimeError):
    """Too much of what a loader read was corrupt."""


def _expected_counts(source: Any) -> dict[str, int]:
    """Samples per shard for a folder that has a manifest (so a shard cut short can say how much was lost)."""
    if isinstance(source, (str, os.PathLike)) and Path(str(source)).is_dir():
        try:
            manifest = read_manifest(source)
        except ValueError:
            return {}
        if manifest is not None:
            return {str(Path(str(source)) / s["name"]): int(s.get("samples", 0)) for s in manifest["shards"]}
    return {}


class ShardStream(IterableDataset):
    """Shared machinery: which samples this rank and worker read, in which order, corrupt ones skipped."""

    def __init__(self, source: str | os.PathLike | Sequence, *, seed: int = 0, exact: bool = False,
                 shuffle_buffer: int = 64, max_corrupt: float = 0.01) -> None:
        self.shards = list_shards(source)
        if not self.shards:
            raise FileNotFoundError(f"no shards found in {source!r}")
        self.seed, self.exact, self.shuffle_buffer, self.max_corrupt = seed, exact, shuffle_buffer, max_corrupt
        self.epoch = 0
        self.split_ranks = True  # False: this process reads everything (e.g. evaluation on rank 0 alone)
        self._seen = self._bad = 0  # corrupt-data accounting, per worker copy
        self.expected = _expected_counts(source)  # samples per shard, where a manifest says

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of epoch ``epoch`` (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch

    def slot(self) -> tuple[int, int]:
        rank, world = rank_and_world() if self.split_ranks else (0, 1)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def _raw(self, cycle: int = 0) -> Iterator[tuple[str, dict[str, bytes]]]:
        slot, slots = self.slot()
        shards = list(self.shards)
        if not self.exact:
            random.Random(derive_seed(self.seed, self.epoch, cycle, "shards")).shuffle(shards)
        if len(shards) >= slots:
            mine, keep = shards[slot::slots], None
        else:
            mine, keep = shards, slot  # every slot reads everything and keeps its residue class
        index = 0
        for shard in mine:
            read = 0
            try:
                for sample in iter_samples(shard):
                    read += 1
                    if keep is None or index % slots == keep:
                        yield shard, sample
                    index += 1
            except (tarfile.TarError, OSError, EOFError, ValueError) as error:
                expected = self.expected.get(shard)
                lost = max(1, expected - read) if expected is not None else 1
                if keep is not None:  # this slot would have kept only its share of what was lost
                    lost = max(1, lost // slots)
                self._corrupt(shard, None, f"unreadable from sample {read + 1} on ({error}); "
                                           + (f"{expected - read} of its {expected} samples lost" if expected else
                                              "the rest of the shard is lost"), count=lost)

    def _ordered(self, cycle: int = 0) -> Iterator[tuple[str, dict[str, bytes]]]:
        if self.exact or self.shuffle_buffer <= 1:
            yield from self._raw(cycle)
            return
        rng = random.Random(derive_seed(self.seed, self.epoch, cycle, *self.slot()))
        buffer: list[tuple[str, dict[str, bytes]]] = []
        for item in self._raw(cycle):
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def _count(self) -> None:
        self._seen += 1

    def _corrupt(self, shard: str, key: str | None, reason: str, count: int = 1) -> None:
        """Record ``count`` samples lost (skipped or unreadable); stop past the ``max_corrupt`` fraction."""
        self._bad += count
        self._seen += count
        where = f"{shard}:{key}" if key else shard
        warnings.warn(f"skipped corrupt data ({self._bad} sample(s) so far): {where}: {reason}", stacklevel=3)
        if self._seen >= 20 and self._bad > self.max_corrupt * self._seen:
            raise CorruptData(f"{self._bad} of {self._seen} samples read were lost to corrupt data "
                              f"(threshold {self.max_corrupt:.1%}); last: {where}: {reason}")

    def _checked(self, shard: str, sample: dict[str, bytes], read: Any) -> Any:
        """``read(sample)``, or None when the sample breaks the schema (then it is skipped and counted):
        the one place where a bad sample is caught."""
        try:
            value = read(sample)
        except (SampleError, ImageError, KeyError, TypeError, ValueError, RecursionError) as error:
            self._corrupt(shard, sample.get("__key__", "?"), f"{type(error).__name__}: {error}")
            return None
        self._count()
        return value


def _boxes(size: tuple[int, int], patch: int, count: int, g: torch.Generator) -> list[tuple[int, int]]:
    h, w = size
    if patch > min(h, w):
        raise ValueError(f"patch {patch} does not fit in a {w}x{h} image")
    tops = torch.randint(0, h - patch + 1, (count,), generator=g).tolist()
    lefts = torch.randint(0, w - patch + 1, (count,), generator=g).tolist()
    return list(zip(tops, lefts))


class GroupShards(ShardStream):
    """Batches of dual-representation groups with their relation masks.

    Each batch is a dict:

    * ``images``: (G, 3, 2, 3, P, P) uint8: views (x1, x2, y), two random patches each;
    * ``refs``: the same patches cut from the references (ref_a for x1 and x2, ref_b for y);
    * ``quality_mask``, ``degradation_mask``: (6G, 6G) bool positives for the chosen policy,
      patch order (group, view, patch), computed from each group's recorded metadata;
    * ``plans``: the plan of each of the 6G patches, in that order;
    * ``keys`` and ``meta``: the groups' sample keys and metadata.

    Args:
        source: folder, brace pattern, glob or list of shards.
        batch_size: groups per batch (G).
        patch: patch side P.
        policy: relation policy for the masks (``dri``, ``qpt``, ``arniqa``).
        batches_per_epoch: per rank; training mode cycles through its shards until it is
            reached (equal counts on every rank, as DDP needs). Default: one pass.
    """

    def __init__(self, source: str | os.PathLike | Sequence, *, batch_size: int = 16, patch: int = 128,
                 policy: str = "dri", batches_per_epoch: int | None = None, drop_last: bool = True, **kw: Any) -> None:
        super().__init__(source, **kw)
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose from {POLICIES}")
        self.batch_size, self.patch, self.policy = batch_size, patch, policy
        self.batches_per_epoch, self.drop_last = batches_per_epoch, drop_last

    def _read(self, sample: dict[str, bytes]) -> dict[str, Any]:
        key = sample["__key__"]
        meta = check_group(sample)
        images = {n: decode(sample[f"{n}.png"], f"{key}.{n}.png") for n in GROUP_IMAGES}
        check_images(images, self.patch)
        plans = {v: Plan.from_dict(meta["plans"][v]) for v in VIEWS}
        contents = {"x1": content_id(meta["a"]), "x2": content_id(meta["a"]), "y": content_id(meta["b"])}
        return {"key": key, "meta": meta, "images": images, "plans": plans, "contents": contents}

    def _patches(self, group: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, group["key"], "patches"))
        p = self.patch
        views, refs = [], []
        for view, ref in (("x1", "ref_a"), ("x2", "ref_a"), ("y", "ref_b")):
            image, reference = group["images"][view], group["images"][ref]
            boxes = _boxes(tuple(image.shape[-2:]), p, 2, g)
            views.append(torch.stack([image[:, t : t + p, l : l + p] for t, l in boxes]))
            refs.append(torch.stack([reference[:, t : t + p, l : l + p] for t, l in boxes]))
        return torch.stack(views), torch.stack(refs)

    def collate(self, groups: list[dict[str, Any]]) -> dict[str, Any]:
        images, refs = zip(*(self._patches(g) for g in groups))
        contents = [g["contents"][v] for g in groups for v in VIEWS for _ in range(2)]
        plans = [g["plans"][v] for g in groups for v in VIEWS for _ in range(2)]
        quality, degradation = relation_masks(contents, plans, self.policy)
        return {"images": torch.stack(images), "refs": torch.stack(refs), "quality_mask": quality,
                "degradation_mask": degradation, "plans": plans, "keys": [g["key"] for g in groups],
                "meta": [g["meta"] for g in groups]}

    def _quota(self) -> int | None:
        if self.batches_per_epoch is None or self.exact:
            return None
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.batches_per_epoch // workers + (worker < self.batches_per_epoch % workers)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        quota = self._quota()
        produced, cycle = 0, 0
        while True:
            batch: list[dict[str, Any]] = []
            read_any = False
            for shard, sample in self._ordered(cycle):
                read_any = True
                group = self._checked(shard, sample, self._read)
                if group is None:
                    continue
                batch.append(group)
                if len(batch) == self.batch_size:
                    yield self.collate(batch)
                    produced, batch = produced + 1, []
                    if quota is not None and produced >= quota:
                        return
            if batch and (not self.drop_last or self.exact):
                yield self.collate(batch)
                produced += 1
            if quota is None or not read_any or (quota is not None and produced >= quota):
                return
            cycle += 1


class IQAShards(ShardStream):
    """Batches from shards written by ``pipelines.pack_iqa``, for one side of one split.

    Each batch is a dict: ``images`` ((B, 3, P, P) uint8 in train mode: one random crop, random
    horizontal flip; (B, 5, 3, P, P) in eval mode: corners and centre), ``refs`` (the same crops of
    the reference, zeros where there is none) and ``has_ref``, ``quality`` (B,) in [0, 1],
    ``score`` (raw), ``keys`` and ``labels``.

    Args:
        split: which of the recorded splits; ``side`` picks ``"train"``, ``"val"``, ``"test"`` or
            ``"all"``. With ``official=True`` the dataset's official split is used instead.
        mode: ``"train"`` (shuffled, random crops) or ``"eval"`` (exact-once, fixed crops).
    """

    def __init__(self, source: str | os.PathLike | Sequence, *, split: int = 0, side: str = "train",
                 official: bool = False, mode: str = "train", patch: int = 224, batch_size: int = 8,
                 flip: bool = True, **kw: Any) -> None:
        kw.setdefault("exact", mode == "eval")
        super().__init__(source, **kw)
        if mode not in ("train", "eval") or side not in ("train", "val", "test", "all"):
            raise ValueError(f"mode must be train or eval and side train, val, test or all; got {mode!r}, {side!r}")
        self.split, self.side, self.official, self.mode = split, side, official, mode
        self.patch, self.batch_size, self.flip = patch, batch_size, flip

    def _selected(self, label: dict[str, Any]) -> bool:
        return self.side == "all" or packed_side(label, self.split, self.official) == self.side

    def _read(self, sample: dict[str, bytes]) -> list[dict[str, Any]]:
        key = sample["__key__"]
        label = check_label(sample)
        if not self._selected(label):
            return []
        image_field = next(f for f in sample if f.startswith("image."))
        image = decode(sample[image_field], f"{key}.{image_field}")
        ref_field = next((f for f in sample if f.startswith("ref.")), None)
        ref = decode(sample[ref_field], f"{key}.{ref_field}") if ref_field else None
        return [self._view(key, label, image, ref)]

    def _items(self, shard: str, sample: dict[str, bytes]) -> list[dict[str, Any]]:
        return self._checked(shard, sample, self._read) or []

    def _view(self, key: str, label: dict[str, Any], image: torch.Tensor, ref: torch.Tensor | None) -> dict[str, Any]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, key, "crop")) if self.mode == "train" else None
        crop, ref_crop, has_ref = iqa_view(image, ref, self.mode, self.patch, g, self.flip)
        return {"key": key, "label": label, "image": crop, "ref": ref_crop, "has_ref": has_ref}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for shard, sample in self._ordered():
            for item in self._items(shard, sample):
                batch.append(item)
                if len(batch) == self.batch_size:
                    yield self._collate(batch)
                    batch = []
        if batch:
            yield self._collate(batch)

    @staticmethod
    def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"images": torch.stack([i["image"] for i in items]), "refs": torch.stack([i["ref"] for i in items]),
                "has_ref": torch.tensor([i["has_ref"] for i in items]),
                "quality": torch.tensor([i["label"]["quality"] for i in items], dtype=torch.float32),
                "score": torch.tensor([i["label"]["score"] for i in items], dtype=torch.float64),
                "keys": [i["key"] for i in items], "labels": [i["label"] for i in items]}


def packed_side(label: dict[str, Any], split: int, official: bool = False) -> str:
    """The side of a packed IQA sample (``label.json``) in split ``split``, or in the official split."""
    if official:
        return label.get("official") or "train"
    folds = label.get("folds") or []
    if split >= len(folds):
        raise ValueError(f"split {split} requested but the shards record {len(folds)} splits; "
                         f"pack them with --splits {split + 1} or more")
    return folds[split]


def ignore_stop_signals(_: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: workers ignore SIGINT and SIGTERM.

    A stop signal is the training process's to handle: it finishes its step, saves a checkpoint
    and shuts its workers down. Signals sent to a whole process group (torchrun's launcher, Ctrl-C
    in a terminal) reach the workers too, and a worker that died of one first would crash the run
    before it could save. A worker still exits when its parent dies (DataLoader's watchdog).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def loader(dataset: ShardStream, num_workers: int = 0, **kw: Any) -> DataLoader:
    """A DataLoader over a shard stream (the stream already yields batches); its workers leave stop
    signals to the main process (:func:`ignore_stop_signals`)."""
    if num_workers:
        kw.setdefault("worker_init_fn", ignore_stop_signals)
    return DataLoader(dataset, batch_size=None, num_workers=num_workers,
                      persistent_workers=False, **kw)


def pseudo_mos(image: torch.Tensor, reference: torch.Tensor, teacher: str = "ssim_psnr") -> float:
    """A full-reference pseudo-label in [0, 1] (1: identical to the reference), NOT a human opinion score.

    ``teacher`` names one of ``datasets.teachers.TEACHERS``; both images are uint8 (3, H, W).
    """
    from .teachers import teacher as find

    return find(teacher)(image, reference)


def crop_side(content: str, seed: int, split: int, train: float) -> str:
    """Side of one crop in a crop-level split: train with probability ``train``, from a hash."""
    return "train" if derive_seed(seed, split, content) / 2**SEED_BITS < train else "test"


def shard_contents(source: str | os.PathLike) -> list[str]:
    """Source image ids used by a group-shard folder (from its manifest, else from the samples)."""
    if Path(str(source)).is_dir():
        manifest = read_manifest(source)
        if manifest is not None and "contents" in manifest:
            return sorted(c[0] for c in manifest["contents"])
    ids = set()
    for shard in list_shards(source):
        for sample in iter_samples(shard):
            meta = check_group(sample)
            ids.update((meta["a"]["id"], meta["b"]["id"]))
    return sorted(ids)


class PseudoIQAShards(IQAShards):
    """An IQA set derived from group shards: every x1, x2 and y with its :func:`pseudo_mos` label.

    ``unit`` decides what a split keeps together. ``"photo"``: all crops of one source image fall
    on one side (the same seeded ordering as ``datasets.iqa`` tables; needs many source images to
    be meaningful). ``"crop"``: each crop (source image and box; x1 and x2 share theirs) falls on
    the train side with probability ``train``, from a hash of (seed, split, crop): held-out crops
    are unseen images, though their photos may have other crops in training. Labels carry the
    distortion types and levels of each image's plan.
    """

    def __init__(self, source: str | os.PathLike | Sequence, *, split: int = 0, side: str = "train",
                 split_seed: int = 0, train: float = 0.8, unit: str = "photo",
                 contents: Sequence[str] | None = None, teacher: str = "ssim_psnr", pristine: bool = False,
                 labels: Mapping[str, float] | None = None, **kw: Any) -> None:
        super().__init__(source, split=split, side=side, **kw)
        if unit not in ("photo", "crop"):
            raise ValueError(f"unit must be 'photo' or 'crop', got {unit!r}")
        from .teachers import teacher as find

        self.teacher = find(teacher)
        self.teacher_name, self.pristine = teacher, pristine
        self.labels = labels or {}  # precomputed (datasets.pseudolabels); the rest is computed here
        self.unit, self.split_seed, self.train_fraction = unit, split_seed, train
        self.sides: dict[str, str] = {}
        if unit == "photo":
            ids = list(contents) if contents is not None else shard_contents(source)
            if len(ids) < 2:
                raise ValueError(f"{source}: need at least two source images to split, found {len(ids)}")
            self.sides = split_contents(ids, split_seed, split, train)

    def side_of(self, meta_side: dict) -> str:
        """The side of one content (``meta.json``'s ``a`` or ``b``) in this split."""
        return self.side_of_content(meta_side["id"] if self.unit == "photo" else content_id(meta_side))

    def side_of_content(self, content: str) -> str:
        """The side of a label's ``content`` (a source image id, or a crop key for ``unit="crop"``)."""
        if self.unit == "photo":
            return self.sides.get(content, "test")
        return crop_side(content, self.split_seed, self.split, self.train_fraction)

    def _read(self, sample: dict[str, bytes]) -> list[dict[str, Any]]:
        key = sample["__key__"]
        meta = check_group(sample)
        candidates = (("x1", "ref_a", "a"), ("x2", "ref_a", "a"), ("y", "ref_b", "b"))
        if self.pristine:
            candidates += (("ref_a", "ref_a", "a"),)
        views = [(view, ref, side_key) for view, ref, side_key in candidates
                 if self.side == "all" or self.side_of(meta[side_key]) == self.side]
        needed = {name for view, ref, _ in views for name in (view, ref)}  # decode only what is used
        images = {n: decode(sample[f"{n}.png"], f"{key}.{n}.png") for n in GROUP_IMAGES if n in needed}
        if images:
            check_images(images)
        items = []
        for view, ref, side_key in views:
            content = meta[side_key]["id"] if self.unit == "photo" else content_id(meta[side_key])
            plan = Plan.from_dict(meta["plans"][view]) if view in meta["plans"] else Plan()
            quality = 1.0 if view == ref else self.labels.get(label_key(key, view))
            if quality is None:
                quality = self.teacher(images[view], images[ref])
            label = {"dataset": "pseudo", "unit": self.unit, "content": content, "group": key, "view": view, "quality": quality,
                     "score": quality, "distortion": "+".join(plan.names) or "pristine", "levels": list(plan.levels)}
            items.append(self._view(f"{key}_{view}", label, images[view], images[ref]))
        return items
