"""Metrics against independent implementations: scikit-image (PSNR, SSIM), OpenCV (Laplacian) and a
direct numpy Brenner gradient."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lensblur.errors import InputError, ShapeError
from lensblur.metrics import brenner, psnr, ssim, variance_of_laplacian

SK = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


@pytest.fixture
def pair(textured, rng):
    degraded = np.clip(cv2.GaussianBlur(textured, (5, 5), 1.0) + rng.normal(0, 0.02, textured.shape), 0, 1)
    return textured, degraded


def grey255(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114) * 255.0


def brenner_direct(grey: np.ndarray, region: np.ndarray) -> float:
    """Sum of (I(x+2, y) - I(x, y))^2 over pixels (x, y) of the region whose x + 2 is inside the image."""
    total = 0.0
    h, w = grey.shape
    for y in range(h):
        for x in range(w - 2):
            if region[y, x]:
                total += (grey[y, x + 2] - grey[y, x]) ** 2
    return total


# --- fidelity ----------------------------------------------------------------------------------------


def test_ssim_matches_skimage_rgb(pair):
    a, b = pair
    expected = structural_similarity(a, b, data_range=1.0, channel_axis=-1, **SK)
    assert abs(ssim(a, b, data_range=1.0) - expected) < 1e-4
    assert 0.3 < expected < 0.99  # a real difference, not a trivial case


def test_ssim_matches_skimage_grey_and_255(pair):
    a, b = (np.round(x[..., 1] * 255) for x in pair)
    expected = structural_similarity(a, b, data_range=255.0, **SK)
    assert abs(ssim(a, b, data_range=255.0) - expected) < 1e-4


def test_ssim_skimage_default_variant_matches_skimage_defaults_on_uint8(pair):
    """scikit-image's defaults (7 x 7 uniform window, sample covariance) on 8-bit values, data range 255: what
    the scripts that defined EBB! Val294 compute."""
    a, b = (np.round(x * 255).astype(np.uint8) for x in pair)
    expected = structural_similarity(a, b, data_range=255, channel_axis=-1)
    got = ssim(a.astype(np.float64), b.astype(np.float64), data_range=255.0, variant="skimage-default")
    assert abs(got - expected) < 1e-6
    assert abs(got - ssim(a / 255.0, b / 255.0, data_range=1.0, variant="skimage-default")) < 1e-9
    assert abs(got - ssim(a / 255.0, b / 255.0, data_range=1.0)) > 1e-3   # the variants really differ
    with pytest.raises(InputError, match="^variant: expected one of gaussian, skimage-default"):
        ssim(a, b, data_range=255.0, variant="uniform")


def test_ssim_box_is_the_skimage_map_mean_over_the_box(pair):
    a, b = pair
    _, smap = structural_similarity(a, b, data_range=1.0, channel_axis=-1, full=True, **SK)
    pad = 5  # the Gaussian window's radius: int(3.5 * 1.5 + 0.5); scikit-image crops it from the mean
    x0, y0, x1, y1 = 2, 8, 30, 40
    inner = smap[max(y0, pad):min(y1, a.shape[0] - pad), max(x0, pad):min(x1, a.shape[1] - pad)]
    assert abs(ssim(a, b, data_range=1.0, box=(x0, y0, x1, y1)) - inner.mean()) < 1e-4


def test_ssim_identical_is_one(textured):
    assert ssim(textured, textured, data_range=1.0) == pytest.approx(1.0, abs=1e-12)


def test_psnr_matches_skimage(pair):
    a, b = pair
    assert psnr(a, b, data_range=1.0) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-9)
    box = (3, 4, 40, 30)
    expected = peak_signal_noise_ratio(a[4:30, 3:40], b[4:30, 3:40], data_range=1.0)
    assert psnr(a, b, data_range=1.0, box=box) == pytest.approx(expected, abs=1e-9)
    mask = np.zeros(a.shape[:2])
    mask[::3, ::2] = 1
    expected = 10 * math.log10(1.0 / np.mean((a[mask > 0] - b[mask > 0]) ** 2))
    assert psnr(a, b, data_range=1.0, mask=mask) == pytest.approx(expected, abs=1e-9)
    assert psnr(a, a, data_range=1.0) == math.inf


def test_fidelity_argument_errors(pair):
    a, b = pair
    with pytest.raises(ShapeError, match="^image_test: expected the shape of image_true"):
        psnr(a, b[:-1], data_range=1.0)
    with pytest.raises(ShapeError, match="^image_test: "):
        ssim(a, b[..., :1], data_range=1.0)
    for bad in (None, 0, -1):
        with pytest.raises(InputError, match="^data_range: .*never guessed"):
            ssim(a, b, data_range=bad)
    with pytest.raises(InputError, match="^mask: expected at most one of box and mask.*mask=None"):
        psnr(a, b, data_range=1.0, box=(0, 0, 5, 5), mask=np.ones(a.shape[:2]))
    with pytest.raises(InputError, match="^box: expected x0 < x1"):
        psnr(a, b, data_range=1.0, box=(0, 0, 65, 5))
    with pytest.raises(InputError, match="^box: expected a region reaching more than 5 pixels"):
        ssim(a, b, data_range=1.0, box=(0, 0, 64, 4))
    with pytest.raises(InputError, match="^image_true: expected images larger than 11 pixels"):
        ssim(a[:8, :8], b[:8, :8], data_range=1.0)


# --- focus -------------------------------------------------------------------------------------------


def test_variance_of_laplacian_matches_opencv(textured):
    grey = grey255(textured)
    lap = cv2.Laplacian(grey, cv2.CV_64F)
    assert variance_of_laplacian(textured) == pytest.approx(lap.var(), rel=1e-10)
    assert variance_of_laplacian(textured, box=(5, 6, 30, 44)) == pytest.approx(lap[6:44, 5:30].var(), rel=1e-10)
    mask = np.zeros(grey.shape)
    mask[:, :3] = 1  # touches the border, where the reflect-101 padding matters
    mask[20:25, 40:64] = 1
    assert variance_of_laplacian(textured, mask=mask) == pytest.approx(lap[mask > 0].var(), rel=1e-10)


def test_variance_of_laplacian_of_8bit_values(textured):
    codes = np.round(textured * 255).astype(np.uint8)
    lap = cv2.Laplacian(grey255(codes / 255.0), cv2.CV_64F)
    assert variance_of_laplacian(codes, data_range=255) == pytest.approx(lap.var(), rel=1e-10)
    grey_codes = codes[..., 0]
    lap_grey = cv2.Laplacian(grey_codes.astype(np.float64), cv2.CV_64F)
    assert variance_of_laplacian(grey_codes, data_range=255) == pytest.approx(lap_grey.var(), rel=1e-10)


def test_brenner_matches_direct_sum(textured):
    grey = grey255(textured)
    everything = np.ones(grey.shape, bool)
    assert brenner(textured) == pytest.approx(brenner_direct(grey, everything), rel=1e-10)
    box = np.zeros(grey.shape, bool)
    box[6:44, 50:64] = True  # reaches the right border: the last two columns have no right partner
    assert brenner(textured, box=(50, 6, 64, 44)) == pytest.approx(brenner_direct(grey, box), rel=1e-10)
    mask = np.zeros(grey.shape)
    mask[10:12, 1:60:4] = 1
    assert brenner(textured, mask=mask) == pytest.approx(brenner_direct(grey, mask > 0), rel=1e-10)


def test_focus_scores_fall_with_blur(textured):
    blurred = cv2.GaussianBlur(textured, (0, 0), 2.0)
    assert variance_of_laplacian(blurred) < 0.2 * variance_of_laplacian(textured)
    assert brenner(blurred) < 0.5 * brenner(textured)
    flat = np.full((16, 16, 3), 0.4)
    assert variance_of_laplacian(flat) == 0.0 and brenner(flat) == 0.0


def test_focus_argument_errors(textured):
    with pytest.raises(ShapeError, match="^mask: expected the image's size"):
        brenner(textured, mask=np.ones((4, 4)))
    with pytest.raises(InputError, match="^mask: expected at least one pixel set"):
        variance_of_laplacian(textured, mask=np.zeros(textured.shape[:2]))
    with pytest.raises(InputError, match="^box: "):
        brenner(textured, box=(10, 10, 5, 20))
    with pytest.raises(ShapeError, match="^image: expected an H x W x 3 or H x W array"):
        brenner(np.zeros((4, 4, 4)))


def test_perceptual_metric_scores_one_pair_and_refuses_a_batch():
    """__call__ returns the distance of one pair; a batch of several is an error, not its first item."""
    import torch

    from lensblur.metrics.perceptual import PerceptualMetric

    metric = PerceptualMetric("mean-abs", lambda x, y: (x - y).abs().mean(dim=(1, 2, 3)))
    a, b = np.zeros((4, 5, 3), np.float32), np.full((4, 5, 3), 0.25, np.float32)
    assert metric(a, b) == pytest.approx(0.25)
    assert metric(torch.zeros(3, 4, 5), torch.full((1, 3, 4, 5), 0.5)) == pytest.approx(0.5)
    with pytest.raises(ShapeError, match=r"^image_true: expected one image pair.*a batch of 2 pairs"):
        metric(torch.zeros(2, 3, 4, 5), torch.ones(2, 3, 4, 5))
    assert metric.distance(torch.zeros(2, 3, 4, 5), torch.ones(2, 3, 4, 5)).tolist() == [1.0, 1.0]


# --- focus-score variants ------------------------------------------------------------------------------


def test_uint8_grey_vol_is_opencv_laplacian_on_8bit_grey(textured):
    """pyimagesearch's recipe, which the GBSD paper cites: 8-bit grey, then cv2.Laplacian(CV_64F).var()."""
    codes = np.round(textured * 255).astype(np.uint8)
    c = codes.astype(np.float64)
    grey = np.round(c[..., 0] * 0.299 + c[..., 1] * 0.587 + c[..., 2] * 0.114).astype(np.uint8)
    expected = cv2.Laplacian(grey, cv2.CV_64F).var()
    assert variance_of_laplacian(codes, data_range=255.0, grey="uint8") == pytest.approx(expected, rel=1e-12)
    assert variance_of_laplacian(textured, grey="uint8") == pytest.approx(expected, rel=1e-12)
    assert variance_of_laplacian(grey, data_range=255.0, grey="uint8") == pytest.approx(expected, rel=1e-12)
    box = (3, 5, 40, 30)
    inner = cv2.Laplacian(grey, cv2.CV_64F)[5:30, 3:40]
    assert variance_of_laplacian(textured, grey="uint8", box=box) == pytest.approx(inner.var(), rel=1e-12)
    # OpenCV's own grey conversion is within one level of the rounded weights
    assert np.abs(cv2.cvtColor(codes, cv2.COLOR_RGB2GRAY).astype(int) - grey.astype(int)).max() <= 1


