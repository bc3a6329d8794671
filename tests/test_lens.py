"""Lens and Aperture: validation, the thin-lens camera mapping, and focus picking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensblur.errors import InputError
from lensblur.io import DepthRange
from lensblur.lens import Aperture, Lens, focus_at_point, focus_in_box, focus_in_mask, parse_box

# --- Aperture -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("blades", [1, 2, -1, 2.5, "6", 65, 100000])
def test_aperture_rejects_bad_blades(blades):
    """Blade counts from 3 to 64 (a 100000-blade aperture took minutes, and is a circle to the eye)."""
    with pytest.raises(InputError, match="^blades: expected 0 \\(circle\\) or an integer from 3 to 64"):
        Aperture(blades=blades)
    Aperture(blades=64)


@pytest.mark.parametrize(("name", "value"), [("curvature", -0.1), ("curvature", 1.5), ("cat_eye", 2.0)])
def test_aperture_rejects_out_of_range_shape_values(name, value):
    with pytest.raises(InputError, match=f"^{name}: expected a value in \\[0, 1\\]"):
        Aperture(**{name: value})


@pytest.mark.parametrize("rotation", [float("inf"), float("nan"), "15"])
def test_aperture_rejects_a_rotation_that_is_not_a_finite_number(rotation):
    with pytest.raises(InputError, match="^rotation: expected a finite number of degrees"):
        Aperture(blades=6, rotation=rotation)


def test_aperture_kernel_rules():
    with pytest.raises(InputError, match="all-black"):
        Aperture(kernel=np.zeros((5, 5)))
    with pytest.raises(InputError, match="at least 3x3"):
        Aperture(kernel=np.ones((2, 7)))
    with pytest.raises(InputError, match="non-negative"):
        Aperture(kernel=-np.ones((4, 4)))
    k = Aperture(kernel=np.arange(16, dtype=np.float64).reshape(4, 4)).kernel
    assert k.dtype == np.float32 and k.max() == 1.0


def test_named_apertures():
    assert Aperture.named("hexagon", rotation=15).blades == 6
    assert Aperture.named("hexagon", rotation=15).rotation == 15
    assert Aperture.named("circle").blades == 0
    with pytest.raises(InputError, match="^aperture: expected one of circle"):
        Aperture.named("blob")


def test_aperture_from_image(tmp_path):
    from PIL import Image

    disk = np.zeros((21, 21), np.uint8)
    yy, xx = np.mgrid[-10:11, -10:11]
    disk[xx**2 + yy**2 <= 100] = 200
    Image.fromarray(disk).save(tmp_path / "disk.png")
    ap = Aperture.from_image(tmp_path / "disk.png")
    np.testing.assert_array_equal(ap.kernel, (disk > 0).astype(np.float32))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(InputError, match="all-black"):
        Aperture.from_image(tmp_path / "black.png")
    (tmp_path / "text.png").write_text("no image")
    with pytest.raises(InputError, match="^aperture: expected a readable image file"):
        Aperture.from_image(tmp_path / "text.png")


# --- Lens ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blur", [-1.0, math.nan, math.inf, "30"])
def test_lens_rejects_bad_blur(blur):
    with pytest.raises(InputError, match="^blur: expected a finite number of pixels >= 0"):
        Lens(blur=blur)


@pytest.mark.parametrize("focus", [-0.1, 1.5, math.nan])
def test_lens_rejects_bad_focus(focus):
    with pytest.raises(InputError, match="^focus_disparity: expected a disparity in \\[0, 1\\]"):
        Lens(focus_disparity=focus)


def test_coc_sign_and_value():
    lens = Lens(focus_disparity=0.4, blur=30)
    assert lens.coc(0.9) == pytest.approx(15.0)  # in front of the focal plane: positive
    assert lens.coc(0.1) == pytest.approx(-9.0)  # behind: negative
    assert lens.coc(0.4) == 0.0
    np.testing.assert_allclose(lens.coc(np.array([0.0, 1.0])), [-12.0, 18.0])
    assert lens.with_focus(0.9).coc(0.9) == 0.0


def _geometric_coc_diameter(f, n, s_focus, s):
    """Blur-circle diameter on the sensor from ray geometry (independent of the closed form in lens.py).

    The lens (aperture diameter f/N) images the point at distance s to v = 1/(1/f - 1/s) behind it; the
    sensor sits at v_f, where the focus distance is imaged. Similar triangles between the aperture and
    the cone converging on (or diverging from) v give the circle's diameter at the sensor.
    """
    v = 1.0 / (1.0 / f - 1.0 / s)
    v_f = 1.0 / (1.0 / f - 1.0 / s_focus)
    return (f / n) * abs(v - v_f) / v


@pytest.mark.parametrize("s", [1.2, 1.7, 3.0, 9.5])
def test_from_camera_matches_thin_lens_geometry(s):
    f_mm, n, s_f, sensor_mm, width = 50.0, 1.8, 2.0, 36.0, 6000
    depth_range = DepthRange(near=1.0, far=10.0)
    lens = Lens.from_camera(focal_length=f_mm, f_number=n, focus_distance=s_f, sensor_width=sensor_mm,
                            image_width=width, depth_range=depth_range)

    def disparity_of(z):  # inverse depth, rescaled to [0, 1] over the range
        return (1 / z - 1 / 10.0) / (1 / 1.0 - 1 / 10.0)

    assert lens.focus_disparity == pytest.approx(disparity_of(s_f))
    diameter_m = _geometric_coc_diameter(f_mm / 1000, n, s_f, s)
    radius_px = 0.5 * diameter_m / (sensor_mm / 1000) * width
    coc = lens.coc(disparity_of(s))
    assert abs(coc) == pytest.approx(radius_px, rel=1e-9)
    assert (coc > 0) == (s < s_f)  # nearer than the focal plane: positive


def test_from_camera_known_number():
    """50 mm f/2 focused at 2 m, object at 1 m, full frame 36 mm over 3600 px: c = 0.641 mm = 64.1 px."""
    lens = Lens.from_camera(focal_length=50, f_number=2, focus_distance=2.0, sensor_width=36, image_width=3600,
                            depth_range=DepthRange(near=1.0, far=4.0))
    # c = f^2 s_f / (N (s_f - f)) |1/s - 1/s_f| = 0.05^2 * 2 / (2 * 1.95) * 0.5 m = 0.000641 m
    assert lens.coc(1.0) == pytest.approx(0.5 * 0.0025 * 2 / (2 * 1.95) * 0.5 / 0.036 * 3600, rel=1e-12)


def test_from_camera_errors():
    rng = DepthRange(near=1.0, far=10.0)
    base = {"focal_length": 50, "f_number": 1.8, "focus_distance": 2.0, "sensor_width": 36,
            "image_width": 1000, "depth_range": rng}
    with pytest.raises(InputError, match="^f_number: expected a positive number.*f_number=1.8"):
        Lens.from_camera(**{**base, "f_number": -2})
    with pytest.raises(InputError, match="^focal_length: "):
        Lens.from_camera(**{**base, "focal_length": math.nan})
    with pytest.raises(InputError, match="^focus_distance: expected more than the focal length"):
        Lens.from_camera(**{**base, "focal_length": 50, "focus_distance": 0.04})
    with pytest.raises(InputError, match="^focus_distance: expected a distance between 1 and 10 m"):
        Lens.from_camera(**{**base, "focus_distance": 20.0})


# --- focus picking ------------------------------------------------------------------------------------


@pytest.fixture
def step():
    """Left half at disparity 0.2, right half at 0.8 (edge between columns 19 and 20), a few outliers."""
    d = np.full((30, 40), 0.2, np.float32)
    d[:, 20:] = 0.8
    return d


def test_focus_at_point_is_the_median(step):
    assert focus_at_point(step, (10, 10)) == pytest.approx(0.2)
    assert focus_at_point(step, (30, 10)) == pytest.approx(0.8)
    # A click one pixel left of the edge: the 9x9 window holds 5 columns at 0.2 and 4 at 0.8.
    assert focus_at_point(step, (19, 15)) == pytest.approx(0.2)
    assert focus_at_point(step, (20, 15)) == pytest.approx(0.8)


def test_focus_at_point_ignores_outliers(step):
    noisy = step.copy()
    noisy[8:11, 8:11] = 1.0  # 9 spikes in the 81-pixel window, one of them under the click
    noisy[12, 12] = 0.0
    assert focus_at_point(noisy, (9.6, 9.2)) == pytest.approx(0.2)
    assert noisy[9, 9] == 1.0


def test_focus_at_point_corners_and_outside(step):
    assert focus_at_point(step, (0, 0)) == pytest.approx(0.2)
    assert focus_at_point(step, (39.9, 29.9)) == pytest.approx(0.8)
    for point in [(40, 5), (-1, 5), (5, 30), (5, -0.5)]:
        with pytest.raises(InputError, match="^point: expected a point inside the 40x30 image"):
            focus_at_point(step, point)
    with pytest.raises(InputError, match="^point: expected a point \\(x, y\\).*point=\\(812, 430\\)"):
        focus_at_point(step, ("a", 1))


def test_focus_in_box_and_mask(step):
    assert focus_in_box(step, (0, 0, 25, 30)) == pytest.approx(0.2)  # 20 columns at 0.2, 5 at 0.8
    assert focus_in_box(step, (18, 0, 40, 30)) == pytest.approx(0.8)
    with pytest.raises(InputError, match="^box: "):
        focus_in_box(step, (0, 0, 41, 10))
    mask = np.zeros_like(step)
    mask[5:10, 30:35] = 1
    assert focus_in_mask(step, mask) == pytest.approx(0.8)
    with pytest.raises(InputError, match="empty mask"):
        focus_in_mask(step, np.zeros_like(step))
    with pytest.raises(InputError, match="^mask: expected a mask of the disparity's size"):
        focus_in_mask(step, np.ones((3, 3)))


def test_focus_by_point_and_box_read_the_last_two_axes_of_a_stacked_map(step):
    stacked = step[None]                                   # (1, H, W), as the docstrings allow
    assert focus_at_point(stacked, (30, 10)) == pytest.approx(0.8)
    assert focus_in_box(stacked, (18, 0, 40, 30)) == pytest.approx(0.8)


@pytest.mark.parametrize("bad", [(0, 0, 0, 5), (5, 0, 2, 5), (0, 0, 41, 5), (-1, 0, 5, 5), (0, 0, 5, 31)])
def test_parse_box_rejects_boxes_outside_or_empty(bad):
    with pytest.raises(InputError, match="^box: expected x0 < x1 <= 40 and y0 < y1 <= 30"):
        parse_box(bad, (30, 40))


def test_parse_box_rounds_and_accepts_full_image():
    assert parse_box((0, 0, 40, 30), (30, 40)) == (0, 0, 40, 30)
    assert parse_box(("1.4", 2.6, 10, 20), (30, 40)) == (1, 3, 10, 20)
    with pytest.raises(InputError, match="four numbers"):
        parse_box((1, 2, 3), (30, 40))


def test_lens_takes_numpy_scalars():
    """A focus read straight from the map (``disparity[y, x]``, a numpy float32) is a valid number."""
    disparity = np.array([[0.25, 0.75]], dtype=np.float32)
    lens = Lens(focus_disparity=disparity[0, 1], blur=np.int64(30))
    assert type(lens.focus_disparity) is float and type(lens.blur) is float
    assert lens == Lens(focus_disparity=0.75, blur=30.0)
    with pytest.raises(InputError, match="^blur: "):
        Lens(blur=np.float32(np.nan))
    with pytest.raises(InputError, match="^blur: "):
        Lens(blur=True)
    from_map = Lens.from_camera(focal_length=np.float32(50), f_number=np.float64(2), focus_distance=2.0,
                                sensor_width=36, image_width=np.int64(3600),
                                depth_range=DepthRange(near=1.0, far=4.0))
    assert from_map.blur > 0


def test_depth_range_refuses_near_beyond_far():
    with pytest.raises(InputError, match=r"^depth_range: expected metric depths 0 < near < far.*near=3, far=1"):
        DepthRange(near=3.0, far=1.0)
    with pytest.raises(InputError, match="^depth_range"):
        DepthRange(near=0.0, far=1.0)

