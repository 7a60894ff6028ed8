"""IQA readers against faithful copies of each native layout."""
from __future__ import annotations

import csv
import shutil

import pytest
import scipy.io

from datasets import iqa
from datasets.iqa import DatasetError
from datasets.iqa.__main__ import main as iqa_main
from tests.datasets import layouts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every layout, built once per module (they are read-only in the tests that share them)."""
    base = tmp_path_factory.mktemp("iqa")
    roots = {}
    for name, make in [("kadid10k", layouts.kadid), ("koniq10k", layouts.koniq), ("live", layouts.live),
                       ("csiq", layouts.csiq), ("tid2013", layouts.tid2013), ("livec", layouts.livec),
                       ("spaq", layouts.spaq), ("pipal", layouts.pipal), ("csv", layouts.generic)]:
        root = base / name
        root.mkdir()
        make(root)
        roots[name] = root
    return roots


def load(built, name, **options):
    if name == "csv":
        options = {"low": 0, "high": 10, **options}
    return iqa.load(name, built[name], **options)


# sha256-ordered contents: independent of machine, library and Python version
PINNED_TEST_SPLIT = ["ref00", "ref02", "ref04", "ref08", "ref18", "ref23"]


def test_names():
    assert iqa.names() == ["koniq10k", "kadid10k", "live", "csiq", "tid2013", "livec", "spaq", "pipal", "csv"]


# --- each reader -------------------------------------------------------------------------


def test_kadid(built):
    t = load(built, "kadid10k")
    assert len(t) == 3 * 25 * 5 and len(t.contents()) == 3
    r = next(r for r in t if r.image.name == "I02_10_04.png")
    assert r.content == "I02" and r.ref.name == "I02.png" and r.distortion == "jpeg" and r.level == 4
    assert r.quality == pytest.approx((r.score - 1) / 4)  # dmos is higher-is-better on 1..5
    assert max(t, key=lambda r: r.score).level == 1


def test_kadid_root_variants(built, tmp_path):
    outer = tmp_path / "download"
    shutil.copytree(built["kadid10k"], outer)
    assert len(iqa.load("kadid10k", outer)) == 375
    assert len(iqa.load("kadid10k", outer / "kadid10k")) == 375


def test_koniq_with_official_split(built):
    t = load(built, "koniq10k")
    assert len(t) == 30 and t.has_official_split
    assert t[0].ref is None and t[0].content == t[0].image.stem
    assert t[0].quality == pytest.approx(0.025) and t[-1].quality == pytest.approx(0.825)
    (split,) = t.splits()
    assert (len(split.train), len(split.val), len(split.test)) == (21, 3, 6)
    random_splits = t.splits(n=3, seed=1, official=False)
    assert len(random_splits) == 3 and len(random_splits[0].train) == 24
    z = load(built, "koniq10k", score="MOS_zscore")
    assert z.scale.high == 100 and z[0].score == pytest.approx(2.5)


def test_live(built):
    t = load(built, "live")
    assert len(t) == 982 - 197  # entries with orgs == 1 are reference copies
    assert {r.distortion for r in t} == {"jp2k", "jpeg", "wn", "gblur", "fastfading"}
    assert len(t.contents()) == 29 and all(r.ref.parent.name == "refimgs" for r in t)
    best = min(t, key=lambda r: r.score)
    assert best.score == -2.5 and best.quality == 1.0  # DMOS: lower is better, overshoot clipped
    worst = max(t, key=lambda r: r.score)
    assert worst.score == 103.0 and worst.quality == 0.0
    assert next(r for r in t if r.image.parent.name == "jpeg").image.name == "img1.bmp"


def test_live_original_dmos_file(built, tmp_path):
    root = tmp_path / "live"
    layouts.live(root, realigned=False)
    assert len(iqa.load("live", root)) == 785


@pytest.mark.parametrize("workbook", [True, False])
def test_csiq(tmp_path, workbook):
    layouts.csiq(tmp_path, workbook=workbook)
    t = iqa.load("csiq", tmp_path)
    assert len(t) == 3 * (5 * 4 + 2 * 4) - 0  # noise/jpeg/jpeg2000/blur: 5 levels; fnoise/contrast: 4
    assert sorted(t.contents()) == ["1600", "aerial_city", "bridge"]
    r = next(r for r in t if r.image.name == "1600.AWGN.3.png")
    assert r.distortion == "awgn" and r.level == 3 and r.ref.name == "1600.png"
    assert r.quality == pytest.approx(1 - r.score)  # DMOS on 0..1, lower is better
    assert not any(r.image.name.endswith(".9.png") for r in t)  # unrated files are not records


def test_tid2013_mixed_case(built):
    t = load(built, "tid2013")
    assert len(t) == 3 * 24 * 5
    assert all(r.image.is_file() and r.ref.is_file() for r in t)
    r = next(r for r in t if r.image.name.lower() == "i03_10_2.bmp")
    assert r.ref.name == "i03.bmp" and r.distortion == "jpeg" and r.level == 2 and r.content == "I03"
    assert r.quality == pytest.approx(r.score / 9)


def test_livec_drops_practice_images(built):
    t = load(built, "livec")
    assert len(t) == 20 and not any(r.image.name.startswith("t") for r in t)
    assert t[0].score == pytest.approx(3.0) and t[-1].quality == pytest.approx(0.92)


def test_spaq(built):
    t = load(built, "spaq")
    assert len(t) == 12 and t[0].image.name == "00001.jpg" and t[-1].score == pytest.approx(90)


def test_pipal(built):
    t = load(built, "pipal")
    assert len(t) == 3 * 14 and len(t.contents()) == 3
    r = next(r for r in t if r.image.name == "A0002_03_01.bmp")
    assert r.ref.name == "A0002.bmp" and r.distortion == "group_03" and r.score == pytest.approx(1312)
    assert 0 < r.quality < 1


def test_generic_csv(built):
    t = load(built, "csv")
    assert len(t) == 12 and len(t.contents()) == 4
    assert t[0].ref.name == "r0.png" and t[0].quality == pytest.approx(0.2)
    flipped = load(built, "csv", higher_is_better=False)
    assert flipped[0].quality == pytest.approx(0.8)
    with pytest.raises(ValueError, match="score range"):
        iqa.load("csv", built["csv"])


# --- splits --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kadid10k", "live", "tid2013", "pipal", "csv"])
def test_splits_never_share_content(built, name):
    t = load(built, name)
    for seed in range(25):
        for split in t.splits(n=3, seed=seed, train=0.6, val=0.2 if name != "pipal" else 0.0):
            sides = [set(split.train.contents()), set(split.val.contents()), set(split.test.contents())]
            assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
            assert len(split.train) + len(split.val) + len(split.test) == len(t)
            assert len(split.test) > 0 and len(split.train) > 0


def test_splits_are_deterministic_and_seeded(built):
    t = load(built, "live")
    a = [s.train.contents() for s in t.splits(n=10, seed=3)]
    assert a == [s.train.contents() for s in t.splits(n=10, seed=3)]
    assert a != [s.train.contents() for s in t.splits(n=10, seed=4)]
    assert len({tuple(x) for x in a}) == 10  # the ten repeats differ
    assert all(len(x) == 23 for x in a)  # 80% of 29 references
    # pinned: the same seed gives the same split on every machine and Python version
    assert t.splits(n=1, seed=0)[0].test.contents() == PINNED_TEST_SPLIT


def test_folds_map_each_content_to_its_side(built):
    t = load(built, "kadid10k")
    folds = t.folds(n=4, seed=0, train=0.67)
    assert set(folds) == {"I01", "I02", "I03"} and all(len(v) == 4 for v in folds.values())
    assert all(sum(sides[k] == "test" for sides in folds.values()) == 1 for k in range(4))


# --- errors --------------------------------------------------------------------------------


def test_missing_label_file_names_it(tmp_path):
    layouts.tid2013(tmp_path)
    (tmp_path / "mos_with_names.txt").unlink()
    with pytest.raises(DatasetError, match="mos_with_names.txt: missing label file"):
        iqa.load("tid2013", tmp_path)


def test_missing_column_names_file_and_column(tmp_path):
    base = layouts.kadid(tmp_path, refs=1, types=1)
    text = (base / "dmos.csv").read_text().replace("dmos,var", "score,var", 1)
    (base / "dmos.csv").write_text(text)
    with pytest.raises(DatasetError, match=r"dmos.csv: missing column\(s\) \['dmos'\]"):
        iqa.load("kadid10k", tmp_path)


def test_unreadable_row_strict_and_lenient(tmp_path):
    layouts.tid2013(tmp_path, refs=2)
    lines = (tmp_path / "mos_with_names.txt").read_text().splitlines()
    lines[4] = "five i01_01_5.bmp"
    (tmp_path / "mos_with_names.txt").write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"mos_with_names.txt:5: unparsable row"):
        iqa.load("tid2013", tmp_path)
    t = iqa.load("tid2013", tmp_path, strict=False)
    assert len(t) == 2 * 24 * 5 - 1 and t.problems[0].line == 5


def test_missing_images_strict_and_lenient(tmp_path):
    layouts.koniq(tmp_path, n=10)
    (tmp_path / "1024x768" / "1000003.jpg").unlink()
    with pytest.raises(DatasetError, match="1000003.jpg does not exist") as error:
        iqa.load("koniq10k", tmp_path)
    assert "strict=False" in str(error.value)
    t = iqa.load("koniq10k", tmp_path, strict=False)
    assert len(t) == 9 and t.problems[0].kind == "missing_image"


def test_duplicate_rows(tmp_path):
    root = layouts.generic(tmp_path)
    with open(root / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerow(["dist/r0_0.png", "5", "refs/r0.png"])
    with pytest.raises(DatasetError, match="listed more than once"):
        iqa.load("csv", root, low=0, high=10)
    assert len(iqa.load("csv", root, low=0, high=10, strict=False)) == 12


def test_live_wrong_variable_and_length(tmp_path):
    layouts.live(tmp_path)
    scipy.io.savemat(tmp_path / "refnames_all.mat", {"names": [[1]]})
    with pytest.raises(DatasetError, match="refnames_all.mat: missing variable 'refnames_all'"):
        iqa.load("live", tmp_path)
    scipy.io.savemat(tmp_path / "refnames_all.mat", {"refnames_all": [["a"] * 10]})
    with pytest.raises(DatasetError, match="has 10 entries, expected 982"):
        iqa.load("live", tmp_path)


def test_csiq_workbook_without_header(tmp_path):
    layouts.csiq(tmp_path)
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "all_by_image"
    book.active.append(["nothing", "here"])
    book.save(tmp_path / "csiq.DMOS.xlsx")
    with pytest.raises(DatasetError, match="no header row with columns"):
        iqa.load("csiq", tmp_path)


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(KeyError, match="Did you mean kadid10k"):
        iqa.load("kadid", tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        iqa.load("live", tmp_path / "nope")


def test_loading_does_not_decode_images(built, monkeypatch):
    import cv2

    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded at load time")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    monkeypatch.setattr(cv2, "imread", refuse)
    assert len(load(built, "kadid10k")) == 375


# --- inspect -------------------------------------------------------------------------------


def test_inspect_reports(built, capsys):
    assert iqa_main(["inspect", "live", str(built["live"])]) == 0
    out = capsys.readouterr().out
    assert "records      785" in out and "lower is better" in out and "fastfading" in out
    assert iqa_main(["inspect", "koniq10k", str(built["koniq10k"])]) == 0
    assert "official split" in capsys.readouterr().out


def test_inspect_lists_problems_and_fails_when_unusable(tmp_path, capsys):
    layouts.spaq(tmp_path)
    (tmp_path / "TestImage" / "00002.jpg").unlink()
    (tmp_path / "TestImage" / "00003.jpg").write_bytes(b"\xff\xd8 truncated")
    assert iqa_main(["inspect", "spaq", str(tmp_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "problems     1" in out and "00002.jpg does not exist" in out
    assert "undecodable  1" in out and "00003.jpg" in out
    shutil.rmtree(tmp_path / "Annotations")
    assert iqa_main(["inspect", "spaq", str(tmp_path)]) == 1
    assert "missing label workbook" in capsys.readouterr().err
