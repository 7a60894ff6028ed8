"""dri.train, dri.evaluate and dri.predict on real shards, real checkpoints and real processes."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dri import checkpoint, config
from dri.config import ConfigError, TrainConfig
from dri.evaluate import main as evaluate_main
from dri.models.registry import training_state
from dri.predict import main as predict_main
from dri.train import main as train_main
from dri.trainer import train
from tests.datasets import layouts

ROOT = Path(__file__).resolve().parents[2]
from tests.dri.conftest import FAST


def overrides(shards: Path, run: Path, extra: list[str] = ()) -> dict[str, str]:
    args = [*FAST, "--shards.path", str(shards), "--out", str(run), *extra]
    return dict(zip(args[0::2], args[1::2]))


def _cfg(shards: Path, run: Path, extra: list[str] = ()) -> TrainConfig:
    return config.load(None, {k[2:]: v for k, v in overrides(shards, run, extra).items()})


def test_config_files_and_overrides(tmp_path):
    assert config.load(ROOT / "dri" / "configs" / "tiny.yaml") == TrainConfig()
    base = config.load(ROOT / "dri" / "configs" / "base.yaml")
    assert base.model.name == "dri_iqa_base" and base.stage2.lr == 1e-5 and base.stage2.batch == 8
    cfg = config.load(None, {"stage2.lr": "1e-4", "model.overrides.restoration": "false"})
    assert cfg.stage2.lr == 1e-4 and cfg.model.overrides == {"restoration": False}
    config.save(cfg, tmp_path / "c.yaml")
    assert config.load(tmp_path / "c.yaml") == cfg
    with pytest.raises(ConfigError, match="did you mean stage2.lr"):
        config.load(None, {"stage2.lrr": "1"})
    with pytest.raises(ConfigError, match="expected int"):
        config.load(None, {"stage1.steps": "many"})


def test_two_stages_then_evaluate_and_predict(shards, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main([*sum(overrides(shards, run).items(), ())]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["stage1"]["steps"] == 4 and results["stage2"]["steps"] == 4
    assert set(results["stage2"]["held_out"]) == {"srcc", "plcc", "plcc_logistic", "krcc", "rmse"}
    for path in ("config.yaml", "stage1/model.pt", "stage1/last.pt", "stage1/metrics.jsonl", "stage1/metrics.csv",
                 "stage1/loss.png", "stage2/best.pt", "stage2/scatter.png", "stage2/validation.png"):
        assert (run / path).is_file(), path
    assert any((run / "stage2" / "tensorboard").iterdir())
    rows = [json.loads(line) for line in (run / "stage2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    assert sum("val_srcc" in r for r in rows) == 2
    model, info = checkpoint.load_model(run / "stage1" / "model.pt")
    assert model.has_prototypes and info["model_name"] == "dri_iqa_tiny"
    # a training checkpoint (last.pt) loads as the model it trains, e.g. to export a step before the last
    trained, info = checkpoint.load_model(run / "stage2" / "last.pt")
    saved = checkpoint.load(run / "stage2" / "last.pt")["objective"]
    assert info["step"] == 4 and info["model_name"] == "dri_iqa_tiny"
    assert all(v.equal(saved[f"model.{k}"]) for k, v in trained.state_dict().items())
    assert training_state(checkpoint.load(run / "stage2" / "best.pt")) is None  # an inference file
    # evaluation on the pseudo-MOS set, deterministic
    best = str(run / "stage2" / "best.pt")
    args = ["--checkpoint", best, "--dataset", "pseudo", "--root", str(shards), "--splits", "2", "--workers", "0",
            "--levels", "2", "--out", str(tmp_path / "eval")]
    assert evaluate_main(args) == 0
    first = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluate_main(args) == 0
    second = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert first == second and len(first["splits"]) == 2
    assert -1 <= first["level_consistency"]["mean_srcc"] <= 1
    assert first["level_consistency"]["pseudo_mos_mean_srcc"] > 0.8  # the labels fall as the level rises
    assert (tmp_path / "eval" / "scatter.png").is_file()
    # prediction on files, with one unreadable
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(("coffee", "rocket")):
        source = Path(_sample(name))
        (images / f"{i}{source.suffix}").write_bytes(source.read_bytes())
    (images / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    capsys.readouterr()
    assert predict_main(["--checkpoint", best, str(images), "--out", str(tmp_path / "scores.csv"), "--workers", "0"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert [Path(r["file"]).stem for r in rows] == ["0", "1"]
    assert all(r["weights_sha256"] == checkpoint.file_sha256(Path(best)) and r["model"] == "dri_iqa_tiny" for r in rows)
    captured = capsys.readouterr()
    assert "higher is better" in captured.out and "broken.jpg" in captured.err


def _sample(name: str) -> str:
    from degrade.samples import sample_path

    return str(sample_path(name))


def test_refuses_an_existing_run_without_resume(shards, tmp_path):
    cfg = _cfg(shards, tmp_path / "r", ["--stage1.steps", "2"])
    train(cfg, "1")
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, "1")
    assert train(cfg, "1", resume=True)["stage1"]["steps"] == 2


def test_stage_two_applies_model_overrides_on_top_of_its_init(shards, stage1_model, tmp_path):
    """model.overrides change what stage 2 trains from its init (here: what the predictor reads), and
    the saved model says so; an init of another variant than model.name is refused before any work."""
    cfg = _cfg(shards, tmp_path / "m", ["--stage2.init", str(stage1_model), "--stage2.steps", "2",
                                        "--model.overrides.predictor_input", "mscn"])
    best = train(cfg, "2")["stage2"]["best"]
    model, info = checkpoint.load_model(best)
    assert info["model_overrides"] == {"predictor_input": "mscn"} and model.config.predictor_input == "mscn"
    again = _cfg(shards, tmp_path / "a", ["--stage2.init", best, "--stage2.steps", "2"])  # silent on it
    train(again, "2")
    for saved in ("best.pt", "last.pt"):  # both rebuild the model that trained: the init's setting kept
        assert checkpoint.load_model(tmp_path / "a" / "stage2" / saved)[0].config.predictor_input == "mscn"
    other = _cfg(shards, tmp_path / "o", ["--stage2.init", str(stage1_model), "--model.name", "dri_iqa_base"])
    with pytest.raises(ConfigError, match="a dri_iqa_tiny model, but model.name is dri_iqa_base"):
        train(other, "2")
    assert not (tmp_path / "o" / "stage2").exists()


def test_the_linear_head_is_fitted_on_a_stage_two_model(shards, stage1_model, tmp_path, capsys):
    """--stage head builds the head's own shards (content stage 1 did not see), fits the head of the stage-2
    model to their pseudo-labels, scores their held-out side with it and saves a model that scores with it;
    the same command gives the same head; no stage-2 model, no fit."""
    extra = ["--stage2.init", str(stage1_model), "--stage2.steps", "2", "--head.images", "24", "--head.batch", "8",
             "--head.path", str(tmp_path / "head-shards"), "--head.groups", "12", "--head.source", "samples,synthetic:40",
             "--shards.per_shard", "6", "--shards.size", "128"]
    with pytest.raises(ConfigError, match="--head.init"):
        train(_cfg(shards, tmp_path / "none", extra), "head")
    assert train(_cfg(shards, tmp_path / "h", extra), "2")["stage2"]["steps"] == 2
    capsys.readouterr()
    assert train_main([*sum(overrides(shards, tmp_path / "h", [*extra, "--stage", "head"]).items(), ())]) == 0
    assert "model with the linear head" in capsys.readouterr().out
    results = json.loads((tmp_path / "h" / "results.json").read_text())
    assert results["stage2"]["steps"] == 2  # the earlier command's results stay beside the head's
    results = results["head"]
    manifest = json.loads((tmp_path / "head-shards" / "_meta" / "manifest.json").read_text())
    assert manifest["groups"] == 12
    assert results["fit"]["images"] == 24 and results["fit"]["unseen"] == "whole sources left out" and results["held_out_images"] > 5 and "srcc" in results["held_out"]
    model, info = checkpoint.load_model(results["model"])
    assert model.has_head and info["model_overrides"] == {"score_head": "linear"} and info["head"]["alpha"] > 0
    with torch.no_grad():
        out = model(torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)), return_all=True)
    assert not torch.equal(out["score"], out["predictor_score"])
    again = train(_cfg(shards, tmp_path / "h2", [*extra, "--head.init", str(tmp_path / "h" / "stage2" / "best.pt")]),
                  "head")["head"]
    refit = checkpoint.load_model(again["model"])[0]
    assert all(torch.equal(v, refit.state_dict()[k]) for k, v in model.state_dict().items())


def test_stage_two_on_a_native_dataset(shards, tmp_path, capsys):
    root = layouts.kadid(tmp_path / "kadid", refs=4, types=3, levels=2)
    cfg = _cfg(shards, tmp_path / "native", ["--stage2.data", "kadid10k", "--stage2.root", str(root),
                                             "--stage2.splits", "2", "--head.fit", "true"])
    results = train(cfg, "all")
    assert results["stage2"]["held_out_images"] == 6 and "kadid10k" in results["stage2"]["data"]
    # the linear head learns pseudo-MOS of group shards: with human labels it is left out, and the run says so
    assert "head" not in results and "linear head: not fitted" in capsys.readouterr().err
    out = tmp_path / "ev"
    assert evaluate_main(["--checkpoint", results["stage2"]["best"], "--dataset", "kadid10k", "--root", str(root),
                          "--splits", "3", "--workers", "0", "--out", str(out)]) == 0
    evaluation = json.loads((out / "results.json").read_text())
    assert len(evaluation["splits"]) == 3 and set(evaluation["median"]) >= {"srcc", "plcc", "krcc", "rmse"}
    assert set(evaluation["per_distortion_median"]) <= {"gaussian_blur", "lens_blur", "motion_blur"}
    tid = layouts.tid2013(tmp_path / "tid", refs=2)
    assert evaluate_main(["--checkpoint", results["stage2"]["best"], "--test-on", "tid2013", "--root", str(tid),
                          "--train-on", "kadid10k", "--workers", "0", "--out", str(out)]) == 0
    cross = json.loads((out / "results.json").read_text())
    assert cross["mode"] == "cross-dataset" and cross["images"] == 240 and cross["train_on"] == "kadid10k"


def _state(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(path)["model"]


def test_resume_after_sigterm_ends_where_an_uninterrupted_run_would(shards, tmp_path):
    """SIGTERM to the run's whole process group, DataLoader workers included, as torchrun's launcher
    and a terminal's Ctrl-C deliver it: the run still saves and stops, then resumes exactly."""
    steps = ["--stage1.steps", "10", "--checkpoint_every", "2", "--workers", "2"]
    straight = tmp_path / "straight"
    assert train_main([*sum(overrides(shards, straight, steps).items(), ()), "--stage", "1"]) == 0
    interrupted = tmp_path / "interrupted"
    command = [sys.executable, "-m", "dri.train", *sum(overrides(shards, interrupted, steps).items(), ()), "--stage", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    last = interrupted / "stage1" / "last.pt"
    deadline = time.time() + 120
    while not last.is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    stopped_at = checkpoint.load(last)["loop"]["step"]
    assert process.returncode == 130 and "--resume" in err and 2 <= stopped_at < 10, err[-2000:]
    assert train_main([*sum(overrides(shards, interrupted, steps).items(), ()), "--stage", "1", "--resume"]) == 0
    a, b = _state(straight / "stage1" / "model.pt"), _state(interrupted / "stage1" / "model.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_ddp_with_two_processes(shards, tmp_path):
    """The whole run under torchrun, the head stage included: with no held-out check during stage 2, rank 0
    writes best.pt after the loop, and the other rank must not look for it before then."""
    run = tmp_path / "ddp"
    head = ["--stage2.eval_every", "0", "--head.fit", "true", "--head.groups", "12", "--head.images", "24",
            "--head.batch", "8", "--head.path", str(tmp_path / "head-shards")]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29500 + os.getpid() % 1000), "-m", "dri.train", *sum(overrides(shards, run, head).items(), ())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["world_size"] == 2
    assert results["stage1"]["checksums_agree"] and results["stage2"]["checksums_agree"]
    assert results["head"]["fit"]["images"] > 0 and (run / "head" / "model.pt").is_file()
    rows = (run / "stage1" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3, 4]  # one process writes the logs
