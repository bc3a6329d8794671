"""Image, disparity and depth files; atomic writes and output-path rules.

Reference decoders are Pillow, OpenCV and tifffile used directly; the sRGB curve is written out here.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from lensblur.errors import InputError, ShapeError
from lensblur.io import (
    DepthRange,
    atomic_path,
    check_output_path,
    depth_to_disparity,
    read_depth,
    read_depth_as_disparity,
    read_disparity,
    read_image,
    read_raw,
    write_image,
)
from lensblur.io.pfm import read_pfm, write_pfm


def iec_decode(v):
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def iec_encode(c):
    c = np.clip(np.asarray(c, dtype=np.float64), 0, 1)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0.0031308), 1 / 2.4) - 0.055)


@pytest.fixture
def codes8(rng):
    return rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


@pytest.fixture
def codes16(rng):
    return rng.integers(0, 65536, size=(12, 17, 3), dtype=np.uint16)


# --- images -------------------------------------------------------------------------------------------


def test_png8_decodes_with_srgb_curve_and_round_trips(tmp_path, codes8):
    src = tmp_path / "in.png"
    Image.fromarray(codes8).save(src)
    linear = read_image(src)
    assert linear.dtype == np.float32 and linear.shape == (12, 17, 3)
    np.testing.assert_allclose(linear, iec_decode(codes8 / 255.0), atol=1e-6)
    out = write_image(tmp_path / "out.png", linear)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), codes8)


def test_png16_read_and_write(tmp_path, codes16):
    src = tmp_path / "in16.png"
    cv2.imwrite(str(src), codes16[..., ::-1])  # OpenCV stores BGR
    linear = read_image(src)
    np.testing.assert_allclose(linear, iec_decode(codes16 / 65535.0), atol=1e-6)
    out = write_image(tmp_path / "out16.png", linear, bits=16)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, codes16)


def test_grey_png16_read_raw(tmp_path, codes16):
    src = tmp_path / "grey16.png"
    cv2.imwrite(str(src), codes16[..., 0])
    arr, full = read_raw(src)
    assert full == 65535.0
    np.testing.assert_array_equal(arr, codes16[..., 0])
    img = read_image(src)
    assert img.shape == (12, 17, 3)
    np.testing.assert_allclose(img[..., 0], img[..., 2], atol=1e-7)
    np.testing.assert_allclose(img[..., 1], iec_decode(codes16[..., 0] / 65535.0), atol=1e-6)


def test_write_16bit_encodes_linear_values(tmp_path):
    linear = np.linspace(0, 1, 5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
    out = write_image(tmp_path / "ramp.png", linear, bits=16)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(back, np.round(iec_encode(linear) * 65535).astype(np.uint16))


@pytest.mark.parametrize("bits", [8, 16])
def test_tiff_round_trip(tmp_path, bits, codes8, codes16):
    codes = codes8 if bits == 8 else codes16
    full = 2**bits - 1
    src = tmp_path / f"in{bits}.tif"
    tifffile.imwrite(src, codes, photometric="rgb")
    linear = read_image(src)
    np.testing.assert_allclose(linear, iec_decode(codes / full), atol=1e-6)
    out = write_image(tmp_path / f"out{bits}.tif", linear, bits=bits)
    back = tifffile.imread(out)
    assert back.dtype == codes.dtype
    np.testing.assert_array_equal(back, codes)


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_lossy_formats_round_trip_closely(tmp_path, suffix):
    y, x = np.mgrid[0:48, 0:64] / 64.0
    smooth = np.stack([0.5 + 0.4 * np.sin(3 * x), 0.5 + 0.4 * np.cos(2 * y), 0.3 + 0.5 * x * y], axis=-1)
    linear = iec_decode(smooth).astype(np.float32)
    out = write_image(tmp_path / f"out{suffix}", linear, quality=95)
    with Image.open(out) as im:
        assert im.format == {".jpg": "JPEG", ".webp": "WEBP"}[suffix]
        decoded = np.asarray(im.convert("RGB")) / 255.0
    back = read_image(out)
    np.testing.assert_allclose(back, iec_decode(decoded), atol=1e-6)  # reader == Pillow + sRGB curve
    assert np.abs(decoded - smooth).max() < 0.03  # and the file holds the image


def test_pfm_is_linear_and_keeps_hdr(tmp_path, rng):
    hdr = (rng.random((9, 11, 3)) * 4).astype(np.float32)
    out = write_image(tmp_path / "hdr.pfm", hdr)
    np.testing.assert_array_equal(read_image(out), hdr)


def test_pfm_layout_written_by_hand(tmp_path):
    """A PFM stores the bottom row first; a positive scale means big-endian."""
    top_first = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    path = tmp_path / "grey.pfm"
    path.write_bytes(b"Pf\n3 2\n1.0\n" + top_first[::-1].astype(">f4").tobytes())
    np.testing.assert_array_equal(read_pfm(path), top_first)
    write_pfm(tmp_path / "again.pfm", top_first)
    raw = (tmp_path / "again.pfm").read_bytes()
    assert raw.startswith(b"Pf\n3 2\n-1.0\n")
    np.testing.assert_array_equal(np.frombuffer(raw[-24:], "<f4").reshape(2, 3), top_first[::-1])


def test_exif_orientation_is_applied(tmp_path):
    """EXIF orientation 6 means: turn the stored pixels 90 degrees clockwise for display."""
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:, :16] = [255, 0, 0]  # left half red
    stored[:, 16:] = [0, 0, 255]  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=98)
    with Image.open(path) as im:
        assert im.getexif()[0x0112] == 6 and im.size == (32, 16)
    img = read_image(path)
    assert img.shape == (32, 16, 3)
    expected = iec_decode(np.rot90(stored, k=-1) / 255.0)  # clockwise: the left half goes to the top
    rows = np.r_[0:10, 22:32]  # away from the colour edge, where JPEG chroma subsampling smears
    assert np.abs(img - expected)[rows].max() < 0.05
    assert img[4, 8, 0] > 0.9 and img[-4, 8, 2] > 0.9


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_on_every_decoder_path(tmp_path, orientation):
    """The tifffile and 16-bit PNG (OpenCV) paths turn the pixels as Pillow's ``exif_transpose`` does."""
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 65536, (5, 7), dtype=np.uint16)  # not square, so every turn is visible
    exif = Image.Exif()
    exif[0x0112] = orientation
    reference_path = tmp_path / "reference.png"
    Image.fromarray(stored).save(reference_path, exif=exif)  # Pillow writes a 16-bit grey PNG with eXIf
    with Image.open(reference_path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im), dtype=np.uint16)

    png, full = read_raw(reference_path)  # a 16-bit PNG: decoded by OpenCV
    assert full == 65535.0
    np.testing.assert_array_equal(png, expected)

    tif_path = tmp_path / "stored.tif"
    tifffile.imwrite(tif_path, stored, extratags=[(0x0112, "H", 1, orientation, True)])
    with tifffile.TiffFile(tif_path) as tif:
        assert tif.pages[0].tags[0x0112].value == orientation
    tif, full = read_raw(tif_path)
    assert full == 65535.0
    np.testing.assert_array_equal(tif, expected)


