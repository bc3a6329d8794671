"""The layered renderer's building blocks that trade work for speed, each against a plain computation of
the same thing (torch's direct convolution, pooling and bilinear interpolation, or the whole-image version)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lensblur import Aperture, Lens
from lensblur.render.kernel import psf
from lensblur.render.layered import convolution, grid
from lensblur.render.layered.fill import box_mean
from lensblur.render.layered.grid import by_bands, pool, resample, upsampled_rows
from lensblur.render.layered.layout import fractional_index, layer_radii


def direct_convolution(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """True convolution, zero outside the frame, by torch's direct (cross-correlation) convolution."""
    k = kernel.shape[-1]
    weight = kernel.flip(0, 1).to(torch.float64).expand(x.shape[1], 1, k, k)
    return F.conv2d(x.to(torch.float64), weight, padding=k // 2, groups=x.shape[1])


def test_a_thin_layer_convolved_on_its_strips_equals_the_direct_convolution(monkeypatch):
    generator = torch.Generator().manual_seed(3)
    h, w = 150, 230
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    support = ((rows - 0.5 * cols).abs() < 3) | ((rows - 110) ** 2 + (cols - 40) ** 2 < 64)  # a band and a blob
    x = torch.rand((1, 4, h, w), generator=generator) * support
    weight = x[0, 3]              # the support as the renderer gives it: the layer's weight, zero off the layer
    assert convolution.strip_runs(weight) == convolution.strip_runs(support)
    kernel = psf(Aperture(blades=6, rotation=10), 12.0)
    used = []
    strips = convolution.convolve_strips
    monkeypatch.setattr(convolution, "convolve_strips", lambda *a: used.append(True) or strips(*a))

    sparse = convolution.convolve(x, kernel, weight)
    assert used, "the thin layer should have been convolved on strips"
    reference = direct_convolution(x, kernel)
    assert (sparse.double() - reference).abs().max() < 1e-5
    assert (convolution.convolve(x, kernel).double() - reference).abs().max() < 1e-5


def test_a_cat_eye_blur_finds_a_thin_layers_strips_once_and_equals_its_dense_blur(monkeypatch):
    generator = torch.Generator().manual_seed(4)
    h, w = 120, 200
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    x = torch.rand((1, 4, h, w), generator=generator) * ((rows - 0.4 * cols).abs() < 4)
    lens = Lens(0.5, 40.0, Aperture(blades=6, cat_eye=0.6))
    found, used = [], []
    runs, strips = convolution.strip_runs, convolution.convolve_strips
    monkeypatch.setattr(convolution, "strip_runs", lambda *a: found.append(True) or runs(*a))
    monkeypatch.setattr(convolution, "convolve_strips", lambda *a: used.append(True) or strips(*a))

    sparse = convolution.blur(x, lens, 24.0, 2, (0, 0), (2 * h, 2 * w), x[0, 3])
    assert len(found) == 1 and len(used) > 1, "one strip search for the several anchors' kernels"
    dense = convolution.blur(x, lens, 24.0, 2, (0, 0), (2 * h, 2 * w))
    assert (sparse - dense).abs().max() < 1e-5


def test_box_mean_is_the_mean_of_the_cells_inside_the_grid():
    x = torch.rand((1, 4, 37, 53), generator=torch.Generator().manual_seed(5))
    for reach in (1, 3, 8):
        size = 2 * reach + 1
        reference = F.avg_pool2d(x.double(), size, stride=1, padding=reach, count_include_pad=False)
        assert (box_mean(x, reach).double() - reference).abs().max() < 1e-5


def test_enlargement_by_phases_is_torchs_bilinear_on_cell_centres(monkeypatch):
    monkeypatch.setattr(grid, "PHASES_FROM", 0)        # every enlargement by phases, the smallest grids too
    generator = torch.Generator().manual_seed(13)
    tolerance = {torch.float64: 1e-12, torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 1e-2}

    for factor in (2, 4, 8):
        for shape in ((1, 4, 1, 1), (1, 3, 1, 7), (2, 5, 9, 1), (1, 1, 13, 17)):
            x = torch.rand(shape, generator=generator, dtype=torch.float64)
            reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
            for dtype, tol in tolerance.items():
                out = resample(x.to(dtype), float(factor))
                assert out.dtype == dtype and out.shape == reference.shape
                assert (out.double() - reference).abs().max() < tol
        strided = torch.rand((1, 6, 20, 30), generator=generator)[:, 1:5, 2:, ::2]
        reference = F.interpolate(strided, scale_factor=factor, mode="bilinear", align_corners=False)
        assert (resample(strided, float(factor)) - reference).abs().max() < 1e-6


def test_resample_enlarges_small_and_large_grids_alike(monkeypatch):
    # Small grids go through torch's kernel, large ones by phases (constants.PHASES_FROM): the same values.
    calls, phases = [], grid._enlarged

    def counted(x, factor, dim):
        calls.append(tuple(x.shape[-2:]))
        return phases(x, factor, dim)

    monkeypatch.setattr(grid, "_enlarged", counted)
    for shape in ((1, 4, 8, 16), (1, 4, 100, 200)):
        x = torch.rand(shape, generator=torch.Generator().manual_seed(17))
        reference = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        assert (resample(x, 2.0) - reference).abs().max() < 1e-6
    assert calls == [(100, 200), (100, 400)]       # only the large grid, by two passes


def test_work_by_bands_equals_work_on_the_whole_image():
    x = torch.rand((1, 3, 203, 61), generator=torch.Generator().manual_seed(7))

    def chain(image):
        return F.avg_pool2d(torch.cat([image.clamp(0.2, 0.8), image * image], 1), 2, ceil_mode=True)

    assert torch.equal(by_bands(chain, 64, x), chain(x))
    grid = torch.rand((1, 4, 26, 16), generator=torch.Generator().manual_seed(9))
    whole = resample(grid, 4)
    for y0, y1 in ((0, 64), (64, 101), (96, 104)):
        assert torch.allclose(upsampled_rows(grid, 4, y0, y1, 61), whole[..., y0:y1, :61], atol=1e-6)


def test_pooling_by_halvings_is_the_mean_of_each_cell_the_last_ones_partial():
    x = torch.rand((2, 3, 70, 53), generator=torch.Generator().manual_seed(11))
    for s in (2, 4, 8, 16):
        for h, w in ((64, 48), (70, 53), (5, 3), (1, 1)):
            part = x[..., :h, :w].double()
            reference = torch.stack([torch.stack([part[..., i: i + s, j: j + s].mean(dim=(-2, -1))
                                                  for j in range(0, w, s)], -1) for i in range(0, h, s)], -2)
            assert (pool(x[..., :h, :w], s).double() - reference).abs().max() < 1e-6


def test_the_position_between_layers_is_the_one_a_binary_search_gives():
    generator = torch.Generator().manual_seed(13)
    for low, high, min_step, ratio in ((-32.3, 60.0, 1.0, 0.12), (0.0, 5.0, 1.0, 0.12), (-3.0, 0.0, 0.3, 0.0),
                                       (-0.5, 0.7, 1.0, 0.12)):
        radii = layer_radii(low, high, min_step=min_step, ratio=ratio)
        r = radii.to(torch.float32)
        # Random CoCs, the radii themselves and their float neighbours (the ties and near-ties of a table).
        coc = torch.cat([torch.rand(20000, generator=generator) * (high - low + 4) + low - 2, r,
                         r.nextafter(r + 1), r.nextafter(r - 1)])
        hi = torch.bucketize(coc, r).clamp(1, len(r) - 1)
        lo = hi - 1
        expected = lo + ((coc - r[lo]) / (r[hi] - r[lo])).clamp(0.0, 1.0)
        assert torch.equal(fractional_index(coc, radii), expected)
