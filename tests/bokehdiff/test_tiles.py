"""The tile layouts of lensblur.bokehdiff.tiles: the release's, and windows that keep a margin of context
around the core each contributes (``tile_margin``), checked against a local operator applied to the whole
image."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lensblur.bokehdiff.tiles import blend, context_tiles, crop_top_left, tiles, time_ids
from lensblur.errors import InputError


def box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    """A ``(2 radius + 1)``-wide box mean with zeros beyond the edges: what a tile sees is all it can use."""
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(x, (radius,) * 4), k, stride=1)


@pytest.mark.parametrize(("height", "width", "tile", "margin"), [(100, 150, 32, 8), (40, 100, 32, 4), (20, 90, 32, 6),
                                                                  (64, 64, 16, 7)])
def test_cores_lie_inside_their_windows_with_the_margin_and_cover_the_image(height, width, tile, margin):
    layout = context_tiles(height, width, tile, margin)
    covered = torch.zeros(height, width, dtype=torch.bool)
    for (wy, wx, wh, ww), (cy, cx, ch, cw) in layout:
        assert (wh, ww) == (min(tile, height), min(tile, width))
        assert 0 <= wy and wy + wh <= height and 0 <= wx and wx + ww <= width
        assert wy <= cy and cy + ch <= wy + wh and wx <= cx and cx + cw <= wx + ww
        # at least the margin of context on every side that is not the image's edge
        for core_edge, window_edge, image_edge in ((cy, wy, 0), (cx, wx, 0)):
            assert core_edge - window_edge >= margin or window_edge == image_edge
        for core_end, window_end, image_end in ((cy + ch, wy + wh, height), (cx + cw, wx + ww, width)):
            assert window_end - core_end >= margin or window_end == image_end
        covered[cy:cy + ch, cx:cx + cw] = True
    assert covered.all()


def test_margin_zero_is_the_release_layout():
    assert context_tiles(100, 150, 64, 0) == [(t, t) for t in tiles(100, 150, 64)]
    assert len(context_tiles(128, 128, 32, 8)) > len(tiles(128, 128, 32))


def test_a_constant_still_blends_to_itself():
    layout = context_tiles(100, 150, 32, 8)
    out = blend(lambda window: torch.full((1, 4, window[2], window[3]), -1.5), layout, (1, 4, 100, 150))
    torch.testing.assert_close(out, torch.full((1, 4, 100, 150), -1.5), rtol=0, atol=1e-6)


def test_blur_crosses_tile_edges_only_with_a_margin():
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    radius = 3
    whole = box_blur(image, radius)

    def predict(window):
        y, x, h, w = window
        return box_blur(image[..., y:y + h, x:x + w], radius)

    release = blend(predict, tiles(96, 128, 32), tuple(image.shape))
    kept = blend(predict, context_tiles(96, 128, 32, radius), tuple(image.shape))
    assert (release - whole).abs().max() > 0.01          # the release's tiles miss what lies beyond their edges
    torch.testing.assert_close(kept, whole, rtol=0, atol=1e-5)
    short = blend(predict, context_tiles(96, 128, 32, radius - 1), tuple(image.shape))
    assert (short - whole).abs().max() > 1e-3            # a margin below the operator's reach is not enough


@pytest.mark.parametrize("margin", [-1, 16, 2.5, True])
def test_a_margin_out_of_range_is_refused(margin):
    with pytest.raises(InputError, match="tile_margin"):
        context_tiles(100, 100, 32, margin)


def test_a_tiles_crop_ids_in_latents_or_pixels():
    window = (3, 5, 8, 8)
    assert crop_top_left(window, 8, "latent") == (3, 5)
    assert crop_top_left(window, 8, "pixels") == (24, 40)
    assert crop_top_left((0, 0, 8, 8), 8, "pixels") == (0, 0)
    with pytest.raises(InputError, match="crop_coords"):
        crop_top_left(window, 8, "latents")


def test_time_ids_are_sdxls_original_crop_target_with_the_images_size():
    assert time_ids((32, 48), (2, 4)) == [32, 48, 2, 4, 32, 48]
