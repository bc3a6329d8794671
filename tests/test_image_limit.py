"""The size limit for opening photos: set from memory (a 200 MP phone photo opens where memory allows it),
never Pillow's decompression-bomb default, with a message that says how to go beyond it."""

import numpy as np
import pytest
from PIL import Image

from lensblur.errors import InputError
from lensblur.io import image as image_io
from lensblur.io import read_image


def test_the_limit_follows_memory_not_pillow(monkeypatch):
    monkeypatch.delenv(image_io.MAX_PIXELS_ENV, raising=False)
    monkeypatch.setattr(image_io, "_memory_bytes", lambda: 4 * 1024 ** 3)
    assert image_io.max_pixels() == 4 * 1024 ** 3 // 16 > 200_000_000 > 2 * Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(image_io, "_memory_bytes", lambda: 512 * 1024 ** 2)   # a small machine: Pillow's floor
    assert image_io.max_pixels() == 1024 ** 3 // 4 // 3


def test_pillow_default_does_not_refuse_and_the_limit_names_count_limit_and_fix(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)       # Pillow alone would refuse 4800 pixels
    assert read_image(path).shape == (60, 80, 3)
    assert Image.MAX_IMAGE_PIXELS == 100                      # and its setting is left as it was
    monkeypatch.setenv(image_io.MAX_PIXELS_ENV, "4000")
    with pytest.raises(InputError) as info:
        read_image(path)
    text = str(info.value)
    assert "80x60 = 4,800 pixels" in text and "4,000 pixels" in text and "LENSBLUR_MAX_PIXELS=4800" in text
    monkeypatch.setenv(image_io.MAX_PIXELS_ENV, "lots")
    with pytest.raises(InputError, match="positive number of pixels"):
        read_image(path)
