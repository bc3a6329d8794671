"""The steps of a render: the frame cut into blocks, and each block composited nearest first.

A block is rendered in four steps (:func:`render_one`): the blurred layers in front of the focus on a
half-resolution canvas; the sharp layers at full resolution on the tiles they reach; the blurred layers
behind the focus; and the finish, where what the layers behind let pass and the hidden-part estimates fill
what the visible light leaves uncovered. The layers' layout is decided once for the frame
(:func:`render_blocks`), so blocks give what the whole frame would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from ..._threads import parallel_bands, parallel_unordered
from ...lens import Lens
from ..kernel import kernel_half_size, psf
from .canvas import Canvas, TiledCanvas, Tiles
from .constants import BAND, BLOCK_MARGIN, COARSE, FILL_SCALE, NO_BLUR, TILE, TILE_GROUP
from .convolution import blur, blur_tiles_cat_eye, depthwise, frame_fractions, renormalise_borders
from .fill import add_fill
from .grid import Window, align, by_bands, pool, run_together, upsampled_rows
from .layout import (
    Layers,
    LayerStacks,
    Plan,
    Settings,
    coc_of,
    coc_range,
    fill_scale,
    fractional_index,
    layer_radii,
    layer_scale,
    layer_share,
    layer_share_into,
    layer_windows,
    plan_layers,
)

__all__ = ["BlurredLayer", "render_blocks", "render_one"]


def render_blocks(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, block: int,
                  settings: Settings, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Render one frame in blocks. What the blocks share is decided for the whole frame: the layers, each
    pixel's position between them, and which blurred layer behind the focus is composited at full size.

    Args:
        image: ``(1, 3, H, W)`` linear RGB.
        disparity: ``(1, 1, H, W)``.
        lens: the lens.
        block: the largest side of a block, pixels (margins excluded).
        settings: the layer spacing and the coarse kernel radius.
        progress: called with ``(blocks done, blocks in all)`` after each block, or None.

    Returns:
        ``(1, 3, H, W)`` linear RGB.
    """
    h, w = image.shape[-2:]
    low, high = coc_range(disparity, lens)
    reach = max(abs(low), abs(high))
    if reach < NO_BLUR:
        return image.clone()
    radii = layer_radii(low, high, min_step=settings.min_step, ratio=settings.ratio)
    t = by_bands(lambda d: fractional_index(coc_of(d, lens), radii).to(image.dtype), BAND, disparity)
    plan = plan_layers(radii, t, reach, settings.coarse_radius)
    overlap = 2 * plan.pad + BLOCK_MARGIN        # what a kept pixel's light, fill and presence depend on
    # Blocks start where every grid of the frame has a cell boundary, so they pool what the whole frame would.
    unit = 2 * fill_scale(layer_scale(reach, settings.coarse_radius))
    steps = [_block_step(side, overlap, block, unit) for side in (h, w)]
    if steps[0] >= h and steps[1] >= w:
        out = render_one(image, t, lens, plan, frame=(h, w), origin=(0, 0))
        if progress is not None:
            progress(1, 1)
        return out
    out = torch.empty_like(image)
    origins = [(top, left) for top in range(0, h, steps[0]) for left in range(0, w, steps[1])]

    def kept(origin: tuple[int, int]) -> torch.Tensor:
        top, left = origin
        bottom, right = min(h, top + steps[0]), min(w, left + steps[1])
        y0, y1 = max(0, align(top - overlap, unit)), min(h, bottom + overlap)
        x0, x1 = max(0, align(left - overlap, unit)), min(w, right + overlap)
        part = render_one(image[..., y0:y1, x0:x1], t[..., y0:y1, x0:x1], lens, plan, frame=(h, w),
                          origin=(y0, x0))
        return part[..., top - y0: bottom - y0, left - x0: right - x0]

    # Blocks are independent: they run on the workers of the render (each with torch on one thread).
    for done, (index, part) in enumerate(parallel_unordered(kept, origins), 1):
        top, left = origins[index]
        out[..., top: top + part.shape[-2], left: left + part.shape[-1]] = part
        if progress is not None:
            progress(done, len(origins))
    return out


