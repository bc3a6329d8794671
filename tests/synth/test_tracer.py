"""Physical checks of the aperture-sampling ray tracer on tiny scenes (independent analytic references)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensblur.errors import InputError, ShapeError
from lensblur.lens import Aperture
from lensblur.synth import Layer, trace
from lensblur.synth.aperture import aperture_samples


def _random_layers(rng, h, w, *, tilted=True):
    bg = Layer.from_straight(rng.random((h, w, 3), dtype=np.float32), np.ones((h, w), np.float32), 0.1)
    alpha = np.clip(rng.random((h, w), dtype=np.float32) * 2 - 0.5, 0, 1)
    mid = Layer.from_straight(rng.random((h, w, 3), dtype=np.float32), alpha, 0.5)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    plane = (0.8 + 0.002 * xx + 0.001 * yy) if tilted else 0.9
    alpha2 = np.zeros((h, w), np.float32)
    alpha2[h // 4: h // 2, w // 3: w // 2] = 0.7
    near = Layer.from_straight(rng.random((h, w, 3), dtype=np.float32) * 3, alpha2, plane)
    return [bg, mid, near]


def _over(layers):
    out = np.zeros(layers[0].color.shape, np.float32)
    for layer in layers:
        out = layer.color + (1 - layer.alpha[..., None]) * out
    return out


def test_blur_zero_gives_the_all_in_focus_image():
    layers = _random_layers(np.random.default_rng(0), 40, 48)
    image, disparity, target = trace(layers, blur=0.0, focus_disparity=0.3, samples=64)
    np.testing.assert_allclose(image, _over(layers), atol=1e-6)
    np.testing.assert_allclose(target, image, rtol=1e-5, atol=1e-6)  # float32 sum of 64 weighted copies
    # Front-most surface with alpha >= 0.5.
    expected = np.where(layers[2].alpha >= 0.5, layers[2].disparity,
                        np.where(layers[1].alpha >= 0.5, 0.5, 0.1))
    np.testing.assert_allclose(disparity, expected, atol=1e-6)


def test_layer_at_the_focal_plane_is_unchanged():
    rng = np.random.default_rng(1)
    colour = rng.random((32, 40, 3), dtype=np.float32) * 4
    layer = Layer.from_straight(colour, np.ones((32, 40), np.float32), 0.6)
    _, _, target = trace([layer], blur=40.0, focus_disparity=0.6, aperture=Aperture(blades=6), samples=200)
    np.testing.assert_allclose(target, colour, rtol=1e-5, atol=1e-6)


def test_energy_is_preserved_for_a_blurred_layer():
    rng = np.random.default_rng(2)
    h, w = 64, 64
    colour = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    colour[24:40, 20:44] = rng.random((16, 24, 3)) * 10
    alpha[24:40, 20:44] = rng.random((16, 24))
    layer = Layer(color=colour * alpha[..., None], alpha=alpha, disparity=0.9)
    _, _, target = trace([layer], blur=20.0, focus_disparity=0.5, aperture=Aperture(blades=5, rotation=10),
                         samples=300)
    np.testing.assert_allclose(target.sum(axis=(0, 1)), layer.color.sum(axis=(0, 1)), rtol=1e-5)


def _point_scene(n, coc):
    colour = np.zeros((n, n, 3), np.float32)
    colour[n // 2, n // 2] = 50.0  # an HDR point, one pixel, 50x white
    return [Layer(color=colour, alpha=np.zeros((n, n), np.float32), disparity=1.0 if coc > 0 else 0.0)]


def _polygon_distance(x, y, blades, rotation, radius):
    """Signed distance (negative inside) to a regular polygon with vertices at rotation + 360k/N degrees."""
    if blades == 0:
        return np.hypot(x, y) - radius
    apothem = radius * math.cos(math.pi / blades)
    dist = -np.inf * np.ones_like(x)
    for k in range(blades):
        mid = math.radians(rotation + 360.0 * (k + 0.5) / blades)  # edge normal between vertices k, k+1
        dist = np.maximum(dist, x * math.cos(mid) + y * math.sin(mid) - apothem)
    return dist


@pytest.mark.parametrize("blades,rotation,coc", [(0, 0.0, 10.0), (6, 15.0, 11.0), (5, 0.0, 12.0), (5, 0.0, -12.0)])
def test_hdr_point_becomes_a_flat_aperture_shape(blades, rotation, coc):
    n = 49
    layers = _point_scene(n, coc)
    blur = abs(coc) / 0.5
    _, _, target = trace(layers, blur=blur, focus_disparity=0.5, aperture=Aperture(blades=blades, rotation=rotation),
                         samples=600)
    t = target[..., 0]
    # Pixel centres relative to the point's centre; behind the focal plane the shape turns by 180 degrees.
    yy, xx = np.mgrid[:n, :n].astype(np.float64)
    x, y = xx - n // 2, yy - n // 2
    sign = 1.0 if coc > 0 else -1.0
    dist = _polygon_distance(sign * x, sign * y, blades, rotation, abs(coc))
    inside, outside = t[dist < -1.5], t[dist > 1.5]
    assert inside.size > 100
    assert inside.std() / inside.mean() < 1e-4  # flat: no sampling pattern
    assert outside.max() == 0.0
    assert t.sum() == pytest.approx(50.0, rel=1e-5)
    # The level is the point's energy over the shape's area.
    area = math.pi * coc**2 if blades == 0 else 0.5 * blades * coc**2 * math.sin(2 * math.pi / blades)
    assert inside.mean() == pytest.approx(50.0 / area, rel=0.02)


def test_partial_occlusion_matches_the_analytic_coverage():
    """An opaque blurred foreground edge over an in-focus background: the background shows through by the
    fraction of the aperture disk that sees past the edge, (asin t + t sqrt(1 - t^2) + pi/2) / pi."""
    h, w, edge, radius = 8, 64, 32, 8.0
    red = np.zeros((h, w, 3), np.float32)
    red[..., 0] = 1.0
    blue = np.zeros((h, w, 3), np.float32)
    blue[..., 2] = 1.0
    fg_alpha = np.zeros((h, w), np.float32)
    fg_alpha[:, :edge] = 1.0
    layers = [Layer.from_straight(blue, np.ones((h, w), np.float32), 0.5),
              Layer.from_straight(red, fg_alpha, 1.0)]
    _, _, target = trace(layers, blur=radius / 0.5, focus_disparity=0.5, samples=4000)
    x = np.arange(w) + 0.5
    t = np.clip((edge - x) / radius, -1, 1)
    coverage = (np.arcsin(t) + t * np.sqrt(1 - t * t) + math.pi / 2) / math.pi
    row = target[h // 2]
    np.testing.assert_allclose(row[:, 0], coverage, atol=0.01)
    np.testing.assert_allclose(row[:, 2], 1 - coverage, atol=0.01)


def _plane_backward_map(plane, u, x, y):
    """Exact solution of p = x - c(p) u for c(p) = c0 + cx * col + cy * row (pixel indices), with x, y and p
    in pixel-edge coordinates: (I + u g^T) p = x - c0' u, solved by Sherman-Morrison."""
    c0, cx, cy = plane
    c0 = c0 - 0.5 * (cx + cy)
    g = np.array([cx, cy])
    rhs = np.stack([x - c0 * u[0], y - c0 * u[1]], -1)
    p = rhs - (rhs @ g)[..., None] * u / (1 + g @ u)
    np.testing.assert_allclose(p, np.stack([x, y], -1) - (c0 + p @ g)[..., None] * u, atol=1e-9)  # it solves it
    return p


