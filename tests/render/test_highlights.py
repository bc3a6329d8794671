"""Clipped lights: found, told from bright surfaces, raised to their estimated energy, and nothing else."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lensblur
from lensblur import Aperture, Lens
from lensblur.render.highlights import (
    CLIP_LEVEL,
    LIGHT_RADIANCE,
    boost_near_white,
    check_highlights,
    clipped_mask,
    find_lights,
    label_regions,
    recover_highlights,
)

BACKGROUND = 0.05


def night(size: int = 48, lights=((24, 24, 3),)) -> np.ndarray:
    """A dark frame with square clipped lights ``(y, x, side)``."""
    image = np.full((size, size, 3), BACKGROUND, np.float32)
    for y, x, side in lights:
        image[y - side // 2: y - side // 2 + side, x - side // 2: x - side // 2 + side] = 1.0
    return image


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def hand_estimate(n: int, background: float) -> tuple[float, float]:
    """The module doc's formula worked by hand: energy and gain of a light of ``n`` white pixels on a flat
    ``background`` with no halo."""
    radius = math.sqrt(n / math.pi) - (0.5 - 1.0 / LIGHT_RADIANCE)
    energy = (LIGHT_RADIANCE - background) * math.pi * radius**2
    recorded = n * 1.0 - background * n
    return energy, 1.0 + (energy - recorded) / n


def test_labels_match_opencv_8_connectivity():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    mask = rng.random((40, 50)) < 0.45
    mask[5:30, 10] = mask[29, 10:40] = mask[5:30, 39] = True              # a U: labels must travel round it
    ours = label_regions(torch.from_numpy(mask)).numpy()
    count, theirs = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    assert (ours[~mask] == -1).all()
    pairs = set(zip(ours[mask].tolist(), theirs[mask].tolist(), strict=True))
    assert len(pairs) == count - 1 == len(set(ours[mask].tolist()))     # one to one, same partition


def test_labels_match_opencv_on_large_regions_and_frame_edges():
    """Regions of thousands of pixels (a sky, a spiral that doubles back), and runs at the frame's edges: a
    run ending in the last column does not touch one starting the next row's first column."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(5)
    mask = rng.random((300, 400)) < 0.3
    mask[:80] = True                                                    # a sky
    for i in range(0, 100, 10):                                         # a comb: one region through its spine
        mask[120:290, 20 + i * 3] = True
    mask[289, 20:320] = True
    mask[100] = False
    mask[100, -1] = mask[101, 0] = True
    mask[101, 1:] = False
    mask[102, :2] = False
    ours = label_regions(torch.from_numpy(mask)).numpy()
    count, theirs = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    assert (ours[~mask] == -1).all()
    pairs = set(zip(ours[mask].tolist(), theirs[mask].tolist(), strict=True))
    assert len(pairs) == count - 1 == len(set(ours[mask].tolist()))
    assert ours[100, -1] != ours[101, 0]
    first = {label: np.flatnonzero((ours == label).ravel())[0] for label in set(ours[mask].tolist())}
    assert all(label == index for label, index in first.items())       # a region is named by its first pixel


def test_unclipped_pixels_are_never_changed():
    rng = np.random.default_rng(0)
    image = (rng.random((40, 40, 3)) * 0.9).astype(np.float32)
    image[10:13, 10:13] = 1.0
    image[30, 25] = (1.0, 0.97, 0.96)
    x = as_tensor(image)
    out = recover_highlights(x, "auto")
    clipped = clipped_mask(x)[0, 0]
    assert torch.equal(out[0][:, ~clipped], x[0][:, ~clipped])
    assert bool((out[0][:, clipped] > x[0][:, clipped]).all())          # the lights did rise


def test_large_clipped_region_is_a_surface():
    image = night(64, lights=((10, 10, 3),))
    image[24:64, 20:64] = 1.0                                          # a white wall
    image[4, 30:60] = 1.0                                              # a thin clipped line
    x = as_tensor(image)
    out = recover_highlights(x, "auto")[0].numpy().transpose(1, 2, 0)
    np.testing.assert_array_equal(out[24:64, 20:64], 1.0)
    np.testing.assert_array_equal(out[4, 30:60], 1.0)
    assert out[10, 10, 0] > 5.0                                        # the light beside them is raised
    assert len(find_lights(x[0])) == 1