def test_truncated_and_non_image_files(tmp_path, codes8):
    png = tmp_path / "full.png"
    Image.fromarray(codes8).save(png)
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])
    with pytest.raises(InputError, match=r"^image: expected a readable image file.*cut\.png"):
        read_image(cut)
    jpg = tmp_path / "full.jpg"
    Image.fromarray(codes8).save(jpg)
    cut_jpg = tmp_path / "cut.jpg"
    cut_jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])
    with pytest.raises(InputError, match="readable image file"):
        read_image(cut_jpg)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match="readable image file"):
        read_image(text)
    with pytest.raises(InputError, match="existing file"):
        read_image(tmp_path / "missing.png")


def test_write_image_argument_errors(tmp_path):
    img = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(InputError, match="^path: .*suffix"):
        write_image(tmp_path / "out.bmpx", img)
    with pytest.raises(InputError, match="^bits: "):
        write_image(tmp_path / "out.jpg", img, bits=16)
    with pytest.raises(InputError, match="^bits: "):
        write_image(tmp_path / "out.png", img, bits=12)
    assert list(tmp_path.iterdir()) == []


# --- atomic writes and output paths -----------------------------------------------------------------


def test_failing_writer_leaves_no_file_and_no_temp(tmp_path):
    target = tmp_path / "out.png"

    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_failing_writer_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def broken(tmp, suffix, encoded, *, bits, quality, extra=None):
        Path(tmp).write_bytes(b"partial")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr("lensblur.io.image._write_encoded", broken)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(target, np.zeros((4, 4, 3), np.float32))
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "map.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["map.npy"]


def test_check_output_path_refuses_the_input(tmp_path, monkeypatch):
    src = tmp_path / "photo.png"
    src.write_bytes(b"x")
    with pytest.raises(InputError, match="^output: expected a path different from the input.*force=True"):
        check_output_path(src, inputs=[src])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="different from the input"):
        check_output_path("./sub/../photo.png", inputs=["photo.png"])
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(InputError, match="different from the input"):
        check_output_path(link, inputs=[src])
    assert check_output_path(src, inputs=[src], force=True) == src
    assert check_output_path(tmp_path / "other.png", inputs=[src, None]) == tmp_path / "other.png"


