"""Pristine sources: a folder with good images and every kind of bad file, the samples, crops."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from datasets.content import Augment, View, draw_view
from datasets.decoding import ImageError, check_file, decode, probe, read
from datasets.sources import FolderSource, MixedSource, SampleSource, SyntheticSource, open_source
from datasets.synthetic import render
from degrade.samples import SAMPLE_PHOTOS
from degrade.seeding import generator


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
    assert ids == sorted(ids)
    assert {"a.png", "B.JPG", "nested/c.bmp", "nested/deeper/d.webp", "e.tiff", "grey.png", "alpha.png", "deep.png",
            "exif.jpg"} <= set(ids)
    assert ".hidden.png" not in ids and "readme.txt" not in ids
    assert "link.png" not in ids  # symbolic link leading out of the folder
    assert FolderSource(folder).items() == source.items()
    skipped = {Path(r.path).name: r.reason for r in source.rejected if r.kind == "skipped"}
    assert skipped[".hidden.png"] == "hidden file" and "not an image suffix" in skipped["readme.txt"]
    assert "outside" in skipped["link.png"]


def test_same_stem_different_suffix_are_two_contents(tmp_path):
    cv2.imwrite(str(tmp_path / "dup.jpg"), pixels(40, 40, 1))
    cv2.imwrite(str(tmp_path / "dup.png"), pixels(48, 40, 2))
    source = FolderSource(tmp_path)
    assert [item.id for item in source] == ["dup.jpg", "dup.png"]
    shapes = [tuple(source.load(item).shape) for item in source]
    assert shapes == [(3, 40, 40), (3, 48, 40)]


def test_dangling_links_loops_and_fifos_are_listed_not_read(tmp_path):
    cv2.imwrite(str(tmp_path / "good.png"), pixels(40, 40, 1))
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block forever
    source = FolderSource(tmp_path)
    assert [item.id for item in source] == ["good.png"]
    skipped = {Path(r.path).name: r.reason for r in source.rejected}
    assert "dangling" in skipped["dangling.png"] and "not a regular file" in skipped["pipe.png"]
    assert "loop" in skipped["loop.png"]


def test_good_images_are_normalised(folder):
    source = FolderSource(folder, min_side=32)
    by_id = {item.id: item for item in source}
    grey = source.load(by_id["grey.png"])
    assert grey.dtype == torch.uint8 and grey.shape == (3, 40, 40) and torch.equal(grey[0], grey[1])
    alpha = source.load(by_id["alpha.png"])
    assert alpha.shape == (3, 40, 40)
    deep = source.load(by_id["deep.png"])
    assert np.array_equal(deep.permute(1, 2, 0).flip(-1).numpy(), pixels(40, 40, 8))  # 16-bit scaled to 8
    assert source.load(by_id["exif.jpg"]).shape == (3, 64, 40)  # EXIF orientation applied
    assert source.load(by_id["png_named.jpg"]) is not None  # content decides, not the suffix


def test_bad_files_are_quarantined_with_reasons(folder):
    source = FolderSource(folder, min_side=32)
    loaded = {item.id: source.load(item) for item in source}
    assert all(loaded[i] is None for i in ("truncated.jpg", "empty.png", "notes.png", "small.png"))
    reasons = {r.path.rsplit("/", 1)[-1]: (r.kind, r.reason) for r in source.rejected if r.kind != "skipped"}
    assert reasons["truncated.jpg"][0] == "unreadable" and "truncated" in reasons["truncated.jpg"][1]
    assert reasons["empty.png"] == ("unreadable", "empty file")
    assert "not a decodable image" in reasons["notes.png"][1]
    assert reasons["small.png"] == ("too_small", "60x20 is smaller than the 32 px crop")
    assert {r.path.rsplit("/", 1)[-1] for r in source.quarantine} == {"truncated.jpg", "empty.png", "notes.png"}
    # each file is recorded once however often it is asked for
    before = len(source.rejected)
    for item in source:
        source.load(item)
    assert len(source.rejected) == before


def test_decode_catches_truncation_that_some_decoders_forgive():
    data = cv2.imencode(".jpg", pixels(64, 64))[1].tobytes()
    assert decode(data, "ok.jpg").shape == (3, 64, 64)
    with pytest.raises(ImageError, match="truncated"):
        decode(data[:-2], "cut.jpg")
    png = cv2.imencode(".png", pixels(16, 16))[1].tobytes()
    with pytest.raises(ImageError, match="cut.png"):
        decode(png[:-20], "cut.png")


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid PNG of ``width`` x ``height`` black pixels, written without ever holding them (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, row, parts = zlib.compressobj(9), b"\x00" * (1 + 3 * width), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    bomb = bomb_png(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 3 * 2**20  # a small file that would decode to 1.2 GB
    assert probe(bomb.read_bytes())[:2] == (20000, 20000)
    with pytest.raises(ImageError, match="400 megapixels, above the limit of 100"):
        read(bomb)
    small = bomb_png(tmp_path / "small.png", 300, 200)
    assert read(small).shape == (3, 200, 300)
    with pytest.raises(ImageError, match="above the limit"):
        read(small, max_pixels=50_000)
    with pytest.raises(ImageError, match="MiB, above the limit"):
        read(small, max_bytes=10)
    source = FolderSource(tmp_path)
    assert source.load(next(i for i in source if i.id == "bomb.png")) is None
    assert "megapixels" in source.quarantine[0].reason


def test_large_jpegs_decode_reduced_when_less_is_needed(tmp_path):
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), pixels(800, 1200))
    assert read(path).shape == (3, 800, 1200)
    assert read(path, max_side=300).shape == (3, 200, 300)  # 1/4: the long side stays >= 300
    assert read(path, max_side=700).shape == (3, 800, 1200)  # no power of two keeps 700


def test_paths_leaving_the_root_are_refused(tmp_path):
    inside, outside = tmp_path / "root", tmp_path / "elsewhere.png"
    inside.mkdir()
    cv2.imwrite(str(outside), pixels(20, 20))
    with pytest.raises(ImageError, match="outside"):
        check_file(inside / ".." / "elsewhere.png", inside)
    (inside / "link.png").symlink_to(outside)
    with pytest.raises(ImageError, match="outside"):
        read(inside / "link.png", root=inside)
    cv2.imwrite(str(inside / "ok.png"), pixels(20, 20))
    (inside / "alias.png").symlink_to(inside / "ok.png")  # a link inside the folder is fine
    assert read(inside / "alias.png", root=inside).shape == (3, 20, 20)


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


def test_textures_source():
    source = open_source("textures", min_side=256)
    assert [item.id for item in source] == ["brick", "cell", "grass", "gravel"]
    assert all(item.cite.startswith("textures/") for item in source)
    images = [source.load(item) for item in source]  # grey files, expanded to three equal channels
    assert all(im.shape[0] == 3 and torch.equal(im[0], im[2]) and min(im.shape[1:]) >= 256 for im in images)
    assert len(open_source("samples,textures")) == len(SAMPLE_PHOTOS) + 4


def test_synthetic_content_is_deterministic_and_seeded():
    a, b = render(0, 3, 64), render(0, 3, 64)
    assert a.dtype == torch.uint8 and a.shape == (3, 64, 64) and torch.equal(a, b)
    assert not torch.equal(a, render(0, 4, 64)) and not torch.equal(a, render(1, 3, 64))
    source = open_source("synthetic:5:7", min_side=64)
    assert isinstance(source, SyntheticSource) and len(source) == 5
    item = source.items()[2]
    assert item.id == "synthetic/7/000002" and item.path is None
    assert torch.equal(source.load(item), render(7, 2, 64))


def test_synthetic_content_looks_natural():
    """Power spectrum close to 1/f^2 (as photographs), edges, and more than a handful of colours."""
    image = render(0, 0, 256).float().mean(0)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image.numpy() - image.mean().item()))) ** 2
    yy, xx = np.indices(spectrum.shape) - 128
    radius = np.hypot(yy, xx).astype(int)
    power = np.bincount(radius.ravel(), spectrum.ravel()) / np.bincount(radius.ravel())
    f = np.arange(4, 100)
    slope = np.polyfit(np.log(f), np.log(power[4:100]), 1)[0]
    assert -3.2 < slope < -1.8  # the built-in photos: -1.8 (rocket) to -3.0 (astronaut)
    assert np.unique(render(0, 1, 128).reshape(3, -1).numpy(), axis=1).shape[1] > 1000


def test_mixtures_parse_weights_and_keep_parts_apart(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), pixels(40, 40, 1))
    mixed = open_source(f"samples=0.25,synthetic:10=0.5,{tmp_path}=0.25")
    assert isinstance(mixed, MixedSource) and mixed.weights() == [0.25, 0.5, 0.25]
    assert [sum(i.part == k for i in mixed) for k in range(3)] == [9, 10, 1]
    assert open_source("samples,synthetic:3").weights() == pytest.approx([9 / 12, 3 / 12])
    for bad, message in (("samples=1,synthetic", "every part or to none"), ("samples=x", "must be a number"),
                         ("synthetic:a", "integers"), ("samples,,synthetic", "empty part")):
        with pytest.raises(ValueError, match=message):
            open_source(bad)


def test_views_are_reproducible_and_recorded():
    image = torch.arange(3 * 60 * 80, dtype=torch.int64).remainder(256).to(torch.uint8).view(3, 60, 80)
    plain = draw_view(60, 80, 32, Augment(), generator("v", 1))
    assert plain == draw_view(60, 80, 32, Augment(), generator("v", 1))
    assert plain.to_dict().keys() == {"box"} and plain.window == 32
    crop = plain.apply(image)
    assert torch.equal(crop, image[:, plain.top : plain.top + 32, plain.left : plain.left + 32])
    every = Augment(min_scale=0.5, rot90=True, flip=True, permute=True)
    views = [draw_view(60, 80, 32, every, generator("v", i)) for i in range(40)]
    assert len({v.window for v in views}) > 5 and max(v.window for v in views) <= 60
    assert {v.rot90 for v in views} == {0, 1, 2, 3} and {v.flip for v in views} == {False, True}
    for v in views:
        assert View.from_dict(v.to_dict()) == v and v.apply(image).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="does not fit"):
        draw_view(20, 80, 32, Augment(), generator("v", 0))


def test_saturation_views_keep_luma_and_scale_colour():
    rgb = torch.stack([torch.full((16, 16), v) for v in (180, 120, 80)]).to(torch.uint8)  # no clipping at 1.5
    luma = lambda im: 0.299 * im[0].double() + 0.587 * im[1].double() + 0.114 * im[2].double()  # noqa: E731
    base = View(0, 0, 16, 16)
    vivid, muted = (View(0, 0, 16, 16, saturation=f).apply(rgb) for f in (1.5, 0.5))
    spread = lambda im: float(im.double().std(0).mean())  # noqa: E731
    assert spread(vivid) > spread(base.apply(rgb)) > spread(muted) > 0
    for image in (vivid, muted):  # colour moves along the line through the pixel's luma
        assert (luma(image) - luma(rgb)).abs().max() <= 0.5 + 1e-9  # rounding only
    # the factor is drawn only when asked for (other draws unchanged), log-uniform in [1/s, s], recorded
    off = [draw_view(60, 80, 32, Augment(rot90=True), generator("v", i)) for i in range(50)]
    on = [draw_view(60, 80, 32, Augment(rot90=True, saturation=2.0), generator("v", i)) for i in range(50)]
    assert [(v.top, v.left, v.rot90) for v in off] == [(v.top, v.left, v.rot90) for v in on]
    factors = [v.saturation for v in on]
    assert all(v.saturation == 1.0 for v in off) and 0.5 <= min(factors) < 0.8 and 1.25 < max(factors) <= 2.0
    assert sum(f < 1 for f in factors) > 10 and sum(f > 1 for f in factors) > 10
    for v in on:
        assert View.from_dict(v.to_dict()) == v
    assert draw_view(60, 80, 32, Augment(grey=1.0, saturation=2.0), generator("v", 0)).saturation == 1.0
    with pytest.raises(ValueError, match="saturation"):
        Augment(saturation=0.5)