def test_soft_edged_or_coloured_clipping_is_not_a_light():
    image = np.full((40, 40, 3), 0.2, np.float32)
    yy, xx = np.mgrid[:40, :40]
    bump = np.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 18.0)        # a bright surface whose top clipped
    image[..., :] = np.clip(0.2 + 0.95 * bump, 0, 1)[..., None]
    image[28:31, 28:31] = (1.0, 0.3, 0.1)                              # a saturated red patch
    x = as_tensor(image)
    assert torch.equal(recover_highlights(x, "auto"), x)


def test_isolated_light_becomes_a_disc_with_the_estimated_energy():
    image = night(48)
    lights = find_lights(as_tensor(image)[0])
    energy, gain = hand_estimate(9, BACKGROUND)
    assert len(lights) == 1
    assert lights.energy.item() == pytest.approx(energy, rel=1e-9)
    assert lights.gain.item() == pytest.approx(gain, rel=1e-9)
    disparity = np.full((48, 48), 0.1, np.float32)
    lens = Lens(0.6, 20.0)                                             # CoC radius 10 px
    out = lensblur.render(image, disparity, lens)
    excess = out[..., 1] - BACKGROUND
    assert excess.sum() == pytest.approx(energy, rel=0.01)            # the renderer keeps the light's energy
    lit = excess > 0.5 * excess[24, 24]
    assert abs(lit.sum() - math.pi * 10.0**2) < 0.2 * math.pi * 10.0**2   # a flat disc of the CoC radius
    off = lensblur.render(image, disparity, lens, highlights="off")[..., 1] - BACKGROUND
    assert excess.sum() > 10 * off.sum()


def test_recovered_light_takes_the_aperture_shape_as_in_the_reference():
    """The recovered region is an HDR region like any other: scatter renders it as the hexagon, with cat-eye."""
    image = night(32, lights=((12, 12, 3),))
    disparity = np.full((32, 32), 0.1, np.float32)
    lens = Lens(0.5, 12.0, Aperture(blades=6, rotation=15.0, cat_eye=0.4))
    _, gain = hand_estimate(9, BACKGROUND)
    hdr = image.copy()
    hdr[11:14, 11:14] *= gain
    auto = lensblur.render(image, disparity, lens, method="scatter", supersample=2)
    reference = lensblur.render(hdr, disparity, lens, method="scatter", supersample=2, highlights="off")
    np.testing.assert_allclose(auto, reference, rtol=1e-5, atol=1e-6)
    assert auto[..., 0].max() > 4 * lensblur.render(image, disparity, lens, method="scatter", supersample=2,
                                                    highlights="off")[..., 0].max()


def test_hdr_input_is_not_boosted():
    image = night(32)
    image[2, 2] = 1.5                                                  # linear light above white
    x = as_tensor(image)
    assert recover_highlights(x, "auto") is x
    disparity = np.full((32, 32), 0.2, np.float32)
    lens = Lens(0.6, 6.0)
    a = lensblur.render(image, disparity, lens)
    b = lensblur.render(image, disparity, lens, highlights="off")
    assert a.tobytes() == b.tobytes()


def test_auto_equals_off_byte_for_byte_without_clipping():
    rng = np.random.default_rng(1)
    image = (rng.random((32, 40, 3)) * CLIP_LEVEL * 0.99).astype(np.float32)
    disparity = rng.random((32, 40)).astype(np.float32)
    lens = Lens(0.5, 5.0, Aperture(blades=5))
    auto = lensblur.render(image, disparity, lens, highlights="auto")
    assert auto.tobytes() == lensblur.render(image, disparity, lens, highlights="off").tobytes()
    assert auto.tobytes() == lensblur.render(image, disparity, lens, highlights=0).tobytes()


def test_strength_scales_what_is_missing():
    image = night(32, lights=((16, 16, 3),))
    x = as_tensor(image)
    _, gain = hand_estimate(9, BACKGROUND)
    for strength in (0.5, 2.0):
        out = recover_highlights(x, strength)
        assert out[0, 0, 16, 16].item() == pytest.approx(1.0 + strength * (gain - 1.0), rel=1e-6)


