"""The sRGB transfer curve against IEC 61966-2-1, written out independently here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lensblur._convert import decode_srgb
from lensblur.color import linear_to_srgb, srgb_to_linear


def iec_decode(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1:1999, section 4.2: sRGB value -> linear light."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def iec_encode(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1:1999, section 5.2: linear light -> sRGB value."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0.0031308), 1 / 2.4) - 0.055)


GRID = np.linspace(0.0, 1.0, 10001)


def test_decode_matches_iec_formula_float64():
    got = srgb_to_linear(torch.from_numpy(GRID)).numpy()
    np.testing.assert_allclose(got, iec_decode(GRID), rtol=0, atol=1e-12)


def test_encode_matches_iec_formula_float64():
    got = linear_to_srgb(torch.from_numpy(GRID)).numpy()
    np.testing.assert_allclose(got, iec_encode(GRID), rtol=0, atol=1e-12)


def test_float32_close_to_formula():
    x = torch.from_numpy(GRID.astype(np.float32))
    np.testing.assert_allclose(srgb_to_linear(x).numpy(), iec_decode(GRID), atol=2e-7)
    np.testing.assert_allclose(linear_to_srgb(x).numpy(), iec_encode(GRID), atol=2e-7)


def test_known_values_and_knees():
    # Mid grey 0.5 decodes to 0.21404114 (commonly tabulated); 1 and 0 are fixed points.
    v = srgb_to_linear(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(v, [0.0, 0.21404114048223255, 1.0], atol=1e-12)
    # The two pieces meet (the curve is continuous at its knees to within the standard's rounding).
    lo = torch.tensor([0.04045], dtype=torch.float64)
    assert abs(float(srgb_to_linear(lo)) - 0.04045 / 12.92) < 1e-12
    assert abs(float(((0.04045 + 0.055) / 1.055) ** 2.4) - 0.04045 / 12.92) < 1e-7


@pytest.mark.parametrize("bits", [8, 16])
def test_every_integer_code_round_trips(bits):
    full = 2**bits - 1
    codes = np.arange(full + 1)
    linear = srgb_to_linear(torch.from_numpy((codes / full).astype(np.float32)))
    back = np.round(linear_to_srgb(linear).numpy().astype(np.float64) * full).astype(np.int64)
    np.testing.assert_array_equal(back, codes)


def test_linear_round_trip_and_monotonic():
    c = torch.from_numpy(GRID)
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(c)).numpy(), GRID, atol=1e-12)
    assert bool((torch.diff(srgb_to_linear(c)) > 0).all())


def test_encode_clips_out_of_range():
    out = linear_to_srgb(torch.tensor([-0.5, 2.0, 1e6]))
    np.testing.assert_allclose(out.numpy(), [0.0, 1.0, 1.0], atol=1e-6)


def test_decoding_codes_by_table_equals_the_curve_per_code():
    """8- and 16-bit codes are decoded through a table of every code; each entry is the IEC 61966-2-1 curve
    itself (written out here in float64), so the table and the formula cannot drift apart."""
    for dtype, full in ((np.uint8, 255), (np.uint16, 65535)):
        codes = np.arange(full + 1, dtype=dtype).reshape(-1, 1)
        v = codes.astype(np.float64) / full
        curve = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        got = decode_srgb(codes, full)
        assert got.dtype == np.float32 and got.shape == codes.shape and got.flags.writeable
        np.testing.assert_allclose(got, curve, rtol=2e-6, atol=1e-8)
        assert np.array_equal(got, decode_srgb(codes.astype(np.int32), full))    # the same as the float path


def test_gradients_are_the_curves_derivatives():
    """Models train through the curve (pix2pix's and BokehDiff's pixels): autograd gives the derivative of each
    piece, written out here, and the input is left as it was."""
    inner = np.linspace(0.001, 0.999, 997)             # inside (0, 1), away from the clamps
    for curve, derivative in (
            (srgb_to_linear, lambda v: np.where(v <= 0.04045, 1 / 12.92, 2.4 / 1.055 * ((v + 0.055) / 1.055) ** 1.4)),
            (linear_to_srgb, lambda c: np.where(c <= 0.0031308, 12.92, 1.055 / 2.4 * c ** (1 / 2.4 - 1)))):
        x = torch.tensor(inner, requires_grad=True)
        curve(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), derivative(inner), rtol=1e-12)
        np.testing.assert_array_equal(x.detach().numpy(), inner)
