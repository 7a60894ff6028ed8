"""Loaders under attack: bad samples are skipped and counted in one place, lost samples are counted, and
shards stream from anything webdataset opens (pipes, file:// URLs, brace patterns, any names)."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import warnings
from pathlib import Path

import pytest

from datasets.shardformat import list_shards
from datasets.shards import CorruptData, GroupShards, IQAShards
from pipelines import shardio
from tests.datasets.test_shard_loaders import SIZE, group_sample, keys_of, one_step, png, write_group_shards
from degrade.pairs import GroupPlans


def _write_manifest(folder: Path, shards: int, per_shard: int) -> None:
    shardio.write_manifest(folder, {"kind": "groups", "shards": [
        {"name": f"shard-{i:06d}.tar", "samples": per_shard, "bytes": 0, "sha256": ""} for i in range(shards)]})


def test_a_flipped_header_byte_is_counted_as_every_sample_it_loses(tmp_path):
    write_group_shards(tmp_path, 1, 24)
    _write_manifest(tmp_path, 1, 24)
    data = bytearray((tmp_path / "shard-000000.tar").read_bytes())
    second_header = data.find(b"g000000000.ref_b.png")  # a member header inside the first sample
    data[second_header + 148] ^= 0xFF  # the header's checksum field
    (tmp_path / "shard-000000.tar").write_bytes(bytes(data))
    stream = GroupShards(tmp_path, batch_size=1, patch=16, exact=True, drop_last=False, max_corrupt=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keys = keys_of(stream)
    assert len(keys) < 24
    lost = [str(w.message) for w in caught if "skipped corrupt data" in str(w.message)]
    assert lost and "of its 24 samples lost" in lost[-1] and "invalid tar header" in lost[-1]
    assert stream._bad == 24 - len(keys)  # every sample not delivered is counted, not one per shard
    with pytest.raises(CorruptData, match="lost to corrupt data"):
        keys_of(GroupShards(tmp_path, batch_size=1, patch=16, exact=True, drop_last=False, max_corrupt=0.0))


def _one_shard(folder: Path, samples: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shardio.write_tar(folder, 0, samples)
    return folder


def _plans(i: int) -> GroupPlans:
    return GroupPlans(one_step("jpeg", 1, i), one_step("jpeg", 4, i), one_step("white_noise", 2, i), "dri")


@pytest.mark.parametrize("attack", ["png_of_another_size", "plan_is_a_string", "deeply_nested_json",
                                    "meta_not_an_object", "missing_field", "not_a_png"])
def test_samples_that_break_the_schema_are_skipped_and_counted(tmp_path, attack):
    good = [group_sample(i, f"a{i}", f"b{i}", _plans(i)) for i in range(3)]
    bad = group_sample(9, "a9", "b9", _plans(9))
    if attack == "png_of_another_size":
        bad["x2.png"] = png(1, SIZE * 2)
    elif attack == "plan_is_a_string":
        meta = json.loads(bad["meta.json"])
        meta["plans"]["x1"] = "gaussian_blur"
        bad["meta.json"] = json.dumps(meta).encode()
    elif attack == "deeply_nested_json":
        bad["meta.json"] = b"[" * 100000 + b"]" * 100000
    elif attack == "meta_not_an_object":
        bad["meta.json"] = b"[1, 2, 3]"
    elif attack == "missing_field":
        del bad["y.png"]
    else:
        bad["x1.png"] = b"\x89PNG\r\n\x1a\n not really"
    folder = _one_shard(tmp_path / "s", good[:1] + [bad] + good[1:])
    stream = GroupShards(folder, batch_size=1, patch=16, exact=True, drop_last=False, max_corrupt=1.0)
    with pytest.warns(UserWarning, match="skipped corrupt data"):
        keys = keys_of(stream)
    assert keys == ["g000000000", "g000000001", "g000000002"] and stream._bad == 1


def _iqa_sample(key: str, label: dict | bytes, image: bytes | None = None) -> dict:
    sample = {"__key__": key, "image.png": image if image is not None else png(3),
              "label.json": label if isinstance(label, bytes) else json.dumps(label).encode()}
    return sample


def test_iqa_samples_without_a_usable_label_are_skipped(tmp_path):
    ok = {"quality": 0.5, "score": 3.0, "folds": ["test"], "content": "c"}
    samples = [_iqa_sample("a", ok), _iqa_sample("b", {"score": 3.0, "folds": ["test"]}),
               _iqa_sample("c", {**ok, "quality": float("nan")}), _iqa_sample("d", b"{not json"),
               _iqa_sample("e", {**ok, "quality": 7}), _iqa_sample("f", ok)]
    folder = _one_shard(tmp_path / "iqa", samples)
    stream = IQAShards(folder, side="test", mode="eval", patch=16, max_corrupt=1.0)
    with pytest.warns(UserWarning, match="skipped corrupt data"):
        keys = [k for batch in stream for k in batch["keys"]]
    assert keys == ["a", "f"] and stream._bad == 4


def test_shards_stream_from_pipes_urls_patterns_and_any_names(tmp_path):
    expected = write_group_shards(tmp_path / "s", 2, 3)
    paths = sorted(str(p) for p in (tmp_path / "s").glob("*.tar"))
    pattern = str(tmp_path / "s" / "shard-{000000..000001}.tar")
    for spec in (pattern, f"pipe:cat {pattern}".replace(pattern, paths[0]), f"file://{paths[0]}", paths):
        stream = GroupShards(spec, batch_size=1, patch=16, exact=True, drop_last=False)
        got = keys_of(stream)
        assert got == (expected[:3] if isinstance(spec, str) and "000001" not in spec and "{" not in spec
                       else expected), spec
    pipes = [f"pipe:cat {p}" for p in paths]
    assert keys_of(GroupShards(pipes, batch_size=1, patch=16, exact=True, drop_last=False)) == expected
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for i, p in enumerate(paths):
        shutil.copy(p, renamed / f"{i:05d}.tar")  # 00000.tar, 00001.tar: found too
    assert keys_of(GroupShards(renamed, batch_size=1, patch=16, exact=True, drop_last=False)) == expected


def test_nothing_matching_is_an_error_not_an_empty_epoch(tmp_path):
    with pytest.raises(FileNotFoundError, match="no shards match"):
        GroupShards(str(tmp_path / "shard-{000000..000003}.tar"))
    with pytest.raises(FileNotFoundError, match="no shards match"):
        GroupShards(str(tmp_path / "typo.tar"))
    with pytest.raises(FileNotFoundError, match="no shards found"):
        GroupShards(tmp_path)
    assert list_shards([]) == []


def test_a_damaged_manifest_names_the_file(tmp_path):
    write_group_shards(tmp_path, 1, 2)
    (tmp_path / "_meta").mkdir()
    (tmp_path / "_meta" / "manifest.json").write_text("{broken")
    with pytest.raises(ValueError, match="manifest.json: not a readable manifest"):
        GroupShards(tmp_path)
    assert tarfile.is_tarfile(io.BytesIO((tmp_path / "shard-000000.tar").read_bytes()))
