"""build_shards and verify_shards with a real local Ray (2 CPUs) and real tars."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import ray
import webdataset as wds

from datasets.shardformat import GROUP_FIELDS, list_shards
from degrade.io import to_uint8
from pipelines import shardio
from datasets.shardformat import BuildSpec
from pipelines.build import build
from pipelines.build_shards import main as build_main
from pipelines.verify import verify
from pipelines.verify_shards import main as verify_main
from tests.conftest import photo

SMALL = dict(groups=12, per_shard=4, size=64)


def copy_folder(source: Path, target: Path) -> Path:
    """A copy of a shard folder (shards and _meta) to attack without touching the original."""
    import shutil

    shutil.copytree(source, target)
    return target


def rewrite_shard(folder: Path, index: int, samples: list[dict]) -> None:
    """Replace a shard by ``samples`` and make manifest and stats agree with it, as an attacker would."""
    written = shardio.write_tar(folder, index, samples)
    manifest = _manifest(folder)
    for entry in manifest["shards"]:
        if entry["name"] == written["name"]:
            entry.update(sha256=written["sha256"], bytes=written["bytes"], samples=written["samples"])
    (folder / "_meta" / "manifest.json").write_text(json.dumps(manifest))
    stats_file = folder / "_meta" / written["name"].replace(".tar", ".stats.json")
    stats = json.loads(stats_file.read_text())
    stats.update(sha256=written["sha256"], bytes=written["bytes"], samples=written["samples"])
    stats_file.write_text(json.dumps(stats))


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, object_store_memory=200 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Three good photos, one corrupt file, one too small."""
    root = tmp_path_factory.mktemp("source")
    for i, name in enumerate(("astronaut", "coffee", "rocket")):
        rgb = to_uint8(photo(name, 96 + 8 * i))
        (root / "photos").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "photos" / f"{name}.png"), rgb[:, :, ::-1])
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cv2.imwrite(str(root / "tiny.png"), np.zeros((20, 30, 3), np.uint8))
    return root


@pytest.fixture(scope="module")
def built(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    report = build(BuildSpec(source=str(source), **SMALL), out)
    assert report.ok and report.built == [0, 1, 2]
    return out


def test_round_trip_with_tarfile_and_webdataset(built):
    names = [Path(p).name for p in list_shards(built)]
    assert names == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    with tarfile.open(built / names[0]) as archive:
        members = archive.getmembers()
    assert all(m.mtime == 0 and not m.pax_headers for m in members)
    assert [m.name for m in members[:6]] == [f"g000000000.{f}" for f in sorted(GROUP_FIELDS)]
    samples = list(wds.WebDataset([str(built / n) for n in names], shardshuffle=False).decode("rgb8"))
    assert len(samples) == 12 and [s["__key__"] for s in samples] == [f"g{i:09d}" for i in range(12)]
    for s in samples:
        assert {f"{f}" for f in GROUP_FIELDS} <= set(s)
        assert all(s[f"{n}.png"].shape == (64, 64, 3) for n in ("ref_a", "x1", "x2", "ref_b", "y"))
        meta = s["meta.json"]
        assert meta["schema"] == 1 and meta["a"]["id"] != meta["b"]["id"]
        assert meta["a"]["source"].startswith("photos/") and len(meta["a"]["box"]) == 3
        assert set(meta["plans"]) == {"policy", "x1", "x2", "y"} and meta["device"] == "cpu"


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "_meta" / "manifest.json").read_text())


def test_manifest_and_stats(built):
    manifest = _manifest(built)
    assert manifest["groups"] == 12 and len(manifest["shards"]) == 3 and manifest["failed_shards"] == []
    assert sorted(p.name for p in built.iterdir()) == ["_meta", "shard-000000.tar", "shard-000001.tar",
                                                        "shard-000002.tar"]  # the folder holds only shards
    for entry in manifest["shards"]:
        assert shardio.file_sha256(built / entry["name"]) == entry["sha256"]
        stats = json.loads((built / "_meta" / entry["name"].replace(".tar", ".stats.json")).read_text())
        assert stats["fingerprint"] == manifest["fingerprint"] and stats["samples"] == 4
        assert stats["sha256"] == entry["sha256"]
        assert set(stats["seconds"]) == {"load", "degrade", "encode", "write"}
    assert [c[0] for c in manifest["contents"]] == ["photos/astronaut.png", "photos/coffee.png", "photos/rocket.png"]