def _block_step(side: int, overlap: int, block: int, unit: int) -> int:
    """The distance between blocks along a ``side`` of the frame: as few blocks as ``block`` (with its
    ``overlap``) allows, of equal sizes, rounded up to a multiple of ``unit``."""
    count = max(1, math.ceil((side - overlap) / block))
    return -(-math.ceil(side / count) // unit) * unit


@dataclass(slots=True)
class BlurredLayer:
    """Blurred layer ``index``'s ``(1, 3 + 1, h, w)`` light and alpha at its ``scale``, top-left ``origin`` in
    the block."""

    index: int
    values: torch.Tensor
    scale: int
    origin: tuple[int, int]


@dataclass(slots=True)
class Block:
    """One block's render in progress: its inputs, its layers' windows and stacks, and the canvas of
    hidden-part estimates (light and weight, no occlusion) that every layer adds to."""

    image: torch.Tensor
    t: torch.Tensor
    lens: Lens
    plan: Plan
    frame: tuple[int, int]
    origin: tuple[int, int]
    windows: list[Window | None]
    layers: Layers
    fill: Canvas

    @classmethod
    def start(cls, image: torch.Tensor, t: torch.Tensor, lens: Lens, plan: Plan, frame: tuple[int, int],
              origin: tuple[int, int]) -> Block:
        """A block's render before any layer is drawn (arguments as :func:`render_one`)."""
        windows = layer_windows(t, plan)
        return cls(image, t, lens, plan, frame, origin, windows, Layers(t, image, plan, windows),
                   Canvas.blank(FILL_SCALE, tuple(image.shape[-2:]), image))

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])

    def nearest_first(self) -> list[int]:
        """The layers with pixels in the block, nearest first."""
        return [i for i in reversed(range(len(self.plan.radii))) if self.windows[i] is not None]

    def draw(self, target: Canvas, indices: list[int]) -> None:
        """Blur layers ``indices`` (nearest first) and composite them on ``target``, adding their hidden-part
        estimates to the fill on the way.

        A layer's cut from its run, its fill and its compositing run in order; its blur, which needs only its
        cut, runs on one of the render's workers while the other adds its fill and composites the layer
        before it (each canvas gets the same operations in the same order as one by one).
        """
        previous: BlurredLayer | None = None
        for index in indices:
            parts = self.layers.layer(index)
            self.layers.add_cover(index, parts)     # drawn from now: it covers the farther layers of its run
            own = parts.stack[0, 3]
            if float(own.max()) <= 0.0:            # no light in the block
                continue
            last = previous

            def fill_and_draw(index=index, parts=parts, last=last) -> None:
                self._add_fill(index, parts)
                if last is not None:
                    _composite(target, last)

            current, _ = run_together([partial(self._blur, index, parts, own), fill_and_draw])
            previous = current
        if previous is not None:
            _composite(target, previous)

    def _blur(self, index: int, parts: LayerStacks, own: torch.Tensor) -> BlurredLayer:
        """Blurred layer ``index`` from its ``parts`` (``own``: its weight, at its scale)."""
        radius, s = float(self.plan.radii[index]), self.plan.scales[index]
        window = self.windows[index]
        frame_origin = (self.origin[0] + window.top, self.origin[1] + window.left)
        out = blur(parts.stack, self.lens, radius, s, frame_origin, self.frame, own)
        renormalise_borders(out, psf(self.lens.aperture, radius / s), s, frame_origin, self.frame)
        return BlurredLayer(index, out, s, (window.top, window.left))

    def _add_fill(self, index: int, parts: LayerStacks) -> None:
        """Layer ``index``'s hidden-part estimate added to the block's fill."""
        if float(parts.nearer.max()) > 0.0:
            window, s = self.windows[index], self.plan.scales[index]
            add_fill(self.fill, parts.fill, parts.nearer, float(self.plan.radii[index]), fill_scale(s),
                     (window.top, window.left), (self.origin[0] + window.top, self.origin[1] + window.left),
                     self.plan.pad)


def _composite(target: Canvas, layer: BlurredLayer) -> None:
    """A blurred ``layer`` composited on ``target``."""
    values, window = target.window(layer.values, layer.scale, layer.origin)
    target.draw(layer.index, values[:, :3], values[:, 3:4].clamp_min(0.0), window)


