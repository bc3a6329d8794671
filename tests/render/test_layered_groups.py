"""The layered renderer's work inside one block, spread over the workers: the sharp layers drawn by groups of
tiles, a blurred layer's blur beside the fill and compositing of the layer before it, and the bands of the
enlargements and the finish. A frame of one block must give the same bytes on one and two workers, whatever
the size of the groups (one group of every tile is the drawing of the whole tiled canvas at once)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import lensblur
from lensblur.render import render_tensor

pipeline = importlib.import_module("lensblur.render.layered.pipeline")


def scene(seed: int = 7, size: tuple[int, int] = (300, 420)):
    """A textured photo (35 tiles of 64 px) with a near box over the far end of a slope and a focused patch:
    blurred layers in front and behind (the box's blur over them), and sharp layers on tiles of several groups."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = rng.random((h, w, 3)).astype(np.float32)
    image[30:38, 40:48] = 5.0                                   # a light above 1
    disparity = np.tile(np.linspace(0.1, 0.7, w, dtype=np.float32), (h, 1))
    disparity[60:160, 10:140] = 0.95
    disparity[200:280, 250:350] = 0.5                           # in focus
    return image, disparity


LENSES = [lensblur.Lens(0.5, 14.0, lensblur.Aperture()),
          lensblur.Lens(0.45, 10.0, lensblur.Aperture(blades=6)),
          lensblur.Lens(0.5, 12.0, lensblur.Aperture(blades=5, cat_eye=0.5))]


@pytest.mark.parametrize("lens", LENSES, ids=["circle", "hexagon", "cat-eye"])
def test_one_block_on_two_workers_equals_one_worker_whatever_the_tile_groups(lens, monkeypatch):
    image, disparity = scene()
    one = lensblur.render(image, disparity, lens, threads=1, highlights="off")
    assert np.isfinite(one).all() and not np.array_equal(one, image)
    assert np.array_equal(one, lensblur.render(image, disparity, lens, threads=2, highlights="off"))
    for group in (1, 5, 10_000):          # 10 000: every tile in one group, the whole tiled canvas at once
        monkeypatch.setattr(pipeline, "TILE_GROUP", group)
        assert np.array_equal(one, lensblur.render(image, disparity, lens, threads=2, highlights="off")), group


def test_sharp_layers_reach_several_groups():
    # The premise of the test above: more tiles than one group holds, and sharp layers on them.
    _, disparity = scene()
    h, w = disparity.shape
    assert -(-h // 64) * -(-w // 64) > 2 * pipeline.TILE_GROUP
    lens = LENSES[0]
    coc = lens.blur * (disparity - lens.focus_disparity)
    assert (np.abs(coc) <= 4.0).mean() > 0.1 and (coc > 4.0).any() and (coc < -4.0).any()


def test_render_tensor_in_inference_mode_on_two_workers():
    # The page renders its previews with render_tensor under torch.inference_mode, which is per thread: the
    # workers must run in it too (they change the caller's canvases in place).
    image, disparity = scene(11, (256, 384))
    x = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    d = torch.from_numpy(disparity)[None, None].contiguous()
    with torch.inference_mode():
        one = render_tensor(x, d, LENSES[1], highlights="off", threads=1)
        two = render_tensor(x, d, LENSES[1], highlights="off", threads=2)
    assert torch.equal(one, two)
    assert torch.equal(one, render_tensor(x, d, LENSES[1], highlights="off", threads=2))


def _sharp_all_tiles_at_once(block, canvas, sharp):
    """The sharp layers drawn as before the groups: on one canvas of every tile, layer by layer, with the
    canvas's pending alpha moved onto the tiles and back by hand (the reference for the groups' merging)."""
    from lensblur.render.kernel import kernel_half_size
    from lensblur.render.layered.canvas import MAPS, Canvas, Pending, Tiles

    halo = max(kernel_half_size(float(block.plan.radii[i])) for i in sharp)
    tiles = Tiles(block.t, block.image, min(sharp), max(sharp), halo)
    if len(tiles):
        h, w = canvas.size
        padded = {name: tiles.padded(getattr(canvas, name)).clone() for name in MAPS}
        on_tiles = Canvas(1, canvas.size, *(tiles.gather(padded[name]) for name in MAPS), shape=None)
        if canvas.pending is not None:
            dense = tiles.blank(canvas.weight)
            dense[..., :h, :w][canvas.pending.window] += canvas.pending.alpha
            on_tiles.pending = Pending(canvas.pending.layer, tiles.gather(dense), (...,))
            padded["covered"] += dense
        t, image = tiles.halos()
        for index in sharp:
            layer = pipeline._SharpLayer.of(tiles, index, float(block.plan.radii[index]), block.lens, block.origin,
                                            block.frame)
            if layer is None:
                continue
            pick = slice(None) if layer.every else layer.pick
            out, lit = pipeline._sharp_light(t[pick], image[pick], tiles, pick, layer, block.lens, block.frame,
                                             block.origin)
            if lit:
                on_tiles.draw(index, out[:, :3], out[:, 3:4].clamp_min(0.0), (...,) if layer.every else (pick,))
        for name in MAPS:
            setattr(canvas, name, tiles.put(padded[name], getattr(on_tiles, name)))
        canvas.pending = None
        if on_tiles.pending is not None:
            every = on_tiles.pending.alpha.new_zeros((len(tiles),) + on_tiles.pending.alpha.shape[1:])
            every[on_tiles.pending.window] = on_tiles.pending.alpha
            canvas.pending = Pending(on_tiles.pending.layer, tiles.put(tiles.blank(canvas.weight), every), (...,))
    pipeline.sharp_fill(block, min(sharp), max(sharp))


@pytest.mark.parametrize("lens", LENSES, ids=["circle", "hexagon", "cat-eye"])
def test_groups_of_tiles_equal_every_tile_drawn_at_once(lens, monkeypatch):
    image, disparity = scene()
    grouped = lensblur.render(image, disparity, lens, threads=2, highlights="off")
    monkeypatch.setattr(pipeline, "composite_sharp", _sharp_all_tiles_at_once)
    assert np.array_equal(grouped, lensblur.render(image, disparity, lens, threads=1, highlights="off"))
