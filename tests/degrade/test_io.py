"""Image files to tensors and back."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from degrade.io import decode_image, encode_png, read_image, to_tensor, write_image
from tests.conftest import photo


def test_png_round_trip_is_lossless(tmp_path):
    x = torch.round(photo("coffee", 40) * 255) / 255
    write_image(tmp_path / "a.png", x)
    assert torch.equal(read_image(tmp_path / "a.png"), x)
    assert torch.equal(decode_image(encode_png(x)), x)


def test_grey_alpha_and_16_bit_inputs(tmp_path):
    grey = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    t = read_image(tmp_path / "grey.png")
    assert t.shape == (3, 8, 8) and torch.equal(t[0], t[2])
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 255  # red in BGRA
    rgba[..., 3] = 7
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    t = read_image(tmp_path / "rgba.png")
    assert t.shape == (3, 4, 4) and float(t[0].min()) == 1.0 and float(t[1:].max()) == 0.0
    deep = np.full((4, 4, 3), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert float(read_image(tmp_path / "deep.png").min()) == 1.0


@pytest.mark.parametrize("content,match", [(b"", "empty file"), (b"not an image at all", "not a decodable image")])
def test_bad_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        read_image(path)
    assert "broken.png" in str(info.value)


def test_truncated_file_is_reported(tmp_path):
    good = encode_png(photo("chelsea", 64))
    path = tmp_path / "cut.png"
    path.write_bytes(good[: len(good) // 3])
    with pytest.raises(ValueError, match="cut.png"):
        read_image(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_image("does/not/exist.png")


def test_to_tensor_shapes():
    assert to_tensor(np.zeros((5, 6), np.uint8)).shape == (3, 5, 6)
    with pytest.raises(ValueError, match="expected an"):
        to_tensor(np.zeros((5, 6, 2), np.uint8))
