"""The convolution engine: each layer's light blurred by its point-spread function, zero outside the frame,
with the frame's borders renormalised.

Small kernels (sharp layers) are convolved directly, as one depthwise convolution (:func:`depthwise`); larger
ones (blurred layers, at their reduced scale) through FFTs of fast sizes (:func:`fft_convolve`), and a layer
that is a thin band across its window only on the strips of cells holding it (:func:`convolve_strips`).
With optical vignetting (cat-eye) the kernel changes across the frame: kernels made at the anchors of
:func:`~lensblur.render.kernel.cat_eye_grid` are blended bilinearly (:func:`blur`,
:func:`blur_tiles_cat_eye`). Near the frame's border a blur gathers light only from inside the frame;
:func:`renormalise_borders` divides by the share gathered, keeping the border's brightness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..._device import fft_dtype
from ...lens import Lens
from ..kernel import cat_eye_grid, psf
from .constants import DEPTHWISE_ROWS, STRIP, TILE

__all__ = ["Strip", "blur", "blur_tiles_cat_eye", "convolve", "convolve_strips", "depthwise", "fft_convolve",
           "fft_size", "frame_fractions", "renormalise_borders", "strip_runs"]


@dataclass(frozen=True, slots=True)
class Strip:
    """A run of ``length`` held ``STRIP``-square cells in cell row ``row``, from cell column ``first``."""

    row: int
    first: int
    length: int


def fft_size(n: int) -> int:
    """The smallest ``m >= n`` whose prime factors are 2, 3 and 5: FFTs of such sizes are fast."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def convolve(x: torch.Tensor, kernel: torch.Tensor, support: torch.Tensor | list[Strip] | None = None
             ) -> torch.Tensor:
    """True 2-D convolution (``out[y] = sum_o k[o] x[y - o]``), zero outside the frame.

    A layer is often a thin band across its window; then only the strips of cells holding it are convolved,
    and their results added up.

    Args:
        x: ``(1, C, H, W)`` values.
        kernel: ``(k, k)`` kernel, ``k`` odd, its centre at ``k // 2``.
        support: ``(H, W)`` non-negative map (a weight or a bool mask) that is zero where ``x`` is, or its
            :func:`strip_runs` (found once by a caller that convolves one ``x`` with several kernels), or ``None``.

    Returns:
        ``(1, C, H, W)``, the dtype of ``x``.
    """
    k = kernel.shape[-1]
    half = k // 2
    if k == 1:
        return x * float(kernel[0, 0])
    if k <= 7:
        return depthwise(F.pad(x, (half, half, half, half)), kernel)
    h, w = x.shape[-2:]
    size = (fft_size(h + 2 * half), fft_size(w + 2 * half))
    if support is not None:
        strips = strip_runs(support) if isinstance(support, torch.Tensor) else support
        if sum(fft_area(STRIP + 2 * half, strip.length * STRIP + 2 * half) for strip in strips) < size[0] * size[1]:
            return convolve_strips(x, kernel, strips)
    return fft_convolve(x, kernel, size)[..., half: half + h, half: half + w]


def fft_area(h: int, w: int) -> int:
    return fft_size(h) * fft_size(w)


