"""One labelled-data contract for training and evaluation: one's own CSV end to end, and the four bugs it removed."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from datasets import iqa
from datasets.iqa.table import split_contents
from datasets.labelled import PseudoSource, SplitRule, TableSource, open_labelled
from datasets.shardformat import iter_samples, list_shards
from dri import config
from dri.config import ConfigError
from dri.evaluate import main as evaluate_main
from dri.train import main as train_main
from tests.datasets import layouts
from tests.dri.conftest import FAST

CSV_OPTIONS = ["--stage2.options.low", "0", "--stage2.options.high", "10", "--stage2.options.higher_is_better", "false"]


def test_ones_own_csv_trains_stage_two_and_evaluates(stage1_model, shards, tmp_path):
    labels = layouts.generic(tmp_path / "mine") / "labels.csv"  # DMOS on 0..10, lower is better
    run = tmp_path / "run"
    args = [*FAST, "--shards.path", str(shards), "--out", str(run), "--stage", "2", "--stage2.init", str(stage1_model),
            "--stage2.data", "csv", "--stage2.root", str(labels), "--stage2.splits", "2", *CSV_OPTIONS]
    assert train_main(args) == 0
    results = json.loads((run / "results.json").read_text())["stage2"]
    source = TableSource("csv", labels, SplitRule(), {"low": 0, "high": 10, "higher_is_better": False})
    test_side = [r for r in source.table if source.side_of({"content": r.content, "official": None}, 0) == "test"]
    assert results["held_out_images"] == len(test_side) > 0
    assert results["human_labels"] is True and "csv at" in results["data"]
    assert source.table.scale.higher_is_better is False
    assert [r.quality for r in source.table][:3] == pytest.approx([0.8, 0.7, 0.6])  # 1 - DMOS/10
    out = tmp_path / "eval"
    assert evaluate_main(["--checkpoint", results["best"], "--dataset", "csv", "--root", str(labels), "-o", "low=0",
                          "-o", "high=10", "-o", "higher_is_better=false", "--splits", "2", "--workers", "0",
                          "--out", str(out)]) == 0
    evaluation = json.loads((out / "results.json").read_text())
    assert len(evaluation["splits"]) == 2 and evaluation["splits"][0]["images"] == len(test_side)


def test_metrics_csv_reads_cleanly_with_dictreader(stage1_model, shards, tmp_path):
    """Bug 2: the header was written once with the first row's keys; validation rows landed under loss/lr."""
    run = tmp_path / "run"
    assert train_main([*FAST, "--shards.path", str(shards), "--out", str(run), "--stage", "2",
                       "--stage2.init", str(stage1_model)]) == 0
    with open(run / "stage2" / "metrics.csv", newline="") as handle:
        text = handle.read()
        rows = list(csv.DictReader(text.splitlines()))
    assert text.count("step,") == 1  # one header
    jsonl = [json.loads(line) for line in (run / "stage2" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == len(jsonl)
    for row, record in zip(rows, jsonl):
        assert set(k for k, v in row.items() if v != "") == set(record)  # every value under its own name
        for key, value in record.items():
            assert float(row[key]) == pytest.approx(value)
    assert any(r["val_srcc"] for r in rows) and all(not r["lr"] or float(r["lr"]) <= 3e-4 for r in rows)


def test_evaluate_keeps_the_whole_held_out_side(shards, stage1_model, tmp_path):
    """Bug 1: the split rule was re-derived from the scored images only (24 held out, 6 kept)."""
    source = PseudoSource(shards, SplitRule(), unit="photo")
    ids = sorted({json.loads(s["meta.json"])[k]["id"] for sh in list_shards(shards) for s in iter_samples(sh)
                  for k in "ab"})
    side = split_contents(ids, 0, 0, 0.8)
    expected = sum((side[json.loads(s["meta.json"])["a"]["id"]] == "test") * 2
                   + (side[json.loads(s["meta.json"])["b"]["id"]] == "test")
                   for sh in list_shards(shards) for s in iter_samples(sh))
    assert expected > 0 and source.contents == ids
    out = tmp_path / "eval"
    assert evaluate_main(["--checkpoint", str(stage1_model), "--dataset", "pseudo", "--root", str(shards),
                          "--pseudo-split", "photo", "--splits", "1", "--workers", "0", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["splits"][0]["images"] == expected


def test_the_official_split_can_be_turned_off_and_a_missing_split_is_refused(tmp_path):
    """Bug 3: ``official: false`` became "auto" for KonIQ-10k, and ``split: 3`` raised IndexError."""
    root = layouts.koniq(tmp_path / "koniq", n=30)
    seeded = open_labelled("koniq10k", root, rule=SplitRule(official=False))
    assert seeded.max_splits is None and seeded.side_of({"content": "1000003", "official": "train"}, 3) in (
        "train", "test")
    official = open_labelled("koniq10k", root, rule=SplitRule(official=None))
    assert official.official and official.max_splits == 1
    with pytest.raises(ValueError, match="split 3 does not exist.*official split is one split"):
        official.check_split(3)
    cfg = config.load(None, {"stage2.data": "koniq10k", "stage2.root": str(root), "stage2.official": "false"})
    assert cfg.stage2.official is False
    assert config.load(None, {}).stage2.official is None


def test_reader_options_are_parsed_once_with_the_same_errors_everywhere(tmp_path, capsys):
    """Bug 4: -o low=2 -o high=10 was rejected by dri.evaluate and higher_is_better=false read as true."""
    labels = layouts.generic(tmp_path / "mine") / "labels.csv"
    parsed = iqa.parse_options("csv", iqa.key_values(["low=2", "high=10", "higher_is_better=false"]))
    assert (parsed.low, parsed.high, parsed.higher_is_better) == (2.0, 10.0, False)
    assert iqa.parse_options("csv", {"low": 0, "high": 1, "higher_is_better": "False"}).higher_is_better is False
    with pytest.raises(iqa.OptionError, match="higher_is_better: expected true or false, got 'maybe'"):
        iqa.parse_options("csv", {"low": 0, "high": 1, "higher_is_better": "maybe"})
    with pytest.raises(iqa.OptionError, match="unknown option.*lo.*accepts: low"):
        iqa.parse_options("csv", {"lo": 0})
    with pytest.raises(iqa.OptionError, match="part: expected one of 'Train', 'Val', 'Test'"):
        iqa.parse_options("pipal", {"part": "Final"})
    # the same message from every entry point
    with pytest.raises(ConfigError, match="stage2.options: csv: the csv reader needs the score range"):
        config.load(None, {"stage2.data": "csv", "stage2.root": str(labels)})
    with pytest.raises(ConfigError, match="higher_is_better: expected true or false"):
        config.load(None, {"stage2.data": "csv", "stage2.root": str(labels), "stage2.options.low": "0",
                           "stage2.options.high": "10", "stage2.options.higher_is_better": "maybe"})
    assert train_main(["--stage2.data", "csv", "--stage2.root", str(labels), "--stage", "2", "--out",
                       str(tmp_path / "r")]) == 2
    assert "needs the score range" in capsys.readouterr().err
    from datasets.iqa.__main__ import main as inspect_main
    from pipelines.pack_iqa import main as pack_main

    assert inspect_main(["inspect", "csv", str(labels), "-o", "low=0", "-o", "high=10", "-o",
                         "higher_is_better=false"]) == 0
    assert "lower is better" in capsys.readouterr().out
    assert pack_main(["--dataset", "csv", "--root", str(labels), "--out", str(tmp_path / "p"), "-o", "low=0",
                      "-o", "higher_is_better=maybe"]) == 2
    assert "higher_is_better: expected true or false" in capsys.readouterr().err


def test_every_setting_is_validated_before_any_work(tmp_path):
    for key, value, message in (("stage2.lr", "nan", "stage2.lr: must be a finite number above 0"),
                                ("stage1.groups", "0", "stage1.groups: must be at least 1"),
                                ("stage2.steps", "-5", "stage2.steps: must be at least 1"),
                                ("stage2.batch", "0", "stage2.batch: must be at least 1"),
                                ("stage2.data", "imagenet", "stage2.data: must be one of"),
                                ("shards.size", "4", "shards: size must be at least 8")):
        with pytest.raises(ConfigError, match=message):
            config.load(None, {key: value})
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match="out: is a file"):
        config.load(None, {"out": str(tmp_path / "file")})


def test_the_build_spec_is_passed_through_not_relisted():
    cfg = config.load(None, {"shards.groups": "40", "shards.flip": "true", "shards.device": "cuda",
                             "shards.ray_cpus": "3", "shards.source": "samples,synthetic:10"})
    from datasets.shardformat import BuildSpec
    from dataclasses import asdict

    spec = BuildSpec.from_mapping(asdict(cfg.shards))
    assert (spec.groups, spec.flip, spec.device, spec.source) == (40, True, "cuda", "samples,synthetic:10")
    import argparse

    parser = argparse.ArgumentParser()
    BuildSpec.add_arguments(parser)
    assert BuildSpec.from_args(parser.parse_args(spec.to_argv())) == spec


def test_every_reader_keeps_its_contract(tmp_path):
    """Parametrised over datasets.iqa.names(): adding a reader adds its layout here, and nothing else."""
    builders = {"koniq10k": layouts.koniq, "kadid10k": lambda r: layouts.kadid(r, refs=3, types=2, levels=2),
                "live": layouts.live, "csiq": layouts.csiq, "tid2013": layouts.tid2013, "livec": layouts.livec,
                "spaq": layouts.spaq, "pipal": layouts.pipal, "csv": lambda r: layouts.generic(r) / "labels.csv"}
    options = {"csv": {"low": 0, "high": 10}}
    assert set(builders) == set(iqa.names()), "a reader without a layout in tests/datasets/layouts.py"
    for name in iqa.names():
        root = builders[name](tmp_path / name)
        table = iqa.load(name, root, **options.get(name, {}))
        assert len(table) > 0 and not table.problems
        for record in table:
            assert 0.0 <= record.quality <= 1.0 and record.image.is_file() and record.content
            assert record.ref is None or record.ref.is_file()
        source = TableSource(name, root, SplitRule(official=False), options.get(name))
        for k in range(3):
            sides = {}
            for record in table:
                sides.setdefault(record.content, set()).add(source.side_of(
                    {"content": record.content, "official": record.official}, k))
            assert all(len(s) == 1 for s in sides.values())  # content-disjoint
            assert {"train", "test"} <= set().union(*sides.values())


def test_paths_leaving_the_dataset_are_refused(tmp_path):
    """A CSV naming ../x.jpg, an absolute path or a link out of the folder: listed with the reason, never read."""
    root = tmp_path / "set"
    layouts.image(root / "ok.png", 1)
    secret = layouts.image(tmp_path / "secret.png", 2)
    (root / "link.png").symlink_to(secret)
    (root / "labels.csv").write_text(f"image,score\nok.png,3\n../secret.png,4\n{secret},5\nlink.png,6\n")
    with pytest.raises(iqa.DatasetError, match="outside the dataset folder"):
        iqa.load("csv", root / "labels.csv", low=0, high=10)
    table = iqa.load("csv", root / "labels.csv", strict=False, low=0, high=10)
    assert [r.image.name for r in table] == ["ok.png"]
    assert [p.kind for p in table.problems] == ["outside_dataset"] * 3


def test_impossible_scores_are_refused_in_strict_mode(tmp_path):
    import numpy as np
    import scipy.io

    root = layouts.kadid(tmp_path / "kadid", refs=2, types=2, levels=2)
    text = (root / "dmos.csv").read_text().splitlines()
    text[1] = ",".join(text[1].split(",")[:2] + ["1e9", "0.4"])
    text[2] = ",".join(text[2].split(",")[:2] + ["-7", "0.4"])
    (root / "dmos.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(iqa.DatasetError, match="outside the scale 1..5"):
        iqa.load("kadid10k", root)
    lenient = iqa.load("kadid10k", root, strict=False)
    assert [p.kind for p in lenient.problems] == ["invalid_score", "invalid_score"]
    live = layouts.live(tmp_path / "live")
    data = scipy.io.loadmat(live / "dmos_realigned.mat")
    data["dmos_new"] = data["dmos_new"].astype(float)
    flat = data["dmos_new"].reshape(-1)
    non_reference = np.flatnonzero(data["orgs"].reshape(-1) == 0)
    flat[non_reference[0]], flat[non_reference[1]] = np.nan, np.inf
    scipy.io.savemat(live / "dmos_realigned.mat", {k: v for k, v in data.items() if not k.startswith("__")})
    with pytest.raises(iqa.DatasetError, match="not a finite number"):
        iqa.load("live", live)
    assert len(iqa.load("live", live, strict=False).problems) == 2


def test_label_files_in_other_encodings_and_extra_sheets(tmp_path):
    root = layouts.tid2013(tmp_path / "tid", refs=2)
    labels = root / "mos_with_names.txt"
    labels.write_bytes(b"\xef\xbb\xbf" + labels.read_bytes())  # a byte-order mark
    assert len(iqa.load("tid2013", root)) > 0
    labels.write_bytes(labels.read_bytes()[3:].decode().encode("utf-16"))  # UTF-16 with its mark
    assert len(iqa.load("tid2013", root)) > 0
    labels.write_bytes(b"\xff\xfe\x00\xd8 broken")
    with pytest.raises(iqa.DatasetError, match="not a text file in UTF-8 or UTF-16"):
        iqa.load("tid2013", root)
    pipal = layouts.pipal(tmp_path / "pipal", refs=2)
    for label in (pipal / "Train_Label").glob("*.txt"):
        label.write_bytes(b"\xef\xbb\xbf" + label.read_bytes())
    assert len(iqa.load("pipal", pipal)) > 0
    csiq = layouts.csiq(tmp_path / "csiq", workbook=False)
    text = csiq / "csiq_label.txt"
    text.write_bytes(b"\xef\xbb\xbf" + text.read_bytes())
    assert len(iqa.load("csiq", csiq)) > 0
    spaq = layouts.spaq(tmp_path / "spaq")
    import openpyxl

    book = openpyxl.load_workbook(spaq / "Annotations" / "MOS and Image attribute scores.xlsx")
    notes = book.create_sheet("Notes", 0)
    notes.append(["about this file"])
    book.save(spaq / "Annotations" / "MOS and Image attribute scores.xlsx")
    assert len(iqa.load("spaq", spaq)) > 0


def test_pseudo_labels_are_computed_once_per_shard_and_equal_the_teacher(shards, tmp_path):
    """The teacher's labels are cached in _meta/ by shard sha256, read by the loader, redone when a shard changes."""
    import shutil

    from datasets import pseudolabels
    from datasets.shardformat import manifest_path

    folder = shutil.copytree(shards, tmp_path / "shards")

    def labels_seen() -> dict[str, float]:
        source = open_labelled("pseudo", folder, teacher="ssim_psnr")
        return {f"{label['group']}/{label['view']}": label["quality"]
                for batch in source.batches("all", mode="eval", patch=64, batch=8) for label in batch["labels"]}

    on_the_fly = labels_seen()
    source = open_labelled("pseudo", folder, teacher="ssim_psnr")
    source.prepare(workers=2)
    path = pseudolabels.cache_path(folder, "ssim_psnr")
    cached = pseudolabels.load(folder, "ssim_psnr")
    assert len(on_the_fly) == 18 * 3 and cached == pytest.approx(on_the_fly, abs=1e-6)  # threads: float order

    data = json.loads(path.read_text())
    first = sorted(data["shards"])[0]
    key = sorted(data["shards"][first]["labels"])[0]
    data["shards"][first]["labels"][key] = 0.125  # the loader reads the cache, not the teacher
    path.write_text(json.dumps(data))
    assert labels_seen()[key] == 0.125

    manifest = json.loads(manifest_path(folder).read_text())
    manifest["shards"][0]["sha256"] = "f" * 64  # as if shard 0 were rebuilt: its labels no longer apply
    manifest_path(folder).write_text(json.dumps(manifest))
    assert manifest["shards"][0]["name"] == first
    assert set(data["shards"][first]["labels"]).isdisjoint(pseudolabels.load(folder, "ssim_psnr"))
    pseudolabels.prepare(folder, "ssim_psnr")
    assert pseudolabels.load(folder, "ssim_psnr") == cached


def test_an_interrupted_labelling_run_keeps_what_it_computed(shards, tmp_path, monkeypatch):
    """A run stopped after two shards (here: the third raises) has written their labels; the rerun
    computes only the others and ends with every label."""
    import shutil

    from datasets import pseudolabels

    folder = shutil.copytree(shards, tmp_path / "shards")
    pseudolabels.cache_path(folder, "ssim_psnr").unlink(missing_ok=True)  # other tests may have labelled them
    real, calls = pseudolabels.label_shard, []

    def stopped_after_two(path: str, teacher: str) -> dict[str, float]:
        calls.append(Path(path).name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, teacher)

    monkeypatch.setattr(pseudolabels, "SAVE_EVERY_S", 0.0)
    monkeypatch.setattr(pseudolabels, "label_shard", stopped_after_two)
    with pytest.raises(KeyboardInterrupt):
        pseudolabels.prepare(folder, "ssim_psnr")
    kept = json.loads(pseudolabels.cache_path(folder, "ssim_psnr").read_text())["shards"]
    assert sorted(kept) == calls[:2]
    calls.clear()
    pseudolabels.prepare(folder, "ssim_psnr")
    assert set(calls).isdisjoint(kept) and len(calls) > 0
    everything = pseudolabels.load(folder, "ssim_psnr")
    assert len(everything) == 18 * 3


def test_pristine_references_join_the_training_side_in_either_mode(shards):
    """The linear head reads its training images as evaluation does (fixed crops): the references labelled 1
    must come with them there too, and never on the held-out side."""
    source = open_labelled("pseudo", shards, teacher="ssim_psnr", pristine=True)
    plain = open_labelled("pseudo", shards, teacher="ssim_psnr")

    def views(src, side, mode):
        return [(label["group"], label["view"], label["quality"])
                for batch in src.batches(side, mode=mode, patch=64, batch=8, distributed=False)
                for label in batch["labels"]]

    for mode in ("train", "eval"):
        with_refs, without = views(source, "train", mode), views(plain, "train", mode)
        refs = [v for v in with_refs if v[1] == "ref_a"]
        assert refs and all(quality == 1.0 for _, _, quality in refs)
        assert sorted(v for v in with_refs if v[1] != "ref_a") == sorted(without)
    assert views(source, "test", "eval") == views(plain, "test", "eval")
    assert not any(view == "ref_a" for _, view, _ in views(source, "test", "eval"))
