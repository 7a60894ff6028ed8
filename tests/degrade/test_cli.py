"""The command lines: list, info, apply (with replay) and the gallery."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2

import degrade
from degrade.__main__ import main
from degrade.gallery import main as gallery_main
from degrade.io import read_image, write_image
from tests.conftest import photo


def test_list_shows_every_distortion(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in degrade.list_distortions():
        assert name in out
    assert main(["list", "--group", "noise", "--table", "kadid-exact"]) == 0
    assert "gaussian_blur" not in capsys.readouterr().out


def test_info(capsys):
    assert main(["info", "jpeg"]) == 0
    out = capsys.readouterr().out
    assert "43, 36, 24, 7, 4" in out and "libjpeg" in out and "KADID-10k #10" in out


def test_apply_prints_a_plan_that_replays_exactly(tmp_path, capsys):
    src = tmp_path / "in.png"
    write_image(src, photo("astronaut", 64))
    assert main(["apply", str(src), str(tmp_path / "out.png"), "--preset", "arniqa", "--seed", "7"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert main(["apply", str(src), str(tmp_path / "again.png"), "--plan", str(tmp_path / "plan.json")]) == 0
    assert (tmp_path / "out.png").read_bytes() == (tmp_path / "again.png").read_bytes()


def test_apply_one_distortion(tmp_path, capsys):
    src = tmp_path / "in.png"
    write_image(src, photo("coffee", 48))
    assert main(["apply", str(src), str(tmp_path / "out.png"), "--name", "jpeg", "--level", "4"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["steps"][0]["params"] == {"quality": 7}
    assert read_image(tmp_path / "out.png").shape == (3, 48, 48)


def test_errors_exit_non_zero_with_a_message(tmp_path, capsys):
    src = tmp_path / "in.png"
    write_image(src, photo("coffee", 16))
    assert main(["apply", str(src), str(tmp_path / "o.png"), "--name", "jpg"]) == 2
    assert "Did you mean jpeg" in capsys.readouterr().err
    assert main(["apply", str(tmp_path / "missing.png"), str(tmp_path / "o.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "degrade", "list"], capture_output=True, text=True, check=True)
    assert "contrast_change" in result.stdout


def test_gallery_writes_a_labelled_sheet(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert gallery_main(["--out", str(out), "--size", "48", "--names", "jpeg", "gaussian_blur"]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] == 230 + 6 * 48 and sheet.shape[0] == 30 + 2 * (48 + 18)
    assert gallery_main(["--out", str(out), "--names", "nope"]) == 2