@pytest.mark.parametrize("bad", [-0.1, 4.5, "bright", True, None])
def test_bad_highlights(bad):
    with pytest.raises(lensblur.InputError, match="highlights"):
        check_highlights(bad)


def test_the_former_boost_touches_every_near_white_pixel():
    img = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    assert torch.equal(boost_near_white(img, strength=0.0), img)
    out = boost_near_white(img, strength=1.0, threshold=0.9, gain=8.0)
    torch.testing.assert_close(out[..., :2], img[..., :2])
    torch.testing.assert_close(out[..., 2], img[..., 2] * 9.0)


def _render_cli(tmp_path, photo, *flags):
    from lensblur.cli import main

    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.pfm"
    assert main(["render", str(photo), "--disparity", str(tmp_path / "d.png"), "--focus-disparity", "0.6",
                 "--blur", "8", "-o", str(out), "-q", *flags]) == 0
    return out.read_bytes()


def test_cli_auto_boosts_a_photo_but_never_a_linear_file(tmp_path):
    from lensblur.io import write_image

    image = night(32, lights=((16, 16, 3),))
    np.save(tmp_path / "unused.npy", image)
    from PIL import Image

    Image.fromarray(np.full((32, 32), 25, np.uint8)).save(tmp_path / "d.png")
    write_image(tmp_path / "photo.png", image)
    write_image(tmp_path / "photo.pfm", image)
    png_auto, png_off = _render_cli(tmp_path, tmp_path / "photo.png"), _render_cli(
        tmp_path, tmp_path / "photo.png", "--highlights", "off")
    assert png_auto != png_off
    pfm_auto, pfm_off = _render_cli(tmp_path, tmp_path / "photo.pfm"), _render_cli(
        tmp_path, tmp_path / "photo.pfm", "--highlights", "off")
    assert pfm_auto == pfm_off
    assert _render_cli(tmp_path, tmp_path / "photo.pfm", "--highlights", "2") != pfm_off   # asked for: applied


def test_a_light_survives_jpeg_compression(tmp_path):
    """JPEG ripples a clipped patch by a few codes and pulls its edge down: the tolerance still finds it."""
    from lensblur.io import read_image, write_image

    image = night(48, lights=((20, 28, 4),))
    write_image(tmp_path / "night.jpg", image, quality=85)
    lights = find_lights(as_tensor(read_image(tmp_path / "night.jpg"))[0])
    assert len(lights) == 1 and lights.gain.item() > 5.0
    assert abs(lights.y.item() - 20.0) < 1.0 and abs(lights.x.item() - 28.0) < 1.0


def test_cli_never_boosts_a_16_bit_tiff_with_a_linear_profile(tmp_path):
    """A raw converter's linear 16-bit TIFF holds scene light (its profile's curves have gamma 1): auto leaves its
    clipped pixels alone, as it does an EXR's; the same pixels in an sRGB-curve file are raised."""
    import tifffile
    from PIL import Image

    from lensblur.io.icc import _colorants, has_linear_curve, has_srgb_curve, matrix_shaper_profile, srgb

    linear_icc = matrix_shaper_profile("linear sRGB primaries", _colorants(srgb()), gamma=1.0)
    assert has_linear_curve(linear_icc) and not has_linear_curve(srgb()) and not has_srgb_curve(linear_icc)
    image = night(32, lights=((16, 16, 3),))
    codes = np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "photo.tif", codes, photometric="rgb",
                     extratags=[(34675, "B", len(linear_icc), linear_icc, True)])
    Image.fromarray(np.full((32, 32), 25, np.uint8)).save(tmp_path / "d.png")
    assert _render_cli(tmp_path, tmp_path / "photo.tif") == _render_cli(tmp_path, tmp_path / "photo.tif",
                                                                         "--highlights", "off")
    tifffile.imwrite(tmp_path / "plain.tif", codes, photometric="rgb")     # untagged: the sRGB curve
    assert _render_cli(tmp_path, tmp_path / "plain.tif") != _render_cli(tmp_path, tmp_path / "plain.tif",
                                                                        "--highlights", "off")
