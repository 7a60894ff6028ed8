"""Pristine sources: a folder with good images and every kind of bad file, the samples, crops."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from datasets.sources import FolderSource, SampleSource, crop_boxes, decode_checked, open_source, sample_crops
from degrade.samples import SAMPLE_PHOTOS


def pixels(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "a.png"), pixels(40, 50, 1))
    cv2.imwrite(str(tmp_path / "B.JPG"), pixels(40, 40, 2))
    cv2.imwrite(str(tmp_path / "nested" / "c.bmp"), pixels(48, 40, 3))
    cv2.imwrite(str(tmp_path / "nested" / "deeper" / "d.webp"), pixels(40, 44, 4))
    cv2.imwrite(str(tmp_path / "e.tiff"), pixels(40, 40, 5))
    cv2.imwrite(str(tmp_path / "grey.png"), pixels(40, 40, 6)[:, :, 0])
    rgba = np.dstack([pixels(40, 40, 7), np.full((40, 40), 9, np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    cv2.imwrite(str(tmp_path / "deep.png"), (pixels(40, 40, 8).astype(np.uint16) * 257))
    rotated = Image.fromarray(pixels(40, 64, 9))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    rotated.save(tmp_path / "exif.jpg", exif=exif, quality=95)
    # bad files
    good_jpeg = cv2.imencode(".jpg", pixels(40, 40, 10))[1].tobytes()
    (tmp_path / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("these are not pixels")
    (tmp_path / "png_named.jpg").write_bytes(cv2.imencode(".png", pixels(40, 40, 11))[1].tobytes())
    cv2.imwrite(str(tmp_path / "small.png"), pixels(20, 60, 12))
    (tmp_path / "readme.txt").write_text("ignored: not an image suffix")
    (tmp_path / ".hidden.png").write_bytes(b"")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    cv2.imwrite(str(outside), pixels(40, 40, 13))
    (tmp_path / "link.png").symlink_to(outside)
    return tmp_path


def test_folder_scan_is_recursive_sorted_and_filtered(folder):
    source = FolderSource(folder, min_side=32)
    ids = [item.id for item in source]
    assert ids == sorted(ids, key=lambda i: i)
    assert {"a", "B", "nested/c", "nested/deeper/d", "e", "grey", "alpha", "deep", "exif"} <= set(ids)
    assert ".hidden" not in ids and "readme" not in ids
    assert "link" not in ids  # symbolic link leading out of the folder
    assert FolderSource(folder).items() == source.items()


def test_good_images_are_normalised(folder):
    source = FolderSource(folder, min_side=32)
    by_id = {item.id: item for item in source}
    grey = source.load(by_id["grey"])
    assert grey.dtype == torch.uint8 and grey.shape == (3, 40, 40) and torch.equal(grey[0], grey[1])
    alpha = source.load(by_id["alpha"])
    assert alpha.shape == (3, 40, 40)
    deep = source.load(by_id["deep"])
    assert np.array_equal(deep.permute(1, 2, 0).flip(-1).numpy(), pixels(40, 40, 8))  # 16-bit scaled to 8
    assert source.load(by_id["exif"]).shape == (3, 64, 40)  # EXIF orientation applied
    assert source.load(by_id["png_named"]) is not None  # content decides, not the suffix


def test_bad_files_are_quarantined_with_reasons(folder):
    source = FolderSource(folder, min_side=32)
    loaded = {item.id: source.load(item) for item in source}
    assert all(loaded[i] is None for i in ("truncated", "empty", "notes", "small"))
    reasons = {r.path.rsplit("/", 1)[-1]: (r.kind, r.reason) for r in source.rejected}
    assert reasons["truncated.jpg"][0] == "unreadable" and "truncated" in reasons["truncated.jpg"][1]
    assert reasons["empty.png"] == ("unreadable", "empty file")
    assert "not a decodable image" in reasons["notes.png"][1]
    assert reasons["small.png"] == ("too_small", "60x20 is smaller than the 32 px crop")
    assert {r.path.rsplit("/", 1)[-1] for r in source.quarantine} == {"truncated.jpg", "empty.png", "notes.png"}
    # each file is recorded once however often it is asked for
    for item in source:
        source.load(item)
    assert len(source.rejected) == 4


def test_decode_checked_catches_truncation_that_some_decoders_forgive():
    data = cv2.imencode(".jpg", pixels(64, 64))[1].tobytes()
    assert decode_checked(data, "ok.jpg").shape == (3, 64, 64)
    with pytest.raises(ValueError, match="truncated"):
        decode_checked(data[:-2], "cut.jpg")
    png = cv2.imencode(".png", pixels(16, 16))[1].tobytes()
    with pytest.raises(ValueError, match="cut.png"):
        decode_checked(png[:-20], "cut.png")


def test_missing_folder():
    with pytest.raises(FileNotFoundError, match="not a folder of images"):
        open_source("no/such/folder")


def test_samples_source():
    source = open_source("samples", min_side=256)
    assert isinstance(source, SampleSource)
    assert [item.id for item in source] == list(SAMPLE_PHOTOS)
    images = [source.load(item) for item in source]
    assert all(im is not None and im.dtype == torch.uint8 and min(im.shape[1:]) >= 256 for im in images)
    assert source.rejected == []


def test_crops_are_reproducible_from_seed_and_image_id():
    image = torch.arange(3 * 60 * 80).view(3, 60, 80)
    a = crop_boxes(60, 80, 32, 5, seed=1, image_id="x")
    assert a == crop_boxes(60, 80, 32, 5, seed=1, image_id="x")
    assert a != crop_boxes(60, 80, 32, 5, seed=2, image_id="x")
    assert a != crop_boxes(60, 80, 32, 5, seed=1, image_id="y")
    assert all(0 <= t <= 28 and 0 <= l <= 48 for t, l in a)
    crops = sample_crops(image, 32, 5, seed=1, image_id="x")
    assert all(c.shape == (3, 32, 32) for c in crops)
    assert torch.equal(crops[0], image[:, a[0][0] : a[0][0] + 32, a[0][1] : a[0][1] + 32])
    with pytest.raises(ValueError, match="does not fit"):
        crop_boxes(20, 80, 32, 1, seed=0, image_id="z")
