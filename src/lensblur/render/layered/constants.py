"""The layered renderer's fixed numbers: the scales of its canvases, the sizes of its tiles, bands and
strips, and the thresholds and margins of its model (see :mod:`lensblur.render.layered`)."""

from __future__ import annotations

import torch

# Canvas scale of the blurred layers' composite.
COARSE = 2
# Scale of the hidden-part estimates (at least).
FILL_SCALE = 4
# Side of the tiles the sharp layers work on, in pixels.
TILE = 64
# Tiles per piece of a sharp layer's light made on one worker.
TILE_GROUP = 16
# Rows per band of the chains of operations on whole images (see grid.by_bands).
BAND = 64
# Height of the strips of cells a sparse layer is convolved in (pixels at its scale).
STRIP = 32
# Bilinear enlargements to at least this many values go by phases (grid._enlarged), smaller ones through
# torch's kernel: the phases' dozen operations cost some 60 us more, which they win back from about this size
# on this CPU (2x of 4 x 24 x 48 cells: 0.04 ms by torch, 0.11 ms by phases; of 4 x 64 x 128: 0.21 and 0.13 ms).
PHASES_FROM = 1 << 16
# Output rows per strip when a tall image is folded into channels for a depthwise convolution.
DEPTHWISE_ROWS = 64
# The position between the layers given to pixels beyond the frame on a tile's halo: below every layer
# (no light, no cover).
OUTSIDE_POSITION = -2.0
# Layers whose CoC radius is at most this many pixels are "sharp": drawn exactly at full resolution.
SHARP_RADIUS = 4.0
# Below this largest CoC radius (pixels) nothing is blurred: the render is the photo.
NO_BLUR = 1e-3
# Pixels added to the largest CoC radius, rounded up, for the reach of a layer's light (a kernel's half
# size) and for how far around it a layer counts as present behind a nearer one.
REACH_MARGIN = 2
# Pixels a block's margin has beyond twice that reach: what a kept pixel's light, fill and presence depend
# on, with room for the grids' alignment.
BLOCK_MARGIN = 8
# A layer's hidden-part estimate is spread by a box of half-width FILL_SPREAD times its blur radius: a box
# of half-width sqrt(3)/2 r has the variance of a disk of radius r.
FILL_SPREAD = 0.87
# In the push-pull pyramid a level's own colour takes over from the coarser estimate as its alpha rises
# to 1 / OWN_COLOUR_GAIN.
OWN_COLOUR_GAIN = 4.0
# The least weight a normalisation divides by (where there is no weight, 0 / WEIGHT_FLOOR = 0).
WEIGHT_FLOOR = 1e-12


def weight_floor(dtype: torch.dtype) -> float:
    """:data:`WEIGHT_FLOOR`, or the smallest normal number of ``dtype`` where that is larger (float16's,
    6.1e-5: 1e-12 rounds to 0 there, and 0 / 0 is NaN)."""
    return max(WEIGHT_FLOOR, torch.finfo(dtype).tiny)
