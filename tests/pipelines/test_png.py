"""The shard PNG writer: lossless, readable by OpenCV and PIL, its row filters, its arguments."""
from __future__ import annotations

import io
import zlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from degrade.io import to_uint8
from pipelines import png
from pipelines.build import encode_png
from tests.conftest import photo


@pytest.mark.parametrize("filters", ["fast", "up", "sub", "none"])
@pytest.mark.parametrize("level", [0, 3])
def test_png_encoding_is_lossless_and_readable_by_opencv_and_pil(filters, level):
    image = torch.from_numpy(to_uint8(photo("coffee", 48))[:, :37]).permute(2, 0, 1).contiguous()  # odd width
    data = encode_png(image, level, filters)
    rgb = image.permute(1, 2, 0).numpy()
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, ::-1], rgb)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.mode == "RGB" and np.array_equal(np.asarray(decoded), rgb)


def test_png_fast_filters_pick_the_smallest_residuals_per_row():
    image = np.zeros((3, 4, 3), np.uint8)
    image[0] = 200  # flat: sub leaves zeros after the first pixel
    image[1] = 200  # equal to the row above: up leaves zeros everywhere
    image[2] = np.roll(np.eye(3, dtype=np.uint8) * 5, 1, axis=0).tolist() + [[5, 0, 0]]  # small, changing: none
    data = png.encode_png(image, 0, "fast")
    raw = zlib.decompress(data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8])
    assert [raw[r * 13] for r in range(3)] == [1, 2, 0]  # PNG filter types: sub, up, none


def test_png_encoding_refuses_bad_arguments():
    with pytest.raises(ValueError, match="unknown PNG filters 'lzw'"):
        png.encode_png(np.zeros((8, 8, 3), np.uint8), 3, "lzw")
    with pytest.raises(ValueError, match="level must be 0-9"):
        png.encode_png(np.zeros((8, 8, 3), np.uint8), 10)
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(np.zeros((8, 8, 3), np.float32))


def test_png_bytes_do_not_depend_on_which_zlib_is_installed(monkeypatch):
    """zlib-ng is an optional accelerator: where it is installed the files must equal zlib's."""
    zlib_ng = pytest.importorskip("zlib_ng.zlib_ng")
    images = [to_uint8(photo(name, 64)) for name in ("coffee", "rocket", "astronaut")]
    files = {}
    for name, module in (("zlib", zlib), ("zlib-ng", zlib_ng)):
        monkeypatch.setattr(png, "_deflate", module)
        files[name] = [png.encode_png(image) for image in images]
    assert files["zlib"] == files["zlib-ng"]