def test_check_output_path_folder_rules(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="existing folder.*mkdir -p"):
        check_output_path(tmp_path / "nowhere" / "out.png")
    with pytest.raises(InputError, match="a file path"):
        check_output_path(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        # root may write anywhere; make os.access answer as it does for an ordinary user.
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if (Path(p) == locked and mode & os.W_OK)
                            else real_access(p, mode, **kw))
    with pytest.raises(InputError, match="^output: expected a path in a writable folder"):
        check_output_path(locked / "out.png")


# --- disparity and depth ----------------------------------------------------------------------------


def test_disparity_8bit_png_and_jpeg(tmp_path, rng):
    codes = rng.integers(0, 256, size=(10, 14), dtype=np.uint8)
    Image.fromarray(codes).save(tmp_path / "d.png")
    d = read_disparity(tmp_path / "d.png")
    assert d.dtype == np.float32 and d.shape == (10, 14)
    np.testing.assert_allclose(d, codes / 255.0, atol=1e-7)
    Image.fromarray(codes).save(tmp_path / "d.jpg", quality=90)
    with Image.open(tmp_path / "d.jpg") as im:
        decoded = np.asarray(im)
    np.testing.assert_allclose(read_disparity(tmp_path / "d.jpg"), decoded / 255.0, atol=1e-7)


def test_disparity_16bit_png(tmp_path, rng):
    codes = rng.integers(0, 65536, size=(10, 14), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d16.png"), codes)
    np.testing.assert_allclose(read_disparity(tmp_path / "d16.png"), codes / 65535.0, atol=1e-7)


def test_disparity_grey_rgb_png_is_accepted(tmp_path, rng):
    codes = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
    Image.fromarray(np.repeat(codes[..., None], 3, axis=2)).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_disparity(tmp_path / "g.png"), codes / 255.0, atol=1e-7)


def test_disparity_colour_map_is_refused(tmp_path, codes8):
    Image.fromarray(codes8).save(tmp_path / "colour.png")
    with pytest.raises(InputError, match="^disparity: expected a grey-scale map"):
        read_disparity(tmp_path / "colour.png")


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".pfm"])
def test_float_disparity_taken_as_is(tmp_path, rng, suffix):
    values = rng.random((10, 14)).astype(np.float32)
    path = tmp_path / f"d{suffix}"
    {".tif": lambda: tifffile.imwrite(path, values), ".npy": lambda: np.save(path, values),
     ".pfm": lambda: write_pfm(path, values)}[suffix]()
    np.testing.assert_array_equal(read_disparity(path), values)


def test_out_of_range_disparity_and_normalize(tmp_path):
    values = np.linspace(-2.0, 6.0, 5 * 8, dtype=np.float32).reshape(5, 8)
    tifffile.imwrite(tmp_path / "wide.tif", values)
    with pytest.raises(InputError, match=r"^disparity: expected values in \[0, 1\].*range \[-2, 6\].*normalize=True"):
        read_disparity(tmp_path / "wide.tif")
    d = read_disparity(tmp_path / "wide.tif", normalize=True)
    np.testing.assert_allclose(d, (values + 2.0) / 8.0, atol=1e-6)
    np.save(tmp_path / "flat.npy", np.full((4, 4), 3.0, np.float32))
    with pytest.raises(InputError, match="constant map"):
        read_disparity(tmp_path / "flat.npy", normalize=True)


@pytest.mark.parametrize("shape", [(4, 5, 3), (4, 5, 2), (4, 5, 4)])
def test_a_several_channel_array_file_is_refused_not_guessed(tmp_path, shape):
    """An .npy has no alpha or grey-RGB convention, so no channel is picked for the user; (H, W, 1) is fine."""
    np.save(tmp_path / "rgb.npy", np.full(shape, 0.5, np.float32))
    with pytest.raises(ShapeError, match=r"^disparity: expected an H x W array .* Fix: save the one channel"):
        read_disparity(tmp_path / "rgb.npy")
    np.save(tmp_path / "one.npy", np.full((4, 5, 1), 0.5, np.float32))
    assert read_disparity(tmp_path / "one.npy").shape == (4, 5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_disparity_refused(tmp_path, bad):
    values = np.full((5, 6), 0.5, np.float32)
    values[2, 3] = bad
    np.save(tmp_path / "holes.npy", values)
    with pytest.raises(InputError, match="^disparity: expected finite values.*1 NaN/inf"):
        read_disparity(tmp_path / "holes.npy")
    with pytest.raises(InputError, match="NaN/inf"):
        read_disparity(tmp_path / "holes.npy", normalize=True)


def test_disparity_size_mismatch_and_resize(tmp_path):
    ramp = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (10, 1))
    np.save(tmp_path / "ramp.npy", ramp)
    with pytest.raises(ShapeError, match=r"^disparity: expected the image's size 40x20.*20x10.*resize=True"):
        read_disparity(tmp_path / "ramp.npy", shape=(20, 40))
    big = read_disparity(tmp_path / "ramp.npy", shape=(20, 40), resize=True)
    assert big.shape == (20, 40)
    assert np.all(np.diff(big, axis=1) >= -1e-6) and np.allclose(big[:, 20], big[0, 20])
    small = read_disparity(tmp_path / "ramp.npy", shape=(5, 10), resize=True)
    np.testing.assert_allclose(small, ramp.reshape(5, 2, 10, 2).mean(axis=(1, 3)), atol=1e-6)
    assert read_disparity(tmp_path / "ramp.npy", shape=(10, 20)).shape == (10, 20)


