"""iPhone and Vision Pro HEICs built in the test (see _heic.py) and read back through libheif: the portrait
effects matte as the subject mask, the photo's irot/imir turns applied alike to its depth map and matte,
spatial photos (a ``ster`` group of two views) fed to the stereo source, and the pixel limit for HEIC."""

import json

import numpy as np
import pytest
from _heic import depth_sei, edit_heic, heic_images, heic_with_depth
from _mpf import stereo_views
from PIL import Image

from lensblur.depth import EmbeddedDepth, StereoDepth, build_source, read_photo, resolve
from lensblur.depth.heif import read_heif_depth, read_heif_matte
from lensblur.depth.isobmff import read_layout
from lensblur.errors import InputError
from lensblur.io.image import orient

H, W = 64, 96
RNG = np.random.default_rng(7)
SEI = depth_sei(1, d_min=0.5, d_max=2.5)

# The irot/imir steps that libheif's own encoder writes for each EXIF orientation (pillow-heif saving a photo
# whose Exif says 2, 3, 5, 6, 8), so that each stands for the turn Pillow's exif_transpose makes, which
# lensblur.io.image.orient reproduces.
TURNS = {2: [("imir", 1)], 3: [("irot", 2)], 5: [("irot", 3), ("imir", 1)], 6: [("irot", 3)], 8: [("irot", 1)]}