def test_ray_data_reads_the_folder_as_it_lies(built):
    import ray.data

    rows = ray.data.read_webdataset(str(built)).take_all()
    assert len(rows) == 12 and all(r["x1.png"].shape == (64, 64, 3) for r in rows)
    assert sorted(r["__key__"] for r in rows) == [f"g{i:09d}" for i in range(12)]


def test_unreadable_and_small_inputs_are_listed_not_fatal(built):
    skipped = {s["path"]: s["reason"] for s in _manifest(built)["skipped_inputs"]}
    assert set(skipped) == {"broken.jpg", "tiny.png"}
    assert "truncated" in skipped["broken.jpg"] or "decodable" in skipped["broken.jpg"]
    assert "smaller than the 64 px crop" in skipped["tiny.png"]


def test_a_mixture_reads_each_part_inside_its_own_folder(source, tmp_path):
    """Built-in photos, a folder and procedural content in one source: every part gives groups (each
    file read inside its own folder); a part with nothing usable is an error that names it."""
    spec = f"samples=0.4,{source / 'photos'}=0.3,synthetic:50=0.3"
    report = build(BuildSpec(source=spec, groups=24, per_shard=12, size=64), tmp_path / "mixed")
    assert report.ok and report.skipped_inputs == []
    parts = {c[4] for c in _manifest(tmp_path / "mixed")["contents"]}
    assert parts == {0, 1, 2}
    cited = {m["a"]["source"].split("/")[0] for m in (
        s["meta.json"] for s in wds.WebDataset(list_shards(tmp_path / "mixed"), shardshuffle=False).decode())}
    assert cited == {"samples", "synthetic"} | {p.name for p in (source / "photos").iterdir()}
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ValueError, match="part 2 of the source list has no usable image"):
        build(BuildSpec(source=f"samples=0.5,{empty}=0.5", groups=4, per_shard=4, size=64), tmp_path / "bad")


def test_augmented_views_are_recorded_and_replayed_by_verify(source, tmp_path):
    """Every kind of content augmentation is drawn, written into the group's views, and redone
    exactly by verification (which re-derives each reference from its source and view)."""
    spec = BuildSpec(source=str(source), groups=16, per_shard=8, size=48, min_scale=0.5, rot90=True, flip=True,
                     permute=True, grey=0.3, saturation=1.8)
    out = tmp_path / "augmented"
    assert build(spec, out).ok
    from datasets.shardformat import iter_samples

    views = [json.loads(sample["meta.json"])[side] for shard in list_shards(out)
             for sample in iter_samples(shard) for side in ("a", "b")]
    for key in ("size", "rot90", "flip", "permute", "grey", "saturation"):
        assert any(key in v for v in views), key
    assert verify(out).ok
    damaged = copy_folder(out, tmp_path / "damaged")  # another factor in one record: not what the seed drew
    samples = list(iter_samples(damaged / "shard-000000.tar"))
    meta = json.loads(samples[0]["meta.json"])
    meta["a"].pop("grey", None)
    meta["a"]["saturation"] = 0.5 if meta["a"].get("saturation", 1.0) > 0.7 else 1.5
    samples[0]["meta.json"] = json.dumps(meta, sort_keys=True).encode()
    rewrite_shard(damaged, 0, samples)
    assert verify(damaged).problems == {
        "shard-000000.tar": ["shard-000000.tar:g000000000: meta.json differs from what the seed plans in a"]}


def test_rerun_keeps_finished_shards(built, source):
    before = {p.name: p.stat().st_mtime_ns for p in built.glob("*.tar")}
    report = build(BuildSpec(source=str(source), **SMALL), built)
    assert report.built == [] and report.kept == [0, 1, 2]
    assert {p.name: p.stat().st_mtime_ns for p in built.glob("*.tar")} == before


def test_other_configuration_is_refused_unless_overwrite(built, source, capsys, tmp_path):
    other = dict(SMALL, seed=1)
    with pytest.raises(shardio.ConfigMismatch, match="--overwrite"):
        build(BuildSpec(source=str(source), **other), built)
    out = copy_folder(built, tmp_path / "copy")
    (out / "notes.txt").write_text("a file of the user's")
    report = build(BuildSpec(source=str(source), **other), out, overwrite=True)
    assert report.ok and report.built == [0, 1, 2]
    assert (out / "notes.txt").read_text() == "a file of the user's"  # overwrite touches only shard files