def test_depth_to_disparity_formula(tmp_path):
    depth = np.array([[1.0, 2.0], [4.0, 8.0]], dtype=np.float32)
    disparity, rng = depth_to_disparity(depth)
    assert rng == DepthRange(near=1.0, far=8.0)
    expected = (1.0 / depth - 1.0 / 8.0) / (1.0 - 1.0 / 8.0)
    np.testing.assert_allclose(disparity, expected, atol=1e-6)
    assert disparity[0, 0] == 1.0 and disparity[1, 1] == 0.0  # nearest = 1, farthest = 0
    for z in (1.0, 2.0, 3.3, 8.0):
        assert rng.depth(rng.disparity(z)) == pytest.approx(z)
    clipped, _ = depth_to_disparity(depth, near=2.0, far=4.0)
    np.testing.assert_allclose(clipped, [[1.0, 1.0], [0.0, 0.0]])
    with pytest.raises(InputError, match="^far: expected 0 < near < far"):
        depth_to_disparity(np.full((3, 3), 2.0))


def test_read_depth_files(tmp_path):
    depth = np.array([[1.0, 2.0, 4.0]] * 3, dtype=np.float32)
    tifffile.imwrite(tmp_path / "depth.tif", depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "depth.tif"), depth)
    mm = np.array([[1000, 2000, 4000]] * 3, dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "depth_mm.png"), mm)
    np.testing.assert_allclose(read_depth(tmp_path / "depth_mm.png", scale=65.535), depth, rtol=1e-6)
    disparity, depth_range = read_depth_as_disparity(tmp_path / "depth.tif", shape=(3, 3))
    assert depth_range == DepthRange(near=1.0, far=4.0)
    np.testing.assert_allclose(disparity[0], [1.0, (0.5 - 0.25) / 0.75, 0.0], atol=1e-6)
    with pytest.raises(ShapeError, match="^depth: expected the image's size"):
        read_depth_as_disparity(tmp_path / "depth.tif", shape=(6, 6))
    zero = depth.copy()
    zero[0, 0] = 0.0
    np.save(tmp_path / "zero.npy", zero)
    with pytest.raises(InputError, match=r"^depth: expected depths > 0.*read_disparity"):
        read_depth(tmp_path / "zero.npy")


def test_written_files_follow_the_umask(tmp_path):
    """Atomic writes go through a private temporary file; the result has the mode of any new file."""
    import os

    from lensblur.io import write_text

    old = os.umask(0o022)
    try:
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
        write_text(tmp_path / "a.json", "{}")
        os.umask(0o077)
        write_image(tmp_path / "b.png", np.zeros((4, 4, 3), np.float32))
    finally:
        os.umask(old)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.png").stat().st_mode & 0o777 == 0o600


def test_output_folders_that_cannot_be_made_are_named_not_tracebacks(tmp_path):
    from lensblur.io import check_output_path, make_folder

    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match=r"^out: expected a folder path .*afile is a file\. Fix: choose a path whose"):
        make_folder(tmp_path / "afile" / "sub")
    with pytest.raises(InputError, match=r"afile is a file"):
        make_folder(tmp_path / "afile")
    with pytest.raises(InputError, match=r"^out: expected a folder that can be made, got /proc/lensblur-x/y"):
        make_folder("/proc/lensblur-x/y")           # a special filesystem refuses new folders
    with pytest.raises(InputError, match=r"but .*afile is a file\. Fix: choose a path whose parents are folders"):
        check_output_path(tmp_path / "afile" / "o.png")
    assert make_folder(tmp_path / "new" / "deeper").is_dir()