def _portrait():
    """A photo with a person-shaped block in front of a textured wall; its depth and matte at half size."""
    rgb = (RNG.random((H, W, 3)) * 60).astype(np.uint8)
    rgb[8:56, 10:40] = 210
    depth = np.full((H // 2, W // 2), 40, np.uint8)
    depth[4:28, 5:20] = 200
    depth[:6, 30:] = 120                                  # an asymmetric mark: any wrong turn shows
    matte = np.zeros((H // 2, W // 2), np.uint8)
    matte[4:28, 5:20] = 255
    return rgb, depth, matte


# ------------------------------------------------------------------------------------------ portrait matte
def test_heic_matte_is_the_subject_mask_and_is_reported(tmp_path, capsys):
    rgb, depth, matte = _portrait()
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(heic_with_depth(rgb, depth, SEI, matte=matte))
    np.testing.assert_allclose(read_heif_matte(path), matte / 255.0, atol=2 / 255)
    image = read_photo(path)
    subject = resolve(path, image, source="subject")                      # no mask given: the stored matte
    assert "portrait matte stored in IMG_0001.HEIC" in subject.source
    person = np.kron(matte > 127, np.ones((2, 2), bool))
    inner = np.zeros_like(person)
    inner[12:52, 14:36] = True                                            # away from the bilinear edge
    assert subject.disparity[inner].min() > 0.95
    # behind the person, the embedded depth keeps its order: c / c_subject (the wall 40/200, the mark 120/200)
    assert np.median(subject.disparity[40:, 60:]) == pytest.approx(40 / 200, abs=0.02)
    assert subject.disparity[~person].max() < 120 / 200 + 0.02
    embedded = EmbeddedDepth(path).estimate(image)
    assert embedded.details["apple"]["portrait_matte"] == [W // 2, H // 2]
    from lensblur.cli import main

    out = tmp_path / "d.png"
    assert main(["depth", str(path), "--depth-from", "subject", "-o", str(out), "--format", "json"]) == 0
    assert "portrait matte stored in IMG_0001.HEIC" in json.loads(capsys.readouterr().out)["source"]
    plain = tmp_path / "depth_only.heic"
    plain.write_bytes(heic_with_depth(rgb, depth, SEI))
    assert read_heif_matte(plain) is None
    assert EmbeddedDepth(plain).estimate(image).details["apple"]["portrait_matte"] is None


# ------------------------------------------------------------------------------------------ irot / imir
@pytest.mark.parametrize("aux_turned", [True, False], ids=["turned-like-apple", "photo-only"])
@pytest.mark.parametrize("orientation", sorted(TURNS))
def test_turned_heic_maps_follow_the_photo(tmp_path, orientation, aux_turned):
    rgb, depth, matte = _portrait()
    path = tmp_path / "turned.heic"
    path.write_bytes(heic_with_depth(rgb, depth, SEI, matte=matte, transforms=TURNS[orientation],
                                     aux_transforms=aux_turned))
    image = read_photo(path)
    expected_photo = orient(rgb, orientation)
    assert image.shape[:2] == expected_photo.shape[:2]
    bright = image.mean(axis=-1) > 0.2                                   # the block (code 210; the wall < 60)
    assert (bright != (expected_photo.mean(axis=-1) > 130)).mean() < 0.01  # libheif turned the photo
    found = read_heif_depth(path)
    np.testing.assert_allclose(found.disparity, orient(depth, orientation) / 255.0, atol=2 / 255)
    assert found.extra["heif"]["map_turned_by"] == ("libheif" if aux_turned else "lensblur")
    np.testing.assert_allclose(read_heif_matte(path), orient(matte, orientation) / 255.0, atol=2 / 255)
    result = EmbeddedDepth(path).estimate(image)                          # no aspect refusal, no misalignment
    expected = np.kron(orient(depth, orientation) / 255.0, np.ones((2, 2)))
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(expected, 6, mode="edge"), (13, 13))
    flat = windows.max(axis=(-1, -2)) == windows.min(axis=(-1, -2))     # 6 px or more from a depth edge
    assert flat.mean() > 0.3 and np.abs(result.disparity - expected)[flat].max() < 0.03


def test_heic_depth_xmp_facts_are_reported(tmp_path):
    """Apple describes the depth item with an XMP item (a ``cdsc`` reference), as in its portrait JPEGs."""
    rgb, depth, _ = _portrait()
    packet = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              b'<rdf:Description xmlns:depthData="http://ns.apple.com/depthData/1.0/" '
              b'xmlns:depthBlurEffect="http://ns.apple.com/depthBlurEffect/1.0/"><depthData:Accuracy>relative'
              b'</depthData:Accuracy><depthData:Filtered>True</depthData:Filtered><depthBlurEffect:SimulatedAperture>'
              b'2.8</depthBlurEffect:SimulatedAperture></rdf:Description></rdf:RDF></x:xmpmeta>')
    path = tmp_path / "described.heic"
    path.write_bytes(heic_with_depth(rgb, depth, SEI, depth_xmp=packet))
    found = read_heif_depth(path)
    np.testing.assert_allclose(found.disparity, depth / 255.0, atol=2 / 255)     # the media data still reads
    assert {k: found.extra["apple"][k] for k in ("Accuracy", "Filtered", "SimulatedAperture")} == {
        "Accuracy": "relative", "Filtered": "True", "SimulatedAperture": "2.8"}


def test_untransformed_heic_reports_no_turn(tmp_path):
    rgb, depth, _ = _portrait()
    path = tmp_path / "plain.heic"
    path.write_bytes(heic_with_depth(rgb, depth, SEI))
    assert read_heif_depth(path).extra["heif"] == {"photo_transforms": [], "map_turned_by": None}


# ------------------------------------------------------------------------------------------ spatial photos
def test_spatial_heic_feeds_the_stereo_source(tmp_path, capsys):
    left, right = stereo_views()
    path = tmp_path / "IMG_SPATIAL.HEIC"
    path.write_bytes(edit_heic(heic_images(left, right), groups=[(b"ster", (0, 1))]))
    layout = read_layout(path)
    import pillow_heif

    groups = pillow_heif.open_heif(str(path)).info["entity_groups"]           # libheif's own reading
    assert layout.stereo_pair() == tuple(groups[0]["entities"]) and groups[0]["type"] == "ster"
    source = build_source(path)
    assert isinstance(source, StereoDepth) and source.photo_is == "left"
    result = resolve(path, read_photo(path))
    assert "right view (item" in result.source and "spatial HEIC IMG_SPATIAL.HEIC" in result.source
    assert result.details["format"] == "spatial HEIC (ster group)" and result.details["map_size"] == [160, 96]
    assert np.median(result.disparity[35:65, 70:100]) > np.median(result.disparity[5:25, 5:50]) + 0.5
    from lensblur.cli import main

    assert main(["depth", str(path), "-o", str(tmp_path / "d.png"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["details"]["views"] == {"left": layout.stereo_pair()[0],
                                                                       "right": layout.stereo_pair()[1]}


def test_spatial_heic_whose_photo_is_the_right_view(tmp_path):
    left, right = stereo_views()
    path = tmp_path / "right_primary.heic"
    path.write_bytes(edit_heic(heic_images(right, left), groups=[(b"ster", (1, 0))]))   # primary = right view
    source = build_source(path)
    assert isinstance(source, StereoDepth) and source.photo_is == "right"
    assert build_source(path, source="stereo").photo_is == "right"      # no right= needed: the file holds both
    result = resolve(path, read_photo(path))
    assert "left view" in result.source
    # the near patch sits 16 px to the left in the right view: its map is the right view's
    assert np.median(result.disparity[35:65, 50:80]) > np.median(result.disparity[5:25, 100:150]) + 0.5


def test_a_ster_group_of_one_view_is_no_pair(tmp_path):
    left, right = stereo_views()
    path = tmp_path / "odd.heic"
    path.write_bytes(edit_heic(heic_images(left, right), groups=[(b"ster", (0,)), (b"altr", (0, 1))]))
    assert read_layout(path).stereo_pair() is None
    with pytest.raises(InputError, match="give one of"):
        build_source(path)


# ------------------------------------------------------------------------------------------ pixel limit
def test_heic_opens_past_pillow_limit_and_stops_at_lensblur_limit(tmp_path, monkeypatch):
    from lensblur.io import image as image_io
    from lensblur.io import read_image

    path = tmp_path / "big.heic"
    path.write_bytes(heic_images((RNG.random((60, 80, 3)) * 255).astype(np.uint8)))
    monkeypatch.delenv(image_io.MAX_PIXELS_ENV, raising=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)         # Pillow alone would refuse 4800 pixels
    assert read_image(path).shape == (60, 80, 3)
    monkeypatch.setenv(image_io.MAX_PIXELS_ENV, "4000")
    with pytest.raises(InputError) as info:
        read_photo(path)
    text = str(info.value)
    assert "80x60 = 4,800 pixels" in text and "4,000 pixels (LENSBLUR_MAX_PIXELS)" in text
    assert "LENSBLUR_MAX_PIXELS=4800" in text
    with pytest.raises(InputError, match="4,800 pixels"):              # the depth readers share the limit
        read_heif_depth(path)


def test_io_registers_the_heif_opener_itself(tmp_path, monkeypatch):
    from lensblur.io import read_image

    path = tmp_path / "photo.heic"
    path.write_bytes(heic_images((RNG.random((24, 32, 3)) * 255).astype(np.uint8)))
    monkeypatch.setattr(Image, "ID", [name for name in Image.ID if name != "HEIF"])   # as in a fresh process
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    assert read_image(path).shape == (24, 32, 3)
