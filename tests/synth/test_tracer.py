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


def test_tilted_plane_fixed_point_matches_closed_form():
    """The backward map of a plane, p = x - c(p) u, solved by iteration, against Sherman-Morrison."""
    import torch

    from lensblur.synth.tracer import _prepare_tilted

    h, w = 30, 40
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    disp = torch.from_numpy(0.3 + 0.004 * xx - 0.003 * yy)
    layer = torch.rand(4, h, w, generator=torch.Generator().manual_seed(0))
    tilted = _prepare_tilted(layer, disp, 40.0, 0.4, 0.1, 1.0, 1, 0, (h, w))
    assert tilted.plane is not None
    offsets = torch.tensor([[0.7, -0.2], [-0.5, 0.6], [0.0, 1.0]], dtype=torch.float64)
    gy, gx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    px, py = tilted._plane_map(offsets, gx.float(), gy.float())
    # c(p) = c0' + g . p with p in pixel-edge coordinates; solve (I + u g^T) p = x - c0' u.
    c0, cx, cy = tilted.plane
    c0 = c0 - 0.5 * (cx + cy)
    g = np.array([cx, cy])
    for k, u in enumerate(offsets.numpy()):
        rhs = np.stack([gx.numpy() - c0 * u[0], gy.numpy() - c0 * u[1]], -1)
        corr = (rhs @ g)[..., None] * u / (1 + g @ u)
        p = rhs - corr
        np.testing.assert_allclose(px[k].numpy(), p[..., 0], atol=1e-3)
        np.testing.assert_allclose(py[k].numpy(), p[..., 1], atol=1e-3)
        # p really solves p = x - c(p) u
        cp = c0 + p @ g
        np.testing.assert_allclose(p[..., 0], gx.numpy() - cp * u[0], atol=1e-3)
    # The general per-pixel iteration (for maps that are not planes) agrees with the plane.
    qx, qy = tilted._iterate(offsets, gx.float(), gy.float(), torch.tensor([2.0 / w, 2.0 / h]))
    # (away from the canvas border, where the map is clamped rather than extended)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(qx[inner].numpy(), px[inner].numpy(), atol=5e-3)
    np.testing.assert_allclose(qy[inner].numpy(), py[inner].numpy(), atol=5e-3)


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
