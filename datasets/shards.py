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

import hashlib
import json
import os
import random
import tarfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from degrade.pairs import POLICIES, relation_masks
from degrade.plan import Plan

from .crops import iqa_view
from .iqa.table import split_contents
from .shardformat import GROUP_IMAGES, IQA_LABEL, content_id, iter_samples, list_shards
from .sources import decode_checked

VIEWS = ("x1", "x2", "y")


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


def rank_and_world() -> tuple[int, int]:
    """This process's DDP rank and world size (from an initialised process group or the environment)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class CorruptData(RuntimeError):
    """Too much of what a loader read was corrupt."""


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
            random.Random(_seed(self.seed, self.epoch, cycle, "shards")).shuffle(shards)
        if len(shards) >= slots:
            mine, keep = shards[slot::slots], None
        else:
            mine, keep = shards, slot  # every slot reads everything and keeps its residue class
        index = 0
        for shard in mine:
            try:
                for sample in iter_samples(shard):
                    if keep is None or index % slots == keep:
                        yield shard, sample
                    index += 1
            except (tarfile.TarError, OSError, EOFError) as error:
                self._corrupt(shard, None, f"unreadable shard: {error}")

    def _ordered(self, cycle: int = 0) -> Iterator[tuple[str, dict[str, bytes]]]:
        if self.exact or self.shuffle_buffer <= 1:
            yield from self._raw(cycle)
            return
        rng = random.Random(_seed(self.seed, self.epoch, cycle, *self.slot()))
        buffer: list[tuple[str, dict[str, bytes]]] = []
        for item in self._raw(cycle):
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def _count(self) -> None:
        self._seen += 1

    def _corrupt(self, shard: str, key: str | None, reason: str) -> None:
        self._bad += 1
        self._seen += 1
        where = f"{shard}:{key}" if key else shard
        warnings.warn(f"skipped corrupt data ({self._bad} so far): {where}: {reason}", stacklevel=3)
        if self._seen >= 20 and self._bad > self.max_corrupt * self._seen:
            raise CorruptData(f"{self._bad} of {self._seen} samples or shards read were corrupt "
                              f"(threshold {self.max_corrupt:.1%}); last: {where}: {reason}")


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

    def _decode(self, shard: str, sample: dict[str, bytes]) -> dict[str, Any] | None:
        key = sample.get("__key__", "?")
        try:
            meta = json.loads(sample["meta.json"])
            images = {n: decode_checked(sample[f"{n}.png"], f"{key}.{n}.png") for n in GROUP_IMAGES}
            plans = {v: Plan.from_dict(meta["plans"][v]) for v in VIEWS}
            contents = {"x1": content_id(meta["a"]), "x2": content_id(meta["a"]), "y": content_id(meta["b"])}
        except (KeyError, ValueError, TypeError) as error:
            self._corrupt(shard, key, f"{type(error).__name__}: {error}")
            return None
        self._count()
        return {"key": key, "meta": meta, "images": images, "plans": plans, "contents": contents}

    def _patches(self, group: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(_seed(self.seed, self.epoch, group["key"], "patches"))
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
                "degradation_mask": degradation, "keys": [g["key"] for g in groups], "meta": [g["meta"] for g in groups]}

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
                group = self._decode(shard, sample)
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
        if self.side == "all":
            return True
        if self.official:
            return label.get("official") == self.side
        folds = label.get("folds") or []
        if self.split >= len(folds):
            raise ValueError(f"split {self.split} requested but the shards record {len(folds)} splits")
        return folds[self.split] == self.side

    def _items(self, shard: str, sample: dict[str, bytes]) -> list[dict[str, Any]]:
        key = sample.get("__key__", "?")
        try:
            label = json.loads(sample[IQA_LABEL])
            if not self._selected(label):
                return []
            image_field = next(f for f in sample if f.startswith("image."))
            image = decode_checked(sample[image_field], f"{key}.{image_field}")
            ref_field = next((f for f in sample if f.startswith("ref.")), None)
            ref = decode_checked(sample[ref_field], f"{key}.{ref_field}") if ref_field else None
        except (KeyError, StopIteration, ValueError) as error:
            self._corrupt(shard, key, f"{type(error).__name__}: {error}")
            return []
        self._count()
        return [self._view(key, label, image, ref)]

    def _view(self, key: str, label: dict[str, Any], image: torch.Tensor, ref: torch.Tensor | None) -> dict[str, Any]:
        g = torch.Generator().manual_seed(_seed(self.seed, self.epoch, key, "crop")) if self.mode == "train" else None
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


def loader(dataset: ShardStream, num_workers: int = 0, **kw: Any) -> DataLoader:
    """A DataLoader over a shard stream (the stream already yields batches)."""
    return DataLoader(dataset, batch_size=None, num_workers=num_workers,
                      persistent_workers=False, **kw)


def pseudo_mos(image: torch.Tensor, reference: torch.Tensor) -> float:
    """A full-reference pseudo-label in [0, 1] (1: identical to the reference), NOT a human opinion score.

    ``(SSIM + min(PSNR, 50 dB) / 50) / 2`` between the degraded image and its pristine reference,
    both uint8 (3, H, W): the kind of weak supervision KADIS-700k-style training uses.
    """
    import kornia

    x, r = image[None].float() / 255.0, reference[None].float() / 255.0
    ssim = float(kornia.metrics.ssim(x, r, 11).mean())
    mse = float(((x - r) ** 2).mean())
    psnr = 50.0 if mse == 0 else min(50.0, -10.0 * torch.log10(torch.tensor(mse)).item())
    return max(0.0, min(1.0, (ssim + psnr / 50.0) / 2.0))


def crop_side(content: str, seed: int, split: int, train: float) -> str:
    """Side of one crop in a crop-level split: train with probability ``train``, from a hash."""
    return "train" if _seed(seed, split, content) / 2**63 < train else "test"


def shard_contents(source: str | os.PathLike) -> list[str]:
    """Source image ids used by a group-shard folder (from its scan record, else from the samples)."""
    folder = Path(source) if Path(str(source)).is_dir() else None
    scan = folder / "scan.json" if folder is not None else None
    if scan is not None and scan.is_file():
        return sorted(e["id"] for e in json.loads(scan.read_text())["entries"] if e.get("ok"))
    ids = set()
    for shard in list_shards(source):
        for sample in iter_samples(shard):
            meta = json.loads(sample["meta.json"])
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
                 contents: Sequence[str] | None = None, **kw: Any) -> None:
        super().__init__(source, split=split, side=side, **kw)
        if unit not in ("photo", "crop"):
            raise ValueError(f"unit must be 'photo' or 'crop', got {unit!r}")
        self.unit, self.split_seed, self.train_fraction = unit, split_seed, train
        self.sides: dict[str, str] = {}
        if unit == "photo":
            ids = list(contents) if contents is not None else shard_contents(source)
            if len(ids) < 2:
                raise ValueError(f"{source}: need at least two source images to split, found {len(ids)}")
            self.sides = split_contents(ids, split_seed, split, train)

    def side_of(self, meta_side: dict) -> str:
        if self.unit == "photo":
            return self.sides.get(meta_side["id"], "test")
        return crop_side(content_id(meta_side), self.split_seed, self.split, self.train_fraction)

    def _items(self, shard: str, sample: dict[str, bytes]) -> list[dict[str, Any]]:
        key = sample.get("__key__", "?")
        try:
            meta = json.loads(sample["meta.json"])
            views = [(view, ref, side_key) for view, ref, side_key in
                     (("x1", "ref_a", "a"), ("x2", "ref_a", "a"), ("y", "ref_b", "b"))
                     if self.side == "all" or self.side_of(meta[side_key]) == self.side]
            needed = {name for view, ref, _ in views for name in (view, ref)}  # decode only what is used
            images = {n: decode_checked(sample[f"{n}.png"], f"{key}.{n}.png") for n in GROUP_IMAGES if n in needed}
        except (KeyError, ValueError) as error:
            self._corrupt(shard, key, f"{type(error).__name__}: {error}")
            return []
        self._count()
        items = []
        for view, ref, side_key in views:
            content = meta[side_key]["id"] if self.unit == "photo" else content_id(meta[side_key])
            plan = Plan.from_dict(meta["plans"][view])
            quality = pseudo_mos(images[view], images[ref])
            label = {"dataset": "pseudo", "unit": self.unit, "content": content, "group": key, "view": view, "quality": quality,
                     "score": quality, "distortion": "+".join(plan.names) or "pristine", "levels": list(plan.levels)}
            items.append(self._view(f"{key}_{view}", label, images[view], images[ref]))
        return items
