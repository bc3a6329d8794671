"""Colour management: a file's ICC profile is read, its pixels are linearised in its own primaries, and the output
is tagged with the input's profile (or sRGB / Display P3), converted by the profiles' own matrices."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from lensblur._convert import decode_srgb, to_srgb8
from lensblur.io import icc, read_image, read_image_info, write_image

# The colorants (D50 XYZ of R, G, B) of Apple's own Display P3 profile, as an iPhone embeds it (read from the
# profile of an iPhone photo with Pillow's ImageCms): an independent reference for the profile lensblur builds.
APPLE_P3 = np.array([[0.5151214599609375, 0.2411956787109375, -0.0010528564453125],
                     [0.2919769287109375, 0.6922454833984375, 0.0418853759765625],
                     [0.1571044921875, 0.0665740966796875, 0.7840728759765625]])


def _profile(data: bytes):
    return ImageCms.ImageCmsProfile(io.BytesIO(data))


def _p3_codes() -> np.ndarray:
    """A 32 x 48 picture of six 16 x 16 patches (as lossy codecs keep their insides): saturated P3 colours, some
    outside sRGB, and a grey."""
    patches = np.array([[[230, 20, 30], [0, 255, 0], [20, 40, 220]], [[128, 128, 128], [250, 180, 40],
                                                                      [60, 200, 190]]], dtype=np.uint8)
    return np.repeat(np.repeat(patches, 16, axis=0), 16, axis=1)


def test_display_p3_profile_has_apples_colorants_and_the_srgb_curve():
    profile = _profile(icc.display_p3()).profile
    ours = np.array([profile.red_colorant[0], profile.green_colorant[0], profile.blue_colorant[0]])
    assert np.abs(ours - APPLE_P3).max() < 2e-5
    assert profile.is_matrix_shaper and profile.xcolor_space.strip() == "RGB"
    assert icc.has_srgb_curve(icc.display_p3()) and icc.has_srgb_curve(icc.srgb())
    assert "Display P3" in icc.describe(icc.display_p3())


def test_gamma_22_profile_is_not_taken_for_the_srgb_curve():
    colorants = np.array([_profile(icc.srgb()).profile.red_colorant[0], _profile(icc.srgb()).profile.green_colorant[0],
                          _profile(icc.srgb()).profile.blue_colorant[0]]).T
    assert not icc.has_srgb_curve(icc.matrix_shaper_profile("gamma 2.2", colorants, gamma=2.2))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_p3_file_round_trips_with_its_profile_and_colours(tmp_path, suffix):
    codes = _p3_codes()
    src = tmp_path / f"p3{suffix}"
    Image.fromarray(codes).save(src, icc_profile=icc.display_p3(), **({"quality": 100} if suffix != ".png" else {}))
    image, info = read_image_info(src)
    assert info.input_profile == icc.display_p3() and info.profile == icc.display_p3()
    out = write_image(tmp_path / f"out{suffix}", image, info=info, quality=100)
    with Image.open(out) as back:
        assert back.info.get("icc_profile") == icc.display_p3()          # today: dropped (untagged)
        written = np.asarray(back.convert("RGB"))
    stored = np.asarray(Image.open(src).convert("RGB"))
    if suffix in (".jpg", ".webp"):        # a lossy codec changes the patches' edges each time; compare the insides
        rows, cols = (np.arange(32) % 16 >= 5) & (np.arange(32) % 16 < 11), (np.arange(48) % 16 >= 5) & \
            (np.arange(48) % 16 < 11)
        written, stored = written[rows][:, cols], stored[rows][:, cols]
    assert np.abs(written.astype(int) - stored.astype(int)).max() <= (0 if suffix in (".png", ".tif") else 4)


def test_p3_to_srgb_output_matches_littlecms(tmp_path):
    codes = _p3_codes()
    src = tmp_path / "p3.png"
    Image.fromarray(codes).save(src, icc_profile=icc.display_p3())
    image, info = read_image_info(src)
    out = write_image(tmp_path / "srgb.png", image, info=info, output_profile="srgb")
    with Image.open(out) as back:
        assert back.info["icc_profile"] == icc.srgb()
        ours = np.asarray(back).astype(int)
    transform = ImageCms.buildTransform(_profile(icc.display_p3()), _profile(icc.srgb()), "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    theirs = np.asarray(transform.apply(Image.fromarray(codes))).astype(int)
    assert np.abs(ours - theirs).max() <= 1
    # the P3 green is outside sRGB: clipped to sRGB's own green
    assert tuple(ours[0, 16]) == (0, 255, 0) and tuple(codes[0, 16]) == (0, 255, 0)


def test_srgb_file_to_p3_output_keeps_the_colours_as_littlecms_sees_them(tmp_path):
    codes = _p3_codes()
    src = tmp_path / "plain.png"
    Image.fromarray(codes).save(src)                       # untagged: sRGB
    image, info = read_image_info(src)
    assert info.input_profile is None
    out = write_image(tmp_path / "p3.png", image, info=info, output_profile="p3")
    with Image.open(out) as back:
        assert back.info["icc_profile"] == icc.display_p3()
        ours = np.asarray(back).astype(int)
    transform = ImageCms.buildTransform(_profile(icc.srgb()), _profile(icc.display_p3()), "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    assert np.abs(ours - np.asarray(transform.apply(Image.fromarray(codes))).astype(int)).max() <= 1


def test_untagged_and_p3_files_decode_with_the_plain_srgb_curve(tmp_path):
    codes = _p3_codes()
    Image.fromarray(codes).save(tmp_path / "a.png")
    Image.fromarray(codes).save(tmp_path / "b.png", icc_profile=icc.display_p3())
    expected = decode_srgb(codes, 255)
    assert np.array_equal(read_image(tmp_path / "a.png"), expected)
    assert np.array_equal(read_image(tmp_path / "b.png"), expected)
    out = write_image(tmp_path / "c.png", expected, info=read_image_info(tmp_path / "a.png")[1])
    with Image.open(out) as back:
        assert "icc_profile" not in back.info                   # untagged in, untagged out
        assert np.array_equal(np.asarray(back), to_srgb8(expected))


def test_other_tone_curve_is_converted_by_littlecms_and_written_back(tmp_path):
    srgb = _profile(icc.srgb()).profile
    colorants = np.array([srgb.red_colorant[0], srgb.green_colorant[0], srgb.blue_colorant[0]]).T
    gamma22 = icc.matrix_shaper_profile("sRGB primaries, gamma 2.2", colorants, gamma=2.2)
    codes = np.tile(np.arange(0, 256, 5, dtype=np.uint8)[None, :, None], (2, 1, 3))
    src = tmp_path / "g22.png"
    Image.fromarray(codes).save(src, icc_profile=gamma22)
    image, info = read_image_info(src)
    # gamma 2.2 with sRGB primaries: linear = code ** 2.2 (LittleCMS, then the sRGB curve, through 8 bits)
    expected = (codes / 255.0) ** 2.2
    assert np.abs(image - expected).max() < 0.01
    assert info.input_profile == gamma22 and info.profile != gamma22
    out = write_image(tmp_path / "back.png", image, info=info)
    with Image.open(out) as back:
        assert back.info["icc_profile"] == gamma22
        assert np.abs(np.asarray(back).astype(int) - codes.astype(int)).max() <= 2


def test_float_output_is_linear_srgb(tmp_path):
    codes = _p3_codes()
    src = tmp_path / "p3.png"
    Image.fromarray(codes).save(src, icc_profile=icc.display_p3())
    image, info = read_image_info(src)
    out = write_image(tmp_path / "lin.pfm", image, info=info)
    linear = read_image(out)
    matrix = np.linalg.solve(np.array([_profile(icc.srgb()).profile.red_colorant[0],
                                       _profile(icc.srgb()).profile.green_colorant[0],
                                       _profile(icc.srgb()).profile.blue_colorant[0]]).T, APPLE_P3.T)
    assert np.allclose(linear, image @ matrix.T, atol=2e-4)
    assert linear[0, 16, 0] < 0                                   # the P3 green is outside sRGB: kept in float


def test_unknown_output_profile_is_refused(tmp_path):
    from lensblur.errors import InputError

    with pytest.raises(InputError, match="^output_profile: "):
        write_image(tmp_path / "o.png", np.zeros((2, 2, 3), np.float32), output_profile="adobe")
