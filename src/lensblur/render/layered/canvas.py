"""Canvases and tiles: where the layers' blurred light is composited, nearest first.

A :class:`Canvas` holds the running composite at one scale: the light that passed, its accumulated weight,
and the view's coverage by nearer layers. A layer's light passes in the proportion ``1 - min(1, covered)``;
its alpha then counts as cover, but only once a layer that is not its immediate neighbour comes (a pixel
between two neighbouring layers is one surface), so it stays :class:`Pending` until then.

The sharp layers work at full resolution on the 64 px :class:`Tiles` they reach: :class:`TiledCanvas`
moves a full-size canvas's composite onto the tiles and puts it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from .constants import BAND, OUTSIDE_POSITION, TILE
from .grid import Window, resample, run_together, upsampled_rows

__all__ = ["MAPS", "Canvas", "Pending", "TiledCanvas", "Tiles", "add_product"]

# The maps a canvas holds.
MAPS = ("light", "weight", "covered")


@dataclass(slots=True)
class Pending:
    """The last drawn ``layer``'s ``alpha`` on a canvas's cells ``window`` (an index into the canvas's maps:
    slices, or ``(tile indices,)``, or ``(...,)`` for all), not yet counted as cover."""

    layer: int
    alpha: torch.Tensor
    window: tuple


def add_product(target: torch.Tensor, window: tuple, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    """``target[window] += x * y`` (or ``+= x``) in place, ``window`` a tuple of slices or ``(tile indices,)``."""
    if len(window) == 1 and isinstance(window[0], torch.Tensor):
        target.index_add_(0, window[0], x if y is None else x * y)
    elif y is None:
        target[window] += x
    else:
        target[window].addcmul_(x, y)


class Canvas:
    """Running composite at one scale: light, accumulated weight, coverage by nearer layers, and the last
    drawn layer's alpha, which counts as cover only once a layer that is not its neighbour comes.

    ``size``: the block's size in pixels; ``shape``: the maps' cells, ``None`` on tiles.
    """

    def __init__(self, scale: int, size: tuple[int, int], light: torch.Tensor, weight: torch.Tensor,
                 covered: torch.Tensor, shape: tuple[int, int] | None):
        self.scale, self.size, self.shape = scale, size, shape
        self.light, self.weight, self.covered = light, weight, covered
        self.pending: Pending | None = None
        self.extent: Window | None = None      # cells drawn on
        self.buffers: dict[str, torch.Tensor] = {}    # the maps' padded buffers, if they are views of some

    @classmethod
    def blank(cls, scale: int, size: tuple[int, int], like: torch.Tensor) -> Canvas:
        """An empty canvas of ``scale`` over a block of ``size`` pixels, the dtype and device of ``like``.

        At full resolution its maps are views of zeros padded to whole ``TILE``-square tiles, which
        :class:`TiledCanvas` cuts the sharp layers' tiles from without a padded copy.
        """
        shape = (-(-size[0] // scale), -(-size[1] // scale))
        if scale != 1:
            return cls(scale, size, like.new_zeros((1, 3) + shape), like.new_zeros((1, 1) + shape),
                       like.new_zeros((1, 1) + shape), shape)
        whole = (-(-shape[0] // TILE) * TILE, -(-shape[1] // TILE) * TILE)
        buffers = [like.new_zeros((1, c) + whole) for c in (3, 1, 1)]
        canvas = cls(scale, size, *(b[..., : shape[0], : shape[1]] for b in buffers), shape)
        canvas.buffers = dict(zip(MAPS, buffers))
        return canvas

    def padded(self, name: str, whole: tuple[int, int]) -> torch.Tensor | None:
        """Map ``name`` with the zeros beyond it up to ``whole`` rows and columns (a view: no copy), if its
        buffer is that size, else ``None``."""
        x, base = getattr(self, name), self.buffers.get(name)
        if base is not None and base.shape[-2:] == whole and x.data_ptr() == base.data_ptr() and \
                x.stride() == base.stride():
            return base
        return None

    def window(self, x: torch.Tensor, x_scale: int, origin: tuple[int, int]) -> tuple[torch.Tensor, tuple]:
        """``x`` (at ``x_scale``, top-left ``origin`` in pixels) resampled to this canvas, with its window."""
        x = resample(x, x_scale / self.scale)
        cy, cx = origin[0] // self.scale, origin[1] // self.scale
        n, m = min(x.shape[-2], self.shape[0] - cy), min(x.shape[-1], self.shape[1] - cx)
        return x[..., :n, :m], (..., slice(cy, cy + n), slice(cx, cx + m))

    def draw(self, index: int, light: torch.Tensor, alpha: torch.Tensor, window: tuple) -> None:
        """Composite layer ``index``'s ``light`` and ``alpha`` on cells ``window``, behind what covers them."""
        if self.pending is not None and self.pending.layer != index + 1:
            self.settle()
        self._grow(window)
        passed = (1.0 - self.covered[window]).clamp_(0.0, 1.0)
        add_product(self.light, window, light, passed)
        add_product(self.weight, window, alpha, passed)
        self.settle()
        self.pending = Pending(index, alpha, window)

    def settle(self) -> None:
        """Count the pending alpha as cover."""
        if self.pending is not None:
            add_product(self.covered, self.pending.window, self.pending.alpha)
            self._grow(self.pending.window)
            self.pending = None

    def carried_to(self, other: Canvas) -> Pending:
        """The pending alpha resampled onto ``other``, a canvas over the same block."""
        pending = self.pending
        origin = (pending.window[-2].start * self.scale, pending.window[-1].start * self.scale)
        values, window = other.window(pending.alpha, self.scale, origin)
        return Pending(pending.layer, values, window)

    def _grow(self, window: tuple) -> None:
        if isinstance(window[-1], slice):
            rows, cols = window[-2], window[-1]
            extent = self.extent or Window(rows.start, rows.stop, cols.start, cols.stop)
            self.extent = Window(min(extent.top, rows.start), max(extent.bottom, rows.stop),
                                 min(extent.left, cols.start), max(extent.right, cols.stop))

    def rescaled(self, scale: int) -> Canvas:
        """The same composite on a canvas of a finer scale (the pending alpha carried over)."""
        if scale == self.scale:
            return self
        other = Canvas.blank(scale, self.size, self.light)
        factor = self.scale // scale
        if self.extent is None:
            return other
        # Only around what was drawn: elsewhere the canvas is empty.
        top, left = max(0, self.extent.top - 1), max(0, self.extent.left - 1)
        bottom, right = min(self.shape[0], self.extent.bottom + 1), min(self.shape[1], self.extent.right + 1)
        region = (..., slice(top * factor, min(other.shape[0], bottom * factor)),
                  slice(left * factor, min(other.shape[1], right * factor)))
        # The maps enlarged together (one enlargement of five channels), by bands of rows on the render's workers.
        maps = torch.cat([getattr(self, name)[..., top:bottom, left:right] for name in MAPS], dim=1)
        rows, cols = region[1], region[2]

        def band(y0: int) -> None:
            y1 = min(rows.stop - rows.start, y0 + BAND)
            value = upsampled_rows(maps, factor, y0, y1, cols.stop - cols.start)
            part = (..., slice(rows.start + y0, rows.start + y1), cols)
            other.light[part], other.weight[part], other.covered[part] = value[:, :3], value[:, 3:4], value[:, 4:]

        run_together([partial(band, y0) for y0 in range(0, rows.stop - rows.start, BAND)])
        other.extent = Window(region[1].start, region[1].stop, region[2].start, region[2].stop)
        if self.pending is not None:
            other.pending = self.carried_to(other)
        return other


