"""pack_iqa: original bytes kept, lossless BMP transcoding, labels with folds, resume, verify."""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import ray

from datasets import iqa
from datasets.iqa import DatasetError
from datasets.shardformat import iter_samples, list_shards, manifest_path
from pipelines.pack import PackConfig, pack
from pipelines.pack_iqa import main as pack_main
from pipelines.verify import verify
from tests.datasets import layouts


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, object_store_memory=200 * 2**20)
    yield
    ray.shutdown()


def samples_of(folder):
    return [s for shard in list_shards(folder) for s in iter_samples(shard)]


def test_koniq_keeps_jpeg_bytes_and_the_official_split(tmp_path):
    root = layouts.koniq(tmp_path / "koniq", n=20)
    manifest = pack("koniq10k", root, tmp_path / "out", PackConfig("koniq10k", per_shard=8, splits=3))
    assert manifest["records"] == 20 and len(manifest["shards"]) == 3
    samples = samples_of(tmp_path / "out")
    assert [s["__key__"] for s in samples] == sorted(s["__key__"] for s in samples)
    for s in samples:
        label = json.loads(s["label.json"])
        assert s["image.jpg"] == (root / label["image"]).read_bytes()  # byte for byte, never re-encoded
        assert "." not in s["__key__"] and s["__key__"].startswith("koniq10k_1024x768_")
        assert label["official"] in ("train", "val", "test") and len(label["folds"]) == 3
        assert label["scale"]["low"] == 1.0 and 0 <= label["quality"] <= 1
    assert verify(tmp_path / "out").ok


def test_live_bmp_becomes_lossless_png_with_its_reference(tmp_path):
    root = layouts.live(tmp_path / "live")
    pack("live", root, tmp_path / "out", PackConfig("live", per_shard=300, splits=2))
    table = iqa.load("live", root)
    samples = samples_of(tmp_path / "out")
    assert len(samples) == len(table)
    first = samples[0]
    label = json.loads(first["label.json"])
    assert set(first) == {"__key__", "image.png", "ref.png", "label.json"}
    original = cv2.imread(str(root / label["image"]), cv2.IMREAD_UNCHANGED)
    packed = cv2.imdecode(np.frombuffer(first["image.png"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(original, packed)
    assert label["ref"].startswith("refimgs/") and label["distortion"] in ("jp2k", "jpeg", "wn", "gblur", "fastfading")


def test_folds_match_the_table_splits(tmp_path):
    root = layouts.kadid(tmp_path / "k", refs=5, types=2, levels=2)
    pack("kadid10k", root, tmp_path / "out", PackConfig("kadid10k", per_shard=7, splits=4, seed=3))
    splits = iqa.load("kadid10k", root).splits(n=4, seed=3)
    for s in samples_of(tmp_path / "out"):
        label = json.loads(s["label.json"])
        for k, side in enumerate(label["folds"]):
            assert label["content"] in getattr(splits[k], side).contents()


def test_resume_and_refuse_other_configuration(tmp_path):
    root = layouts.generic(tmp_path / "g")
    options = {"low": 0, "high": 10}
    first = pack("csv", root, tmp_path / "out", PackConfig("csv", per_shard=5), options=options)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.tar")}
    again = pack("csv", root, tmp_path / "out", PackConfig("csv", per_shard=5), options=options)
    assert again["shards"] == first["shards"]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.tar")} == before
    assert pack_main(["--dataset", "csv", "--root", str(root), "--out", str(tmp_path / "out"),
                      "--per-shard", "4", "-o", "low=0", "-o", "high=10"]) == 2


def test_cli_strict_and_lenient(tmp_path, capsys):
    root = layouts.spaq(tmp_path / "spaq")
    (root / "TestImage" / "00004.jpg").unlink()
    args = ["--dataset", "spaq", "--root", str(root), "--out", str(tmp_path / "out")]
    assert pack_main(args) == 2
    assert "00004.jpg does not exist" in capsys.readouterr().err
    assert pack_main(args + ["--lenient"]) == 0
    manifest = json.loads(manifest_path(tmp_path / "out").read_text())
    assert manifest["records"] == 11 and "00004.jpg" in manifest["skipped_inputs"][0]


def test_keys_must_stay_unique(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    for name in ("a.b.png", "a_b.png"):  # both sanitise to the same key
        cv2.imwrite(str(root / name), np.zeros((8, 8, 3), np.uint8))
    (root / "labels.csv").write_text("image,score\na.b.png,1\na_b.png,2\n")
    with pytest.raises(DatasetError, match="same sample key"):
        pack("csv", root, tmp_path / "out", PackConfig("csv"), options={"low": 0, "high": 5})
