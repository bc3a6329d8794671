"""The layered renderer's work restricted to where it changes something (the sharp layers' tiles and the
columns they span, the rows and columns near the frame's border), each against the same step done on the whole
block (bit for bit: the restriction must not change a render) or a plain computation of it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lensblur import Aperture
from lensblur.render.kernel import psf
from lensblur.render.layered import convolution


def test_the_tiles_halos_are_the_windows_of_the_map_padded_beyond_the_frame():
    from lensblur.render.layered.canvas import Tiles
    from lensblur.render.layered.constants import OUTSIDE_POSITION, TILE

    generator = torch.Generator().manual_seed(2)
    for h, w, halo in ((300, 500, 4), (130, 70, 5), (200, 200, 0), (50, 40, 3)):
        t = torch.rand((1, 1, h, w), generator=generator) * 10
        image = torch.rand((1, 3, h, w), generator=generator)
        tiles = Tiles(t, image, 3, 6, halo)
        assert len(tiles)
        side = TILE + 2 * halo
        for group in (slice(None), slice(len(tiles) // 2, len(tiles))):
            for got, x, outside in zip(tiles.halos(group), (t, image), (OUTSIDE_POSITION, 0.0)):
                padded = F.pad(x, (halo, side + w, halo, side + h), value=outside)[0]
                expected = torch.stack([padded[:, y * TILE: y * TILE + side, x0 * TILE: x0 * TILE + side]
                                        for y, x0 in zip(tiles.ty[group].tolist(), tiles.tx[group].tolist())])
                assert torch.equal(got, expected)


def test_only_rows_and_columns_within_a_kernels_reach_of_the_frames_border_are_renormalised():
    for radius in (1.0, 2.3, 3.9, 9.0):                # kernels whose sums are 1 only up to rounding
        kernel = psf(Aperture(blades=6), radius)
        half = kernel.shape[-1] // 2
        fy, fx = convolution.frame_fractions(kernel, (40, 50), 2, (0, 300), (400, 600))
        assert torch.equal(fx, torch.ones(50))               # columns 300..400 of 600: no border within reach
        reached = (torch.arange(40) + 0.5) * 2 < 2 * half    # rows whose kernel reaches above the frame's top
        assert reached.any() and torch.equal(fy[~reached], torch.ones(int((~reached).sum())))
        assert fy[0] < 0.9                                    # the first row misses some of the kernel's light
        # A blurred grid of ones filling the frame is one again after renormalisation along its borders (the
        # corners are close, not exact); away from the border it is not touched.
        ones = torch.ones((1, 1, 40, 50))
        blurred = convolution.convolve(ones, kernel)
        before = blurred.clone()
        convolution.renormalise_borders(blurred, kernel, 1, (0, 0), (40, 50))
        assert (blurred[..., half: 40 - half, :] - 1.0).abs().max() < 1e-5
        assert (blurred[..., :, half: 50 - half] - 1.0).abs().max() < 1e-5
        assert torch.equal(blurred[..., half: 40 - half, half: 50 - half], before[..., half: 40 - half, half: 50 - half])


def test_the_sharp_layers_tiles_are_divided_by_their_fractions_only_near_the_border():
    from lensblur.render.layered.canvas import Tiles
    from lensblur.render.layered.constants import TILE

    h, w = 300, 500
    t = torch.full((1, 1, h, w), 4.0)
    tiles = Tiles(t, torch.rand((1, 3, h, w)), 3, 5, 4)
    kernel = psf(Aperture(), 3.9)
    fy, fx = convolution.frame_fractions(kernel, (h, w), 1, (0, 0), (h, w))
    x = torch.rand((len(tiles), 4, TILE, TILE), generator=torch.Generator().manual_seed(4))
    out = x.clone()
    tiles.renormalise(out, fy, fx, slice(None))
    pad_y, pad_x = F.pad(fy, (0, tiles.grid[0] * TILE - h), value=1.0), F.pad(fx, (0, tiles.grid[1] * TILE - w), value=1.0)
    for i in range(len(tiles)):
        ry, rx = pad_y[tiles.rows[i]], pad_x[tiles.cols[i]]
        assert torch.equal(out[i], x[i] / (ry[:, None] * rx[None, :]))
        interior = 0 < int(tiles.ty[i]) < tiles.grid[0] - 1 and 0 < int(tiles.tx[i]) < tiles.grid[1] - 1
        assert torch.equal(out[i], x[i]) == interior


def test_the_sharp_layers_hidden_parts_made_on_their_tiles_equal_those_made_on_the_whole_block():
    import lensblur
    from lensblur.render.layered.canvas import Tiles
    from lensblur.render.layered.layout import Settings, coc_of, fractional_index, layer_radii, plan_layers
    from lensblur.render.layered.pipeline import Block, sharp_fill

    h, w = 200, 300
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    # Far background, a small in-focus patch and a near object beside it, hiding some of it: the sharp layers
    # hold a few tiles only.
    disparity = torch.where((rows - 150) ** 2 + (cols - 115) ** 2 < 900, 0.9, 0.1).float()
    disparity[130:170, 40:90] = 0.5
    disparity = disparity[None, None]
    image = torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(9))
    lens = lensblur.Lens(0.5, 40.0)
    low, high = (float(v) for v in coc_of(torch.stack(disparity.aminmax()), lens))
    radii = layer_radii(low, high, min_step=1.0, ratio=0.12)
    t = fractional_index(coc_of(disparity, lens), radii)
    plan = plan_layers(radii, t, max(abs(low), abs(high)), Settings(12.0, 1.0, 0.12).coarse_radius)
    sharp = [i for i in range(len(radii)) if plan.scales[i] == 1]
    tiles = Tiles(t, image, min(sharp), max(sharp), 4)
    assert 0 < len(tiles) < tiles.grid[0] * tiles.grid[1] // 2
    fills = []
    for known in (tiles, None):
        block = Block.start(image, t, lens, plan, (h, w), (0, 0))
        sharp_fill(block, min(sharp), max(sharp), known)
        fills.append(block.fill)
    assert fills[0].weight.max() > 0
    for name in ("light", "weight"):
        assert torch.equal(getattr(fills[0], name), getattr(fills[1], name))