def render_one(image: torch.Tensor, t: torch.Tensor, lens: Lens, plan: Plan, *, frame: tuple[int, int],
               origin: tuple[int, int]) -> torch.Tensor:
    """Render one block of the frame.

    Args:
        image: ``(1, 3, h, w)`` linear RGB of the block.
        t: ``(1, 1, h, w)`` each pixel's position between the layers of ``plan``.
        lens: the lens.
        plan: the frame's layers (:class:`~.layout.Plan`).
        frame: the frame's ``(height, width)``: its borders and cat-eye positions are the frame's.
        origin: the block's top-left in the frame, pixels.

    Returns:
        ``(1, 3, h, w)`` linear RGB.
    """
    # 0. The block's layers with pixels, nearest first: blurred in front, sharp, blurred behind.
    block = Block.start(image, t, lens, plan, frame, origin)
    order = block.nearest_first()
    front = [i for i in order if plan.scales[i] > 1 and plan.radii[i] > 0]
    sharp = [i for i in order if plan.scales[i] == 1]
    back = [i for i in order if plan.scales[i] > 1 and plan.radii[i] < 0]
    # 1. Front layers: composited at COARSE, then brought to full resolution.
    canvas = composite_front(block, front)
    # 2. Sharp layers: at full resolution on their tiles; their hidden parts guessed together.
    if sharp:
        composite_sharp(block, canvas, sharp)
    # 3. Back layers: the first at full resolution, the rest on a COARSE canvas of their own.
    behind = composite_back(block, canvas, back)
    # 4. Finish: what the layers behind let pass, and the hidden parts where the view is not covered.
    return finish(canvas, behind, block.fill)


def composite_front(block: Block, front: list[int]) -> Canvas:
    """Composite the blurred layers in front of the focus at COARSE; the canvas at full resolution."""
    canvas = Canvas.blank(COARSE, block.size, block.image)
    block.draw(canvas, front)
    return canvas.rescaled(1)