def test_tilted_plane_backward_map_matches_closed_form():
    """The shipped path of a tilted plane (affine_grid then grid_sample) resamples a coordinate image at the
    exact backward map; the per-pixel iteration for surfaces that are not planes agrees with it."""
    import dataclasses

    import torch

    from lensblur.synth._tilted import plane_affine, prepare_tilted

    h, w, margin = 48, 64, 3
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    disp = torch.from_numpy(0.3 + 0.004 * xx - 0.003 * yy)
    layer = torch.zeros(4, h, w)
    layer[3] = 1.0
    layer[3, 20:28, 24:40] = 0.5  # a patch, so that the layer's region is a part of the frame
    tilted = prepare_tilted(layer, disp, 40.0, 0.4, 0.1, 1.0, 1, margin, (h - 2 * margin, w - 2 * margin))
    assert tilted.plane is not None
    y0, y1, x0, x1 = tilted.region
    assert 0 < y0 < y1 < h - 2 * margin and 0 < x0 < x1 < w - 2 * margin
    # A coordinate image: every canvas pixel holds its centre (x, y) in pixel-edge coordinates.
    coords = torch.stack([torch.from_numpy(xx) + 0.5, torch.from_numpy(yy) + 0.5, torch.zeros(h, w),
                          torch.zeros(h, w)])
    probe = dataclasses.replace(tilted, filtered=coords)
    offsets = torch.tensor([[0.7, -0.2], [-0.5, 0.6], [0.0, 1.0]], dtype=torch.float64)
    got = probe.sample(offsets, margin).numpy()
    assert got.shape == (3, 4, y1 - y0, x1 - x0)
    # Output pixel (row r, column c) of the region is canvas pixel (y0 + margin + r, x0 + margin + c).
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + margin + 0.5
    iterated = tilted.iterate(offsets, torch.from_numpy(gx).float(), torch.from_numpy(gy).float(),
                              torch.tensor([2.0 / w, 2.0 / h]))
    maps = plane_affine(tilted.plane, offsets).numpy()
    for k, u in enumerate(offsets.numpy()):
        p = _plane_backward_map(tilted.plane, u, gx, gy)
        a, b = maps[k, :, :2], maps[k, :, 2]
        np.testing.assert_allclose(np.stack([gx, gy], -1) @ a.T + b, p, atol=1e-9)  # the map handed to affine_grid
        # Bilinear resampling of a linear image is exact where it does not reach the repeated border.
        inside = (p[..., 0] >= 0.5) & (p[..., 0] <= w - 0.5) & (p[..., 1] >= 0.5) & (p[..., 1] <= h - 0.5)
        assert inside.mean() > 0.9
        np.testing.assert_allclose(got[k, 0][inside], p[..., 0][inside], atol=1e-4)
        np.testing.assert_allclose(got[k, 1][inside], p[..., 1][inside], atol=1e-4)
        # The per-pixel iteration (bilinear c(p), clamped at the canvas border) agrees away from the border.
        away = (p[..., 0] >= 8) & (p[..., 0] <= w - 8) & (p[..., 1] >= 8) & (p[..., 1] <= h - 8)
        np.testing.assert_allclose(iterated[0][k].numpy()[away], p[..., 0][away], atol=5e-3)
        np.testing.assert_allclose(iterated[1][k].numpy()[away], p[..., 1][away], atol=5e-3)


