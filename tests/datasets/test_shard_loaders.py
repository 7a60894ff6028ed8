"""Streaming loaders over real tars: masks, worker and rank splitting, epochs, corrupt data, IQA shards."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datasets.shardformat import SCHEMA, group_key
from datasets.crops import five_crops
from datasets.shards import CorruptData, GroupShards, IQAShards, loader
from degrade.pairs import GroupPlans
from degrade.plan import Plan
from degrade.sampling import make_step
from pipelines import shardio

SIZE = 32


def png(seed: int, size: int = SIZE) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def one_step(name: str, level: int, seed: int = 0) -> Plan:
    return Plan((make_step(name, level, torch.Generator().manual_seed(seed)),))


def group_sample(index: int, a: str, b: str, plans: GroupPlans, a_box=(0, 0, SIZE)) -> dict:
    meta = {"schema": SCHEMA, "index": index, "seed": index, "a": {"id": a, "source": f"{a}.png", "box": list(a_box)},
            "b": {"id": b, "source": f"{b}.png", "box": [0, 0, SIZE]}, "policy": plans.policy, "preset": "arniqa",
            "plans": plans.to_dict(), "engine": "test", "device": "cpu", "render_batch": 4}
    return {"__key__": group_key(index), **{f"{n}.png": png(index * 10 + i) for i, n in
            enumerate(("ref_a", "x1", "x2", "ref_b", "y"))}, "meta.json": json.dumps(meta).encode()}


def write_group_shards(out: Path, shards: int, per_shard: int) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    index = 0
    for s in range(shards):
        samples = []
        for _ in range(per_shard):
            plans = GroupPlans(one_step("jpeg", 1 + index % 5, index), one_step("jpeg", 5 - index % 4, index),
                               one_step("white_noise", 2, index), "dri")
            samples.append(group_sample(index, f"c{index}", f"d{index}", plans))
            index += 1
        shardio.write_tar(out, s, samples)
    return [group_key(i) for i in range(index)]


def keys_of(dataset, workers: int = 0) -> list[str]:
    return [k for batch in loader(dataset, num_workers=workers) for k in batch["keys"]]


def test_masks_on_a_hand_built_batch(tmp_path):
    blur2, blur4, jpeg3 = one_step("gaussian_blur", 2), one_step("gaussian_blur", 4), one_step("jpeg", 3)
    noise1, noise5 = one_step("white_noise", 1), one_step("white_noise", 5)
    g0 = GroupPlans(blur2, blur4, jpeg3, "dri")
    g1 = GroupPlans(noise1, noise5, blur2, "dri")  # its y is content A with g0's x1 recipe: the same image
    out = tmp_path / "hand"
    out.mkdir()
    shardio.write_tar(out, 0, [group_sample(0, "A", "B", g0), group_sample(1, "C", "A", g1)])
    batch = next(iter(GroupShards(out, batch_size=2, patch=16, exact=True)))
    assert batch["images"].shape == (2, 3, 2, 3, 16, 16) and batch["refs"].shape == (2, 3, 2, 3, 16, 16)
    # patch order: (group, view x1/x2/y, patch a/b)
    same_image = [{0, 1, 10, 11}, {2, 3}, {4, 5}, {6, 7}, {8, 9}]
    same_types = [{0, 1, 2, 3, 10, 11}, {4, 5}, {6, 7, 8, 9}]

    def expected(sets):
        m = torch.zeros(12, 12, dtype=torch.bool)
        for s in sets:
            for i in s:
                for j in s:
                    m[i, j] = i != j
        return m

    assert torch.equal(batch["quality_mask"], expected(same_image))
    assert torch.equal(batch["degradation_mask"], expected(same_types))
    qpt = next(iter(GroupShards(out, batch_size=2, patch=16, exact=True, policy="qpt")))
    assert torch.equal(qpt["degradation_mask"], expected(same_image))
    arniqa = next(iter(GroupShards(out, batch_size=2, patch=16, exact=True, policy="arniqa")))
    assert torch.equal(arniqa["degradation_mask"], expected([{0, 1, 10, 11}, {2, 3}, {4, 5}, {6, 7}, {8, 9}]))


def test_patches_and_references_are_aligned(tmp_path):
    out = tmp_path / "s"
    write_group_shards(out, 1, 2)
    batch = next(iter(GroupShards(out, batch_size=2, patch=8, exact=True)))
    sample = next(iter(__import__("datasets.shardformat", fromlist=["iter_samples"]).iter_samples(out / "shard-000000.tar")))
    x1 = torch.from_numpy(cv2.imdecode(np.frombuffer(sample["x1.png"], np.uint8), 1)[:, :, ::-1].copy()).permute(2, 0, 1)
    ref = torch.from_numpy(cv2.imdecode(np.frombuffer(sample["ref_a.png"], np.uint8), 1)[:, :, ::-1].copy()).permute(2, 0, 1)
    patch, ref_patch = batch["images"][0, 0, 0], batch["refs"][0, 0, 0]
    hits = [(t, l) for t in range(SIZE - 7) for l in range(SIZE - 7) if torch.equal(x1[:, t:t + 8, l:l + 8], patch)]
    assert hits and torch.equal(ref[:, hits[0][0]:hits[0][0] + 8, hits[0][1]:hits[0][1] + 8], ref_patch)


@pytest.mark.parametrize("shards,world,workers", [(3, 2, 2), (8, 2, 2), (5, 1, 2), (2, 3, 1)])
def test_exact_mode_reads_every_sample_once_across_ranks_and_workers(tmp_path, monkeypatch, shards, world, workers):
    expected = write_group_shards(tmp_path / "s", shards, 5)
    seen = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        seen += keys_of(GroupShards(tmp_path / "s", batch_size=3, patch=8, exact=True), workers)
    assert sorted(seen) == expected


def test_epochs_reshuffle_deterministically(tmp_path):
    write_group_shards(tmp_path / "s", 4, 6)
    ds = GroupShards(tmp_path / "s", batch_size=4, patch=8, seed=1, shuffle_buffer=8)
    first = keys_of(ds)
    assert first == keys_of(ds)  # same (seed, epoch): same order
    ds.set_epoch(1)
    second = keys_of(ds)
    assert second != first and sorted(second) == sorted(first)
    batch_a = next(iter(ds))["images"]
    assert torch.equal(batch_a, next(iter(ds))["images"])  # patch positions are seeded too


def test_batches_per_epoch_equalises_ranks(tmp_path, monkeypatch):
    write_group_shards(tmp_path / "s", 3, 4)  # 3 shards over 2 ranks: 2 and 1 shards
    counts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        ds = GroupShards(tmp_path / "s", batch_size=2, patch=8, batches_per_epoch=5)
        counts.append(len(list(loader(ds, num_workers=2))))
    assert counts == [5, 5]


def test_corrupt_shards_and_samples_are_skipped_and_counted(tmp_path):
    keys = write_group_shards(tmp_path / "s", 3, 4)
    tar = tmp_path / "s" / "shard-000001.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 3])  # truncated
    samples = [group_sample(100, "p", "q", GroupPlans(Plan(), Plan(), Plan(), "dri"))]
    samples[0]["x1.png"] = b"\x89PNG broken"
    shardio.write_tar(tmp_path / "s", 3, samples)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = keys_of(GroupShards(tmp_path / "s", batch_size=1, patch=8, exact=True, max_corrupt=0.5))
    assert set(seen) >= set(keys[:4]) | set(keys[8:]) and group_key(100) not in seen
    assert any("shard-000001.tar" in str(w.message) for w in caught)
    assert any("g000000100" in str(w.message) for w in caught)
    with pytest.raises(CorruptData, match="corrupt"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(20):
            shardio.write_tar(tmp_path / "s", 10 + i, samples)
        keys_of(GroupShards(tmp_path / "s", batch_size=1, patch=8, exact=True, max_corrupt=0.05))


# --- IQA shards ------------------------------------------------------------------------------


def write_iqa_shards(out: Path, contents: int = 6, per_content: int = 3) -> None:
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for c in range(contents):
        for k in range(per_content):
            pixels = np.random.default_rng(c * 10 + k).integers(0, 256, (40, 48, 3), dtype=np.uint8)
            label = {"dataset": "t", "image": f"{c}_{k}.png", "score": float(k), "quality": k / 2, "content": f"c{c}",
                     "folds": ["train" if c < 4 else "test", "train" if c >= 2 else "test"], "official": None}
            samples.append({"__key__": f"t_{c}_{k}", "image.png": cv2.imencode(".png", pixels)[1].tobytes(),
                            "ref.png": cv2.imencode(".png", 255 - pixels)[1].tobytes(),
                            "label.json": json.dumps(label).encode()})
    shardio.write_tar(out, 0, samples[:9])
    shardio.write_tar(out, 1, samples[9:])


def test_iqa_sides_and_eval_crops(tmp_path):
    write_iqa_shards(tmp_path / "q")
    train = IQAShards(tmp_path / "q", split=0, side="train", patch=16, batch_size=4)
    test = IQAShards(tmp_path / "q", split=0, side="test", mode="eval", patch=16, batch_size=4)
    train_keys, test_keys = keys_of(train), keys_of(test)
    assert len(train_keys) == 12 and len(test_keys) == 6 and not set(train_keys) & set(test_keys)
    batch = next(iter(test))
    assert batch["images"].shape == (4, 5, 3, 16, 16) and batch["has_ref"].all()
    assert torch.equal(batch["refs"], 255 - batch["images"])  # reference crops are aligned
    assert keys_of(IQAShards(tmp_path / "q", split=1, side="test", mode="eval", patch=16)) == [
        f"t_{c}_{k}" for c in range(2) for k in range(3)]


def test_iqa_train_crops_are_seeded_per_epoch(tmp_path):
    write_iqa_shards(tmp_path / "q")
    ds = IQAShards(tmp_path / "q", side="all", patch=16, batch_size=18, shuffle_buffer=1)
    a = next(iter(ds))
    assert a["images"].shape == (18, 3, 16, 16) and torch.equal(a["refs"], 255 - a["images"])
    assert torch.equal(a["images"], next(iter(ds))["images"])
    ds.set_epoch(1)
    assert not torch.equal(a["images"], next(iter(ds))["images"])


def test_five_crops_of_a_small_image_upscale_first():
    crops = five_crops(torch.zeros(3, 10, 20, dtype=torch.uint8), 16)
    assert crops.shape == (5, 3, 16, 16)


# --- pseudo-MOS set from group shards -------------------------------------------------------


def test_pseudo_mos_label():
    from datasets.shards import pseudo_mos

    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert pseudo_mos(image, image) == pytest.approx(1.0)
    noisy = (image.int() + torch.randint(-40, 41, image.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 255)
    assert 0.0 <= pseudo_mos(noisy.to(torch.uint8), image) < 0.9


@pytest.mark.parametrize("unit", ["crop", "photo"])
def test_pseudo_sets_are_disjoint_and_cover_every_image(tmp_path, unit):
    from datasets.shards import PseudoIQAShards

    out = tmp_path / "s"
    out.mkdir()
    samples = []
    for i in range(12):
        plans = GroupPlans(one_step("jpeg", 1 + i % 5, i), one_step("jpeg", 5 - i % 4, i), Plan(), "dri")
        sample = group_sample(i, f"photo{i % 4}", f"photo{(i + 1) % 4}", plans, a_box=(i, 0, SIZE))
        sample["y.png"] = sample["ref_b.png"]  # y's plan is empty: it is the reference itself
        samples.append(sample)
    shardio.write_tar(out, 0, samples)
    kw = dict(patch=16, batch_size=8, unit=unit, contents=[f"photo{k}" for k in range(4)], mode="eval")
    train = {k for b in PseudoIQAShards(out, side="train", **kw) for k in b["keys"]}
    test_batches = list(PseudoIQAShards(out, side="test", **kw))
    test = {k for b in test_batches for k in b["keys"]}
    assert train and test and not train & test and len(train | test) == 36
    labels = [label for b in test_batches for label in b["labels"]]
    assert all(0 <= label["quality"] <= 1 for label in labels)
    assert {label["quality"] for label in labels if label["distortion"] == "pristine"} <= {1.0}
    if unit == "photo":  # every crop of a photo is on the same side
        photos = {label["content"] for label in labels}
        train_photos = {lab["content"] for b in PseudoIQAShards(out, side="train", **kw) for lab in b["labels"]}
        assert not photos & train_photos