def test_a_shard_that_keeps_failing_is_reported_and_the_rest_kept(source, tmp_path):
    (tmp_path / "shard-000001.tar").mkdir()  # the rename onto it fails on every attempt
    report = build(BuildSpec(source=str(source), **SMALL), tmp_path, retries=1)
    assert not report.ok and list(report.failed) == [1] and report.built == [0, 2]
    manifest = _manifest(tmp_path)
    assert [f["name"] for f in manifest["failed_shards"]] == ["shard-000001.tar"]
    assert "Directory" in manifest["failed_shards"][0]["error"] or "directory" in manifest["failed_shards"][0]["error"]


def test_verify_passes_and_catches_damage(built, tmp_path):
    assert verify(built).ok
    damaged = copy_folder(built, tmp_path / "damaged")
    data = bytearray((damaged / "shard-000001.tar").read_bytes())
    data[len(data) // 3] ^= 0x01
    (damaged / "shard-000001.tar").write_bytes(bytes(data))
    report = verify(damaged)
    assert list(report.problems) == ["shard-000001.tar"] and "sha256" in report.problems["shard-000001.tar"][0]


def test_verify_replay_catches_an_image_that_does_not_match_its_plan(built, tmp_path):
    """A shard whose checksums were recomputed after an image was replaced: only the replay can tell."""
    out = copy_folder(built, tmp_path / "edited")
    from datasets.shardformat import iter_samples

    samples = list(iter_samples(out / "shard-000000.tar"))
    x1 = cv2.imdecode(np.frombuffer(samples[2]["x1.png"], np.uint8), cv2.IMREAD_COLOR)
    x1[10, 10] = (x1[10, 10].astype(int) + 7) % 256
    samples[2]["x1.png"] = cv2.imencode(".png", x1)[1].tobytes()
    rewrite_shard(out, 0, samples)
    report = verify(out)
    assert list(report.problems) == ["shard-000000.tar"]
    assert "g000000002.x1.png: differs from its replay (3 values, max 7)" in report.problems["shard-000000.tar"][0]


def _run(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.build_shards", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def _settled(out: Path) -> dict[str, int]:
    """The finished shards once the killed run's Ray workers (which outlive the driver briefly) are gone."""
    previous, stable_since = None, time.time()
    while time.time() - stable_since < 3:
        now = {p.name: p.stat().st_mtime_ns for p in out.glob("_meta/*.stats.json")}
        if now != previous:
            previous, stable_since = now, time.time()
        time.sleep(0.2)
    return previous


def test_cli_determinism_across_worker_counts_and_resume_after_sigkill(source, built, tmp_path):
    args = ["--source", str(source), "--groups", "12", "--per-shard", "4", "--size", "64"]
    # one worker, in a fresh process and Ray: the same bytes as the two-worker build above
    one = tmp_path / "one"
    result = subprocess.run([sys.executable, "-m", "pipelines.build_shards", *args, "--out", str(one),
                             "--ray-cpus", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("shard-000000.tar", "shard-000001.tar", "shard-000002.tar"):
        assert (one / name).read_bytes() == (built / name).read_bytes()
    # kill a longer build (driver and its Ray) once some shards are done, then resume
    long_args = [*args[:2], "--groups", "60", "--per-shard", "3", "--size", "64", "--ray-cpus", "1"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    process = _run([*long_args, "--out", str(killed)])
    deadline = time.time() + 240
    while len(list(killed.glob("_meta/*.stats.json"))) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = _settled(killed)
    assert 3 <= len(done_before) < 20, "the build was not interrupted mid-run"
    resumed = subprocess.run([sys.executable, "-m", "pipelines.build_shards", *long_args, "--out", str(killed)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(done_before)} already done" in resumed.stdout
    for name, mtime in done_before.items():
        assert (killed / "_meta" / name).stat().st_mtime_ns == mtime  # finished shards were not rebuilt
    assert not list(killed.glob("**/.*.tmp"))
    reference = subprocess.run([sys.executable, "-m", "pipelines.build_shards", *long_args, "--out", str(clean)],
                               capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0
    assert sorted(p.name for p in killed.glob("*.tar")) == sorted(p.name for p in clean.glob("*.tar"))
    for p in clean.glob("*.tar"):
        assert (killed / p.name).read_bytes() == p.read_bytes()
    assert verify_main([str(killed), "--no-replay"]) == 0


def test_cli_errors(tmp_path, capsys):
    assert build_main(["--source", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder of images" in capsys.readouterr().err
    assert verify_main([str(tmp_path)]) == 2
    assert "no _meta/manifest.json" in capsys.readouterr().err