def sharp_fill(block: Block, first: int, last: int, tiles: Tiles | None = None) -> None:
    """The hidden parts of the sharp layers ``first..last``, guessed together, added to the block's fill.

    With the layers' ``tiles`` (the parts of the block where they may have pixels), a band of rows makes their
    share only on the columns its tiles span: elsewhere it is zero, and only the cover by nearer layers is made.
    """

    def pooled_parts(t, image):
        # [min(own * image, own), own, beyond], made in place in one buffer
        parts = t.new_empty((t.shape[0], 5) + t.shape[2:])
        own = parts[:, 3:4]
        layer_share_into(t, first, last, own, parts[:, 4:5])
        torch.minimum(torch.mul(own, image, out=parts[:, :3]), own, out=parts[:, :3])
        return pool(parts, FILL_SCALE)

    if tiles is None:
        pooled = by_bands(pooled_parts, BAND, block.t, block.image)
    else:
        spans = tiles.column_spans(BAND)

        def pooled_band(rows: slice) -> torch.Tensor:
            span = spans[rows.start // BAND]
            t, image = block.t[..., rows, :], block.image[..., rows, :]
            beyond = pool(torch.sub(t, last).clamp_(0.0, 1.0), FILL_SCALE)     # as layer_share_into's
            out = beyond.new_zeros((beyond.shape[0], 5) + beyond.shape[2:])
            out[:, 4:] = beyond
            if span is not None:
                x0, x1 = span
                out[..., x0 // FILL_SCALE: -(-x1 // FILL_SCALE)] = pooled_parts(t[..., x0:x1], image[..., x0:x1])
            return out

        pooled = torch.cat(parallel_bands(pooled_band, block.t.shape[-2], BAND), dim=-2)
    if float(pooled[:, 4:].max()) > 0.0:
        add_fill(block.fill, pooled[:, :4], pooled[:, 4:], 0.0, FILL_SCALE, (0, 0), block.origin, block.plan.pad)


def composite_sharp(block: Block, canvas: Canvas, sharp: list[int]) -> None:
    """Draw the layers near the focus exactly, on the tiles they reach, on the full-size ``canvas``; add their
    hidden parts, guessed together (their blur is at most a few pixels; the fill is smooth).

    A tile's composite depends on that tile alone, so groups of :data:`TILE_GROUP` tiles each draw every sharp
    layer in order on the render's workers, beside the hidden parts' estimate.
    """
    halo = max(kernel_half_size(float(block.plan.radii[i])) for i in sharp)
    tiles = Tiles(block.t, block.image, min(sharp), max(sharp), halo)
    fill = partial(sharp_fill, block, min(sharp), max(sharp), tiles)
    if not len(tiles):
        fill()
        return
    tiled = TiledCanvas.of(canvas, tiles)
    layers = [layer for layer in (_SharpLayer.of(tiles, index, float(block.plan.radii[index]), block.lens,
                                                 block.origin, block.frame) for index in sharp) if layer is not None]
    groups = [slice(start, min(len(tiles), start + TILE_GROUP)) for start in range(0, len(tiles), TILE_GROUP)]
    jobs = [partial(_draw_sharp_group, tiled, tiles, group, layers, block.lens, block.frame, block.origin)
            for group in groups]
    *drawn, _ = run_together(jobs + [fill])
    tiled.settle_off_tiles()
    # As if drawn on all the tiles at once: what stays pending is the alpha of the last layer drawn on any tile
    # (the others' is cover); if none was, the canvas's own pending alpha.
    lit = [last for _, last in drawn if last is not None]
    tiled.start_pending(min(lit) if lit else tiled.layer, canvas.weight)
    run_together([partial(tiled.put_group, group, view, tiled.layer) for group, (view, _) in zip(groups, drawn)])
    tiled.put_back(canvas)


@dataclass(frozen=True, slots=True)
class _SharpLayer:
    """Sharp layer ``index`` on the tiles: its ``radius``, the tiles it may reach (``pick``; ``every``: all of
    them), its ``kernel``, and the block's row and column ``fractions`` of the kernel's light inside the frame
    when a border of the frame is within its reach (:func:`~.convolution.frame_fractions`), else ``None``."""

    index: int
    radius: float
    pick: torch.Tensor
    every: bool
    kernel: torch.Tensor
    fractions: tuple[torch.Tensor, torch.Tensor] | None

    @classmethod
    def of(cls, tiles: Tiles, index: int, radius: float, lens: Lens, origin: tuple[int, int],
           frame: tuple[int, int]) -> _SharpLayer | None:
        """Layer ``index`` on ``tiles``, or ``None`` when it reaches none of them."""
        pick = tiles.reached_by(index)
        if len(pick) == 0:
            return None
        kernel = psf(lens.aperture, radius)
        fy, fx = frame_fractions(kernel, tiles.size, 1, origin, frame)
        borders = bool((fy != 1.0).any()) or bool((fx != 1.0).any())
        return cls(index, radius, pick, len(pick) == len(tiles), kernel, (fy, fx) if borders else None)


def _draw_sharp_group(tiled: TiledCanvas, tiles: Tiles, group: slice, layers: list[_SharpLayer], lens: Lens,
                      frame: tuple[int, int], origin: tuple[int, int]) -> tuple[Canvas, int | None]:
    """Draw the sharp ``layers`` (nearest first) on the tiles ``group`` of ``tiled``.

    Returns the group's canvas (with its own pending alpha) and the last layer drawn on it (``None`` if none
    had light there).
    """
    view = tiled.group(group)
    t, image = tiles.halos(group)
    last = None
    for layer in layers:
        if layer.every:
            pick, local, window = group, slice(None), (...,)
        else:
            pick = layer.pick[(layer.pick >= group.start) & (layer.pick < group.stop)]
            if len(pick) == 0:
                continue
            local = pick - group.start
            window = (local,)
        out, lit = _sharp_light(t[local], image[local], tiles, pick, layer, lens, frame, origin)
        if lit:
            view.draw(layer.index, out[:, :3], out[:, 3:4].clamp_min(0.0), window)
            last = layer.index
    return view, last


def _sharp_light(t: torch.Tensor, image: torch.Tensor, tiles: Tiles, pick: torch.Tensor | slice, layer: _SharpLayer,
                 lens: Lens, frame: tuple[int, int], origin: tuple[int, int]) -> tuple[torch.Tensor, bool]:
    """A sharp ``layer``'s blurred light and alpha, ``(n, 3 + 1, TILE, TILE)``, on the tiles ``pick`` of
    ``tiles`` (indices, or a slice of them), whose positions and photo with their halos are ``t`` and
    ``image``; and whether it has any pixel there."""
    half = layer.kernel.shape[-1] // 2
    halo = tiles.halo
    # The tiles with as much of their halo as this kernel reaches.
    reach = (..., slice(halo - half, TILE + halo + half), slice(halo - half, TILE + halo + half))
    own, _ = layer_share(t[reach], layer.index, layer.index)
    stack = torch.empty((own.shape[0], 4) + own.shape[-2:], dtype=own.dtype, device=own.device)
    torch.mul(own, image[reach], out=stack[:, :3])
    stack[:, 3:] = own
    if lens.aperture.cat_eye > 0 and half > 0:
        out = blur_tiles_cat_eye(stack, tiles.rows[pick] + origin[0], tiles.cols[pick] + origin[1], lens,
                                 layer.radius, frame)
    elif half > 0:
        out = depthwise(stack, layer.kernel)
    else:
        out = stack
    if layer.fractions is not None:
        fy, fx = layer.fractions
        tiles.renormalise(out, fy.to(out), fx.to(out), pick)
    return out, float(own.max()) > 0.0


def composite_back(block: Block, canvas: Canvas, back: list[int]) -> Canvas | None:
    """Composite the blurred layers behind the focus: the first at full resolution on ``canvas``, the rest on
    a COARSE canvas, returned, where what the layers in front let pass is applied once at the end (covers in
    front of and among them combine as independent ones); ``None`` when there are no such others."""
    rest = list(back)
    if rest and rest[0] == block.plan.first_behind:
        block.draw(canvas, [rest.pop(0)])
    if not rest:
        return None
    coarse = Canvas.blank(COARSE, block.size, block.image)
    if canvas.pending is not None and canvas.pending.layer == block.plan.first_behind:    # blurred: smooth
        coarse.pending = canvas.carried_to(coarse)
        canvas.pending = None
    canvas.settle()
    block.draw(coarse, rest)
    return coarse


def finish(canvas: Canvas, behind: Canvas | None, fill: Canvas) -> torch.Tensor:
    """The block's render, finished in place on the full-size ``canvas``'s buffers, by bands.

    What the layers ``behind`` let pass, and where the view is not fully covered (behind a blurred edge,
    under a hole left by a nearer object) the layers' filled-in hidden parts from ``fill``; where there are
    none, the visible light is normalised. Returns the light, ``(1, 3, h, w)``.
    """
    h, w = canvas.size
    light, weight, covered = canvas.light, canvas.weight, canvas.covered
    # Light and weight enlarged together (one pass per band for both).
    behind_maps = None if behind is None else torch.cat([behind.light, behind.weight], dim=1)
    fill_maps = torch.cat([fill.light, fill.weight], dim=1)

    def finish_band(y0: int) -> None:
        y1 = min(h, y0 + BAND)
        band = (..., slice(y0, y1), slice(None))
        if behind_maps is not None:
            passed = (1.0 - covered[band]).clamp_(0.0, 1.0)
            up = upsampled_rows(behind_maps, COARSE, y0, y1, w)
            light[band].addcmul_(passed, up[:, :3])
            weight[band].addcmul_(passed, up[:, 3:])
        up = upsampled_rows(fill_maps, FILL_SCALE, y0, y1, w)
        fill_weight = up[:, 3:]
        has_fill = fill_weight > 1e-6
        colour = up[:, :3].div_(fill_weight.clamp_min(1e-6))
        remainder = (1.0 - weight[band]).clamp_(0.0, 1.0).mul_(has_fill)
        light[band].div_(torch.where(has_fill, weight[band].clamp_min(1.0), weight[band].clamp_min(1e-6)))
        light[band].addcmul_(remainder, colour)

    # The bands are independent (each writes its own rows): on the render's workers.
    run_together([partial(finish_band, y0) for y0 in range(0, h, BAND)])
    return light