def test_tilted_layer_in_focus_band_and_same_result_twice():
    layers = _random_layers(np.random.default_rng(3), 40, 48)
    a = trace(layers, blur=12.0, focus_disparity=0.5, samples=100)
    b = trace(layers, blur=12.0, focus_disparity=0.5, samples=100)
    assert np.array_equal(a.target, b.target)
    assert np.isfinite(a.target).all()


def test_aperture_samples_are_uniform_over_the_shape():
    """Weighted cell centres reproduce the moments of the uniform unit disk: mean 0, E|u|^2 = 1/2."""
    pts = aperture_samples(Aperture(), 40)
    assert float(pts.weights.sum()) == pytest.approx(1.0)
    assert float(pts.offsets.norm(dim=1).max()) <= 1.0 + pts.cell / math.sqrt(2)
    mean = (pts.weights[:, None] * pts.offsets).sum(0)
    assert float(mean.abs().max()) < 1e-9
    second = float((pts.weights * (pts.offsets**2).sum(1)).sum())
    assert second == pytest.approx(0.5, rel=0.01)
    # A regular hexagon with circumradius 1: E|u|^2 = 5/12.
    hexagon = aperture_samples(Aperture(blades=6), 40)
    second = float((hexagon.weights * (hexagon.offsets**2).sum(1)).sum())
    assert second == pytest.approx(5 / 12, rel=0.01)


def test_bad_inputs_name_the_argument():
    good = Layer.from_straight(np.zeros((8, 8, 3)), np.ones((8, 8)), 0.5)
    with pytest.raises(InputError, match="layers"):
        trace([], blur=1.0, focus_disparity=0.5)
    with pytest.raises(ShapeError, match=r"layers\[1\]"):
        trace([good, Layer.from_straight(np.zeros((8, 9, 3)), np.ones((8, 9)), 0.5)], blur=1.0, focus_disparity=0.5)
    with pytest.raises(InputError, match="alpha"):
        trace([Layer(color=np.zeros((8, 8, 3), np.float32), alpha=np.full((8, 8), 2.0, np.float32), disparity=0.5)],
              blur=1.0, focus_disparity=0.5)
    with pytest.raises(InputError, match="disparity"):
        trace([Layer.from_straight(np.zeros((8, 8, 3)), np.ones((8, 8)), 1.5)], blur=1.0, focus_disparity=0.5)
    with pytest.raises(InputError, match="blur"):
        trace([good], blur=-1.0, focus_disparity=0.5)
    with pytest.raises(InputError, match="cat_eye"):
        trace([good], blur=1.0, focus_disparity=0.5, aperture=Aperture(cat_eye=0.3))
    steep = Layer.from_straight(np.zeros((8, 8, 3)), np.ones((8, 8)), np.tile(np.linspace(0, 1, 8), (8, 1)))
    with pytest.raises(InputError, match="fold"):
        trace([steep], blur=20.0, focus_disparity=0.5)
