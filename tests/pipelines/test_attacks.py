"""The builder and the verifier under attack: duplicate names, edits that keep the manifest consistent,
bad files in the source, a cluster already running, a full disk. Real Ray, real tars, real processes."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import ray

from datasets.shardformat import BuildSpec, iter_samples
from degrade.io import to_uint8
from pipelines import shardio
from pipelines.build import build
from pipelines.verify import FOLDER, verify
from pipelines.verify_shards import main as verify_main
from tests.conftest import photo
from tests.pipelines.test_build_shards import _manifest, copy_folder, rewrite_shard

SPEC = dict(groups=8, per_shard=2, size=48)


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, object_store_memory=200 * 2**20)
    yield
    ray.shutdown()


def _photos(root: Path, names=("astronaut", "coffee", "rocket")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(root / f"{name}.png"), to_uint8(photo(name, 64 + 8 * i))[:, :, ::-1])
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    source = _photos(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("out")
    assert build(BuildSpec(source=str(source), **SPEC), out).ok
    return out


def test_same_stem_with_two_suffixes_are_two_contents(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    cv2.imwrite(str(source / "dup.jpg"), to_uint8(photo("coffee", 56))[:, :, ::-1])
    cv2.imwrite(str(source / "dup.png"), to_uint8(photo("rocket", 64))[:, :, ::-1])
    report = build(BuildSpec(source=str(source), groups=6, per_shard=3, size=48), tmp_path / "out")
    assert report.ok
    ids = {json.loads(s["meta.json"])[side]["id"] for shard in sorted((tmp_path / "out").glob("*.tar"))
           for s in iter_samples(shard) for side in "ab"}
    assert ids == {"dup.jpg", "dup.png"}
    assert verify(tmp_path / "out").ok


def test_a_shard_deleted_with_its_manifest_entry_is_missing(built, tmp_path):
    out = copy_folder(built, tmp_path / "x")
    (out / "shard-000002.tar").unlink()
    manifest = _manifest(out)
    manifest["shards"] = [s for s in manifest["shards"] if s["name"] != "shard-000002.tar"]
    (out / "_meta" / "manifest.json").write_text(json.dumps(manifest))
    report = verify(out)
    assert report.sound == 3 and report.shards == 4
    assert "missing from the manifest" in report.problems["shard-000002.tar"][0]
    assert any("calls for 8 groups" in p for p in report.problems[FOLDER])


def test_a_duplicated_shard_is_caught(built, tmp_path):
    out = copy_folder(built, tmp_path / "x")
    rewrite_shard(out, 1, list(iter_samples(out / "shard-000000.tar")))  # shard 1 now holds shard 0's groups
    report = verify(out)
    assert "not a group of this shard" in report.problems["shard-000001.tar"][0]
    assert report.sound == 3
    rewrite_shard(out, 1, list(iter_samples(built / "shard-000001.tar")) * 2)  # its own groups, twice
    report = verify(out)
    assert any("appear more than once" in p for p in report.problems[FOLDER])


def test_an_appended_foreign_sample_is_caught(built, tmp_path):
    out = copy_folder(built, tmp_path / "x")
    samples = list(iter_samples(out / "shard-000000.tar"))
    foreign = {**samples[0], "__key__": "g000000099"}
    rewrite_shard(out, 0, samples + [foreign])
    report = verify(out)
    assert any("g000000099: not a group of this shard" in p for p in report.problems["shard-000000.tar"])
    assert any("its shards hold 9" in p for p in report.problems[FOLDER])


def test_rewritten_source_names_are_caught(built, tmp_path):
    out = copy_folder(built, tmp_path / "x")
    samples = list(iter_samples(out / "shard-000001.tar"))
    meta = json.loads(samples[0]["meta.json"])
    meta["a"]["source"] = "somewhere/else.png"
    samples[0]["meta.json"] = json.dumps(meta, sort_keys=True).encode()
    rewrite_shard(out, 1, samples)
    report = verify(out)
    assert "differs from what the seed plans in a" in report.problems["shard-000001.tar"][0]


def test_a_stale_stats_checksum_is_detected_and_never_copied_by_a_rerun(built, tmp_path):
    out = copy_folder(built, tmp_path / "x")
    source = Path(_manifest(out)["config"]["source"])
    stats_file = out / "_meta" / "shard-000003.stats.json"
    stats = json.loads(stats_file.read_text())
    stats["sha256"] = "0" * 64
    stats_file.write_text(json.dumps(stats))
    assert "stats sidecar records sha256 000000000000" in verify(out).problems["shard-000003.tar"][0]
    # a tar edited after it was written, size kept: the rerun rebuilds it instead of trusting the sidecar
    data = bytearray((out / "shard-000002.tar").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "shard-000002.tar").write_bytes(bytes(data))
    report = build(BuildSpec(source=str(source), **SPEC), out)
    assert report.built == [2, 3]
    assert verify(out).ok
    assert (out / "shard-000002.tar").read_bytes() == (built / "shard-000002.tar").read_bytes()


def test_a_shard_of_another_engine_version_is_named_not_called_corrupt(built, tmp_path):
    out = copy_folder(built, tmp_path / "x")
    manifest = _manifest(out)
    manifest["engine"] = "0"
    (out / "_meta" / "manifest.json").write_text(json.dumps(manifest))
    report = verify(out)
    problems = [p for ps in report.problems.values() for p in ps]
    assert problems and all("engine version 0" in p or "differs from what the seed plans in engine" in p
                            for p in problems)


def test_a_corrupt_manifest_gets_a_clear_error(built, tmp_path, capsys):
    out = copy_folder(built, tmp_path / "x")
    (out / "_meta" / "manifest.json").write_text('{"shards": [')
    assert verify_main([str(out)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json: not a readable manifest" in err and "Traceback" not in err


def test_verify_counts_make_sense_when_every_shard_failed(tmp_path, capsys):
    source = _photos(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    for i in range(2):
        (out / f"shard-00000{i}.tar").mkdir()  # every rename onto a shard fails
    report = build(BuildSpec(source=str(source), groups=4, per_shard=2, size=48), out, retries=0)
    assert not report.ok and sorted(report.failed) == [0, 1]
    assert verify_main([str(out), "--no-replay"]) == 1
    assert "0 of 2 shards sound, 2 with problems" in capsys.readouterr().out


def test_dangling_links_and_fifos_in_the_source_are_listed_and_the_build_goes_on(tmp_path):
    source = _photos(tmp_path / "src")
    (source / "gone.png").symlink_to(source / "nothing-here.png")
    os.mkfifo(source / "pipe.png")
    (source / ".hidden.png").write_bytes((source / "coffee.png").read_bytes())
    outside = tmp_path / "outside.png"
    shutil.copy(source / "coffee.png", outside)
    (source / "escape.png").symlink_to(outside)
    report = build(BuildSpec(source=str(source), groups=4, per_shard=2, size=48), tmp_path / "out")
    assert report.ok
    skipped = {s["path"]: s["reason"] for s in report.skipped_inputs}
    assert "dangling" in skipped["gone.png"] and "not a regular file" in skipped["pipe.png"]
    assert skipped[".hidden.png"] == "hidden file" and "outside" in skipped["escape.png"]


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_fails_clearly_keeps_finished_shards_and_leaves_no_temporaries(tmp_path):
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "300k"):
        pytest.skip("needs a small tmpfs to fill (mount -t tmpfs, as root)")
    source = _photos(tmp_path / "src")
    flags = ["--source", str(source), "--groups", "24", "--per-shard", "2", "--size", "48", "--ray-cpus", "1",
             "--retries", "0", "--png-level", "0"]
    try:
        result = subprocess.run([sys.executable, "-m", "pipelines.build_shards", *flags, "--out", str(disk / "out")],
                                capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode in (1, 2) and "Traceback" not in output, output
        assert "disk is full" in output
        assert [p for p in (disk / "out").rglob("*") if p.name.endswith(".tmp")] == []
        kept = {p.name: p.read_bytes() for p in (disk / "out").glob("*.tar")}
        assert kept, "some shards fit before the disk filled up"
        shutil.copytree(disk / "out", tmp_path / "bigger")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
    rerun = subprocess.run([sys.executable, "-m", "pipelines.build_shards", *flags, "--out", str(tmp_path / "bigger")],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert all((tmp_path / "bigger" / name).read_bytes() == data for name, data in kept.items())