def fft_convolve(x: torch.Tensor, kernel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Full linear convolution of ``(N, C, h, w)`` by FFTs of ``size``: ``out[y + half]`` gathers around
    ``x[y]``, ``h + k - 1`` rows (and columns) of it are valid. In float32 where the device has no FFT of
    ``x``'s type at this size (:func:`lensblur._device.fft_dtype`); the result in ``x``'s type."""
    k = kernel.shape[-1]
    dtype = fft_dtype(x.device, x.dtype, size)
    spectrum = torch.fft.rfft2(x.to(dtype), s=size)
    kpad = torch.zeros(size, dtype=dtype, device=x.device)
    kpad[:k, :k] = kernel.to(kpad)
    return torch.fft.irfft2(spectrum * torch.fft.rfft2(kpad), s=size).to(x.dtype)


def strip_runs(support: torch.Tensor) -> list[Strip]:
    """Runs of ``STRIP``-square cells where the non-negative ``(H, W)`` map ``support`` is not zero, row by row."""
    cells = F.max_pool2d(support[None, None].to(torch.float32), STRIP, ceil_mode=True)[0, 0] > 0
    # A run starts where a held cell follows an empty one and ends where an empty one follows a held one.
    edges = torch.diff(F.pad(cells.to(torch.int8), (1, 1)), dim=1)
    starts, ends = torch.nonzero(edges == 1).tolist(), torch.nonzero(edges == -1).tolist()
    return [Strip(row, first, end - first) for (row, first), (_, end) in zip(starts, ends)]


def convolve_strips(x: torch.Tensor, kernel: torch.Tensor, strips: list[Strip]) -> torch.Tensor:
    """:func:`convolve` of an ``x`` that is zero outside the given ``strips`` (see :func:`strip_runs`):
    strips of one length are convolved together, and their full results overlap-added."""
    k = kernel.shape[-1]
    half = k // 2
    h, w = x.shape[-2:]
    rows, cols = -(-h // STRIP), -(-w // STRIP)
    out = x.new_zeros(x.shape[:2] + (rows * STRIP + 2 * half, cols * STRIP + 2 * half))
    for length in sorted({strip.length for strip in strips}):
        group = [(strip.row * STRIP, strip.first * STRIP) for strip in strips if strip.length == length]
        span = length * STRIP
        # The strips, zero beyond the grid (no padded copy of the whole grid).
        stack = x.new_empty((len(group) * x.shape[0], x.shape[1], STRIP, span))
        for i, (y, x0) in enumerate(group):
            part = x[..., y: y + STRIP, x0: x0 + span]
            into = stack[i * x.shape[0]: (i + 1) * x.shape[0]]
            if part.shape[-2:] != (STRIP, span):
                into.zero_()
            into[..., : part.shape[-2], : part.shape[-1]] = part
        full = fft_convolve(stack, kernel, (fft_size(STRIP + k - 1), fft_size(span + k - 1)))
        for (y, x0), part in zip(group, full[..., : STRIP + k - 1, : span + k - 1]):
            out[..., y: y + STRIP + k - 1, x0: x0 + span + k - 1] += part
    return out[..., half: half + h, half: half + w]


def depthwise(x: torch.Tensor, kernel: torch.Tensor, strip: int = DEPTHWISE_ROWS) -> torch.Tensor:
    """Valid true convolution of every channel of ``(N, C, H, W)`` with one ``(k, k)`` kernel.

    The batch, and tall images cut into overlapping strips of ``strip`` output rows, are folded into the
    channels: on the CPU a depthwise convolution of one image with many small channels runs several times
    faster than the same work as a batch, or as one large image with few channels.
    """
    n, c, h, w = x.shape
    k = kernel.shape[-1]
    rows = h - k + 1
    m = -(-rows // strip) if rows > 2 * strip else 1
    if m > 1:
        x = F.pad(x, (0, 0, 0, m * strip + k - 1 - h)).unfold(2, strip + k - 1, strip).transpose(-2, -1)
    x = x.reshape(1, -1, x.shape[-2], w)
    weight = kernel.flip(0, 1).to(x).expand(x.shape[1], 1, k, k)
    out = F.conv2d(x, weight, groups=x.shape[1])
    return out.view(n, c, -1, w - k + 1)[:, :, :rows]


def blur(stack: torch.Tensor, lens: Lens, radius: float, s: int, origin: tuple[int, int],
         frame: tuple[int, int], support: torch.Tensor | None = None) -> torch.Tensor:
    """Blur a layer's stack with its point-spread function, zero outside the stack.

    Args:
        stack: ``(1, C, h, w)`` the layer's values at scale ``s``.
        lens: the lens; its aperture gives the kernel, cat-eye included.
        radius: the layer's signed CoC radius, full-resolution pixels.
        s: the stack's scale, a power of two.
        origin: the stack's top-left in the frame, pixels.
        frame: the frame's ``(height, width)``, pixels: where the cat-eye anchors are.
        support: as in :func:`convolve`.

    Returns:
        ``(1, C, h, w)``, the dtype of ``stack``.
    """
    if lens.aperture.cat_eye <= 0:
        return convolve(stack, psf(lens.aperture, radius / s), support)
    h, w = stack.shape[-2:]
    # Frame position of every coarse pixel's centre.
    ys = origin[0] + (torch.arange(h, dtype=stack.dtype, device=stack.device) + 0.5) * s
    xs = origin[1] + (torch.arange(w, dtype=stack.dtype, device=stack.device) + 0.5) * s
    grid = cat_eye_grid(lens.aperture.cat_eye, ys, xs, frame)
    # One support for every anchor's kernel: its strips are found once.
    strips = strip_runs(support) if support is not None else None
    out = torch.zeros_like(stack)
    for i, wy in enumerate(grid.rows):
        if float(wy.max()) <= 0:
            continue
        for j, wx in enumerate(grid.cols):
            if float(wx.max()) <= 0:
                continue
            kernel = psf(lens.aperture, radius / s, offset=grid.offsets[i][j])
            out += convolve(stack, kernel, strips) * (wy[:, None] * wx[None, :])
    return out


def blur_tiles_cat_eye(stack: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, lens: Lens, radius: float,
                       frame: tuple[int, int]) -> torch.Tensor:
    """Valid convolution of tile stacks with the cat-eye kernels, blended between anchors as :func:`blur`.

    Args:
        stack: ``(n, C, TILE + 2 m, TILE + 2 m)`` tiles with a margin ``m`` of at least the kernel's half size.
        rows: ``(n, TILE)`` the frame rows of each tile's pixels; ``cols`` likewise for the columns.
        lens: the lens, with ``aperture.cat_eye > 0``.
        radius: the layer's signed CoC radius, pixels.
        frame: the frame's ``(height, width)``, pixels.

    Returns:
        ``(n, C, TILE, TILE)``.
    """
    grid = cat_eye_grid(lens.aperture.cat_eye, rows.to(stack.dtype) + 0.5, cols.to(stack.dtype) + 0.5, frame)
    out = stack.new_zeros((stack.shape[0], stack.shape[1], TILE, TILE))
    for i, wy in enumerate(grid.rows):          # (tiles, TILE)
        for j, wx in enumerate(grid.cols):
            pick = torch.nonzero((wy.amax(dim=1) > 0) & (wx.amax(dim=1) > 0), as_tuple=True)[0]
            if len(pick) == 0:
                continue
            kernel = psf(lens.aperture, radius, offset=grid.offsets[i][j])
            grow = (kernel.shape[-1] // 2) - (stack.shape[-1] - TILE) // 2      # a smaller kernel: crop less
            part = stack[pick]
            if grow < 0:
                part = part[..., -grow: part.shape[-2] + grow, -grow: part.shape[-1] + grow]
            part = depthwise(part, kernel)
            out[pick] += part * (wy[pick][:, None, :, None] * wx[pick][:, None, None, :])
    return out


def frame_fractions(kernel: torch.Tensor, shape: tuple[int, int], s: int, origin: tuple[int, int],
                    frame: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Share of the kernel's light that each row and each column of a grid gathers from inside the frame.

    Near the frame's border a blur only gathers light from inside it; dividing by the product of the row
    and column fractions (exact along straight borders, close at corners) keeps the border's brightness.
    The grid has ``shape`` cells of ``s`` pixels, its top-left at ``origin`` in the frame. Edges of a crop
    that lie inside the frame are not borders. A row or column whose whole kernel lies inside the frame gets
    exactly 1 (not the kernel's sum, which is 1 only up to rounding): nothing to renormalise there.
    """
    k = kernel.shape[-1]
    half = k // 2
    rows = kernel.sum(dim=1).to(torch.float32)   # light falling dy = i - half rows away
    cols = kernel.sum(dim=0).to(torch.float32)

    def fraction(weights: torch.Tensor, n: int, start: int, limit: int) -> torch.Tensor:
        # Coarse pixel i sits at frame position (start + (i + 0.5) * s); it gathers from offsets -half..half
        # (in coarse pixels), each of which must land inside [0, limit).
        pos = (start + (torch.arange(n, dtype=torch.float32) + 0.5) * s)[:, None]
        offsets = (torch.arange(k, dtype=torch.float32) - half)[None, :] * s
        inside = ((pos - offsets) >= 0) & ((pos - offsets) < limit)
        share = (inside.float() * weights.flip(0)[None, :]).sum(dim=1).clamp_min(1e-6)
        return torch.where(inside.all(dim=1), 1.0, share)

    return (fraction(rows, shape[0], origin[0], frame[0]).to(kernel.device),
            fraction(cols, shape[1], origin[1], frame[1]).to(kernel.device))


def renormalise_borders(x: torch.Tensor, kernel: torch.Tensor, s: int, origin: tuple[int, int],
                        frame: tuple[int, int]) -> None:
    """Divide, in place, the rows and columns of a blurred grid near the frame's border by the share of the
    kernel's light they gather from inside the frame (see :func:`frame_fractions`)."""
    half = kernel.shape[-1] // 2
    if all(start + (0.5 - half) * s >= 0 and start + (n - 0.5 + half) * s < limit
           for start, n, limit in zip(origin, x.shape[-2:], frame)):
        return      # no border within the kernel's reach
    fy, fx = frame_fractions(kernel, x.shape[-2:], s, origin, frame)
    for dim, f in ((-2, fy), (-1, fx)):
        short = torch.nonzero(f != 1.0).flatten()
        if len(short) == 0:
            continue
        f = f.to(x)
        for part in (short[short < len(f) // 2], short[short >= len(f) // 2]):
            if len(part):
                lo, hi = int(part.min()), int(part.max()) + 1
                view = x.narrow(dim, lo, hi - lo)
                view /= f[lo:hi, None] if dim == -2 else f[lo:hi]