class Tiles:
    """The ``TILE``-square tiles of a block that the sharp layers ``first..last`` reach: where they have
    pixels, and within ``halo`` pixels of them.

    Gives the positions between the layers and the photo on a group of tiles with a ``halo`` of pixels around
    each (:meth:`halos`), so a kernel of at most that half size gives exact values on the tile; and holds each
    tile's block rows and columns (``rows``, ``cols``: ``(n, TILE)``).
    """

    def __init__(self, t: torch.Tensor, image: torch.Tensor, first: int, last: int, halo: int):
        h, w = t.shape[-2:]
        self.size, self.halo = (h, w), halo
        # Where a layer may have pixels, and up to ``halo`` pixels around them (the light they spread): the
        # range of positions on each tile with its halo.
        t_max, t_min = (self._tile_extreme(t, halo, value, reduce)
                        for value, reduce in ((-math.inf, torch.amax), (math.inf, torch.amin)))
        active = (t_max > first - 1) & (t_min < last + 1)
        self.grid = active.shape
        self.ty, self.tx = torch.nonzero(active, as_tuple=True)
        self.t_min, self.t_max = t_min[self.ty, self.tx], t_max[self.ty, self.tx]
        span = torch.arange(TILE, device=t.device)
        self.rows = self.ty[:, None] * TILE + span
        self.cols = self.tx[:, None] * TILE + span
        self._t, self._image = t, image

    @staticmethod
    def _tile_extreme(t: torch.Tensor, halo: int, outside: float, reduce) -> torch.Tensor:
        """``reduce`` (amax or amin) of ``(1, 1, h, w)`` over each tile with its halo, ``(tiles down, across)``;
        ``outside`` (the reduction's neutral value) beyond the frame."""
        h, w = t.shape[-2:]
        down, across = -(-h // TILE), -(-w // TILE)
        side = TILE + 2 * halo
        padded = F.pad(t, (halo, across * TILE + halo - w, halo, down * TILE + halo - h), value=outside)[0, 0]
        rows = reduce(padded.unfold(0, side, TILE), dim=-1)          # (tiles down, w + 2 halo)
        return reduce(rows.unfold(1, side, TILE), dim=-1)

    def halos(self, group: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """The positions and the photo on the tiles ``group`` with their halos, ``(n, 1 or 3, TILE + 2 halo,
        TILE + 2 halo)``: a position below every layer and black beyond the frame."""
        ty, tx = self.ty[group], self.tx[group]
        # Outside the frame: a position below every layer (no light, no cover) and black.
        return self._cut(self._t, ty, tx, OUTSIDE_POSITION), self._cut(self._image, ty, tx, 0.0)

    def _cut(self, x: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor, outside: float) -> torch.Tensor:
        """The tiles ``ty, tx`` of the full-size ``(1, C, h, w)`` map ``x`` with their halos, ``outside`` beyond
        it: the tiles whose halo lies inside gathered from its windows in one copy (no padded copy of the whole
        map), the others padded one by one."""
        h, w = self.size
        halo, side = self.halo, TILE + 2 * self.halo
        top, left = ty * TILE - halo, tx * TILE - halo
        inside = (top >= 0) & (top + side <= h) & (left >= 0) & (left + side <= w)
        shift = 1 if halo > 0 else 0          # the first window whose halo may lie inside is the second tile's
        start = shift * TILE - halo
        if halo <= TILE and bool(inside.all()) and len(ty):
            return self._windows(x, start)[ty - shift, tx - shift]
        out = x.new_empty((len(ty), x.shape[1], side, side))
        pick = torch.nonzero(inside, as_tuple=True)[0] if halo <= TILE else ty.new_empty(0)
        if len(pick):
            out[pick] = self._windows(x, start)[ty[pick] - shift, tx[pick] - shift]
        for i in torch.nonzero(~inside, as_tuple=True)[0].tolist():
            y0, x0 = int(top[i]), int(left[i])
            part = x[0, :, max(0, y0): min(h, y0 + side), max(0, x0): min(w, x0 + side)]
            out[i] = F.pad(part, (max(0, -x0), max(0, x0 + side - w), max(0, -y0), max(0, y0 + side - h)),
                           value=outside)
        return out

    def _windows(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """The ``TILE + 2 halo`` square windows of ``x`` every ``TILE`` pixels from ``start``, ``(tiles down, tiles
        across, C, side, side)`` (a view)."""
        side = TILE + 2 * self.halo
        return x[0, :, start:, start:].unfold(1, side, TILE).unfold(2, side, TILE).permute(1, 2, 0, 3, 4)

    def column_spans(self, rows: int) -> list[tuple[int, int] | None]:
        """For each band of ``rows`` rows of the block (a multiple of ``TILE``), the columns from its first tile
        to the end of its last (pixels), or ``None`` where it has none: beyond them the layers have no pixels."""
        h, w = self.size
        per = rows // TILE
        cells: list[tuple[int, int] | None] = [None] * -(-h // rows)
        for ty, tx in zip(self.ty.tolist(), self.tx.tolist()):
            lo, hi = cells[ty // per] or (tx, tx)
            cells[ty // per] = (min(lo, tx), max(hi, tx))
        return [None if c is None else (c[0] * TILE, min(w, (c[1] + 1) * TILE)) for c in cells]

    def reached_by(self, index: int) -> torch.Tensor:
        """The tiles (indices) that layer ``index`` may reach: some position within ``index +- 1``."""
        return torch.nonzero((self.t_max > index - 1) & (self.t_min < index + 1), as_tuple=True)[0]

    def __len__(self) -> int:
        return len(self.ty)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """A full-size ``(1, C, h, w)`` map padded to whole tiles."""
        h, w = self.size
        return F.pad(x, (0, self.grid[1] * TILE - w, 0, self.grid[0] * TILE - h))

    def blank(self, like: torch.Tensor) -> torch.Tensor:
        """Zeros the size of ``like`` (a full-size map) padded to whole tiles."""
        return like.new_zeros(like.shape[:2] + (self.grid[0] * TILE, self.grid[1] * TILE))

    def _blocks(self, padded: torch.Tensor) -> torch.Tensor:
        """A map padded to whole tiles seen as ``(C, tiles down, TILE, tiles across, TILE)``."""
        return padded[0].view(padded.shape[1], self.grid[0], TILE, self.grid[1], TILE)

    def gather(self, padded: torch.Tensor, group: slice = slice(None)) -> torch.Tensor:
        """The tiles ``group`` of a map padded to whole tiles, ``(n, C, TILE, TILE)``."""
        return self._blocks(padded)[:, self.ty[group], :, self.tx[group], :].contiguous()

    def put(self, padded: torch.Tensor, values: torch.Tensor, group: slice = slice(None)) -> torch.Tensor:
        """Replace the tiles ``group`` of a map padded to whole tiles by ``values``; the map at full size (a view)."""
        self._blocks(padded)[:, self.ty[group], :, self.tx[group], :] = values
        h, w = self.size
        return padded[..., :h, :w]

    def renormalise(self, x: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor, pick: torch.Tensor | slice) -> None:
        """Divide, in place, the ``(n, C, TILE, TILE)`` values ``x`` on the tiles ``pick`` by the product of the
        row and column fractions ``fy``, ``fx`` given for the whole block, unless every fraction there is 1 (no
        tile near the frame's border)."""
        fy = F.pad(fy, (0, self.grid[0] * TILE - len(fy)), value=1.0)[self.rows[pick]]
        fx = F.pad(fx, (0, self.grid[1] * TILE - len(fx)), value=1.0)[self.cols[pick]]
        if bool((fy != 1.0).any()) or bool((fx != 1.0).any()):
            x /= (fy[:, :, None] * fx[:, None, :])[:, None]


@dataclass(slots=True)
class TiledCanvas:
    """A full-size canvas's composite moved onto tiles, group by group (groups of tiles are independent: each
    can be drawn on by its own worker).

    ``padded``: the canvas's maps padded to whole tiles, which the groups are cut from (:meth:`group`) and put
    back into (:meth:`put_group`). ``pending``: the canvas's pending alpha on the same grid, and its ``layer``:
    cover off the tiles (:meth:`settle_off_tiles`), still pending on them.
    """

    tiles: Tiles
    padded: dict[str, torch.Tensor]
    size: tuple[int, int]
    pending: torch.Tensor | None
    layer: int | None
    passed_on: torch.Tensor | None = None      # the alpha left pending on the tiles once they are put back

    @classmethod
    def of(cls, canvas: Canvas, tiles: Tiles) -> TiledCanvas:
        """Move ``canvas`` (full size, scale 1) onto ``tiles``; its maps are not to be used until :meth:`put_back`."""
        whole = (tiles.grid[0] * TILE, tiles.grid[1] * TILE)
        padded = {}
        for name in MAPS:
            own = canvas.padded(name, whole)
            padded[name] = tiles.padded(getattr(canvas, name)) if own is None else own
        dense, layer = None, None
        if canvas.pending is not None:
            h, w = canvas.size
            dense = tiles.blank(canvas.weight)
            dense[..., :h, :w][canvas.pending.window] += canvas.pending.alpha
            layer, canvas.pending = canvas.pending.layer, None
        return cls(tiles, padded, canvas.size, dense, layer)

    def group(self, group: slice) -> Canvas:
        """The composite on the tiles ``group``, with the canvas's pending alpha there."""
        view = Canvas(1, self.size, *(self.tiles.gather(self.padded[name], group) for name in MAPS), shape=None)
        if self.pending is not None:
            view.pending = Pending(self.layer, self.tiles.gather(self.pending, group), (...,))
        return view

    def settle_off_tiles(self) -> None:
        """Count the canvas's pending alpha as cover off the tiles (call once every group has been cut)."""
        if self.pending is not None:
            self.padded["covered"] += self.pending      # on the tiles the groups' maps replace it

    def put_group(self, group: slice, view: Canvas, layer: int | None) -> None:
        """Put the composite ``view`` of the tiles ``group`` back; of its pending alpha, that of ``layer`` (the
        last layer drawn on any tile) stays pending, any other's counts as cover."""
        if view.pending is not None and view.pending.layer != layer:
            view.settle()
        for name in MAPS:
            self.tiles.put(self.padded[name], getattr(view, name), group)
        if view.pending is not None:
            alpha = view.pending.alpha.new_zeros((group.stop - group.start,) + view.pending.alpha.shape[1:])
            alpha[view.pending.window] = view.pending.alpha
            self.tiles.put(self.passed_on, alpha, group)

    def start_pending(self, layer: int | None, like: torch.Tensor) -> None:
        """Before :meth:`put_group`: the map the groups' pending alpha of ``layer`` goes into."""
        self.layer = layer
        self.passed_on = None if layer is None else self.tiles.blank(like)

    def put_back(self, canvas: Canvas) -> None:
        """``canvas`` becomes the composite, with what is still pending on the tiles (once every group is back)."""
        h, w = self.size
        for name in MAPS:
            setattr(canvas, name, self.padded[name][..., :h, :w])
        if self.passed_on is not None:
            canvas.pending = Pending(self.layer, self.passed_on[..., :h, :w], (...,))