def test_pertuz_brenner_is_the_mean_of_max_of_signed_differences_squared(textured):
    """Pertuz et al.'s BREN, written out from its definition: DH, DV 2-pixel differences, max, squared, mean."""
    g = grey255(textured)
    dh, dv = np.zeros_like(g), np.zeros_like(g)
    dh[:, :-2] = g[:, 2:] - g[:, :-2]
    dv[:-2, :] = g[2:, :] - g[:-2, :]
    expected = (np.maximum(dh, dv) ** 2).mean()
    assert brenner(textured, variant="pertuz") == pytest.approx(expected, rel=1e-9)
    assert brenner(textured, variant="pertuz", box=(0, 0, 10, 12)) == pytest.approx(
        (np.maximum(dh, dv) ** 2)[:12, :10].mean(), rel=1e-9)
    with pytest.raises(InputError, match="^variant: expected one of brenner1976, pertuz"):
        brenner(textured, variant="zahniser")


def test_blur_map_is_the_normalised_laplacian_magnitude(textured):
    from lensblur.metrics import blur_map

    expected = np.abs(cv2.Laplacian(grey255(textured), cv2.CV_64F))
    out = blur_map(textured)
    assert out.dtype == np.float32 and out.shape == textured.shape[:2]
    np.testing.assert_allclose(out, expected / expected.max(), atol=1e-6)
    assert float(blur_map(np.full((8, 8, 3), 0.5)).max()) == 0.0
