"""The layered renderer: fast, occlusion-aware bokeh for photos.

The disparity range is cut into layers whose CoC radii are close enough that a blend of two neighbours is
indistinguishable from the radius in between (``min_step`` pixels apart near focus, ``ratio`` of the radius
farther out). A pixel belongs to its two nearest layers with linear ("hat") weights, so blur varies
continuously with disparity: no banding on a ground plane.

Compositing follows the reference model (:mod:`lensblur.render.scatter`) layer by layer, nearest first:
each layer's blurred light passes in the proportion of the view not yet covered by nearer layers,
``1 - min(1, coverage of nearer layers)``, so a nearer surface hides a farther one by its coverage. The
immediate neighbour does not count as nearer: a pixel between two layers is split over both (that is what
makes blur continuous) and is one surface, which must not hide half of itself. Each layer is also extended
under the pixels that hide it, with colours pulled in from its own visible pixels (a push-pull pyramid);
where the view is not fully covered by visible light (behind the soft edge of a blurred foreground, or near
a hole left by a sharp one) those hidden-part estimates fill the remainder, each weighted by how much of
its layer is present nearby (what continues behind a surface is most likely what is around it). So:

- a sharp foreground over a blurred background: no foreground colour bleeds into the background and no
  blurred background leaks over the foreground;
- a blurred foreground spreads semi-transparently over what is behind it, and behind its soft edge one
  sees the filled-in background, not smeared foreground.

Where the work goes, and how it is kept small:

- Layers within 4 px of focus ("sharp") are exact at full resolution, but only on the 64 px tiles each of
  them reaches (in a photo the in-focus part is usually small).
- Blurred layers are blurred with their aperture-shaped point-spread function through an FFT at a reduced
  scale ``s``, a power of two leaving about ``coarse_radius`` pixels of kernel radius, with the frame's
  borders renormalised. The layers of one scale on one side of the focus (a "run") are pooled to that
  scale once. A layer that is a thin band across its window is convolved only on the strips of cells
  holding it. Those in front of the focus are composited on a half-resolution canvas; those behind it on
  another, and what the layers in front of them let pass is applied once at the end (covers in front of
  and among them then combine as independent ones).
- Hidden-part estimates are smooth guesses, made and accumulated at quarter resolution.
- The frame is rendered in blocks with margins of twice the largest CoC: memory stays bounded whatever the
  size, and a layer absent from a block costs nothing there.
- Chains of operations on whole images run by bands of rows that stay in the cache
  (:func:`~lensblur.render.layered.grid.by_bands`).
- torch runs on one thread; blocks, and bands of rows, run on a few Python threads at once
  (:func:`lensblur._threads.coarse_parallel`): no barrier after each of thousands of small operations, so
  a core taken by another program slows one piece of work instead of every operation. Inside a block (all
  there is of a small frame) groups of tiles draw the sharp layers, and a blurred layer's blur runs beside
  the fill and compositing of the layer before it; each canvas gets the operations of one worker, in order.

The modules, in the order a render uses them:

- :mod:`.layout`: the layers, each pixel's position between them, their scales and windows, and each
  layer's share of the photo pooled to its scale;
- :mod:`.pipeline`: the frame cut into blocks, and a block's render as numbered steps;
- :mod:`.canvas`: the running composites, and the tiles of the sharp layers;
- :mod:`.convolution`: the blur of each layer (FFTs, strips, depthwise, cat-eye, border renormalisation);
- :mod:`.fill`: the hidden-part estimates (push-pull, box means);
- :mod:`.grid`: pooling, resampling and work by bands; :mod:`.constants`: the fixed numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..._threads import coarse_parallel
from ...lens import Lens
from .layout import Settings, layer_radii
from .pipeline import render_blocks

__all__ = ["layer_radii", "render_layered"]


def render_layered(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, coarse_radius: float = 12.0,
                   min_step: float = 1.0, ratio: float = 0.12, block: int = 3000,
                   progress: Callable[[int, int], None] | None = None, threads: int | None = None) -> torch.Tensor:
    """Render bokeh with the layered model (see the module doc).

    Args:
        image: ``(B, 3, H, W)`` linear RGB, float.
        disparity: ``(B, 1, H, W)``; the lens maps it to signed CoC radii.
        lens: the lens: focus, blur scale and aperture.
        coarse_radius: the kernel radius (pixels) a layer is blurred at after downscaling, > 0; larger is
            more faithful to the aperture's shape and slower.
        min_step: the least spacing of neighbouring layers' CoC radii, pixels, > 0.
        ratio: the layers' spacing as a fraction of the radius farther out, >= 0.
        block: frames are rendered in blocks of ``block`` pixels square, each with a margin of twice the
            reach of the largest CoC, so memory stays bounded whatever the size (and layers absent from a
            block cost nothing there). The default makes a 12 MP photo two blocks, one per worker on two
            cores: smaller blocks spend more of the work on their margins.
        progress: called with ``(blocks done, blocks in all)`` of each frame as its blocks finish, or None.
        threads: how many blocks (and bands of rows) are rendered at once, each with torch on one thread;
            None for :func:`lensblur._threads.worker_count` (``LENSBLUR_THREADS``, else torch's thread count
            capped by the cores this process may use). The result does not depend on it.

    Returns:
        ``(B, 3, H, W)`` linear RGB, the dtype of ``image``.
    """
    settings = Settings(coarse_radius=coarse_radius, min_step=min_step, ratio=ratio)
    with coarse_parallel(threads, device=image.device):
        frames = [render_blocks(image[i:i + 1], disparity[i:i + 1], lens, block, settings, progress)
                  for i in range(image.shape[0])]
    return frames[0] if len(frames) == 1 else torch.cat(frames)
