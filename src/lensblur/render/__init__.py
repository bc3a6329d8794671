"""Classical renderers: all-in-focus linear RGB + disparity + :class:`~lensblur.lens.Lens` -> bokeh.

``render`` is the numpy entry point; ``render_tensor`` works on ``(B, 3, H, W)`` / ``(B, 1, H, W)`` tensors.
Methods are looked up by name in :data:`METHODS`; a method is any callable
``fn(image, disparity, lens, **options) -> image`` on tensors, so other modules can add their own with
:func:`register_method`.

``dtype=`` renders in half precision (``float16``, ``bfloat16``) with the methods that take it
(:data:`PRECISIONS`: ``layered``); float32 is the default. Clipped lights are recovered at the input's
precision first, and what a device has no half kernel for is computed there in float32
(:func:`lensblur._device.fft_dtype`). The numpy entry returns float32 whatever the precision.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from .._convert import disparity_to_tensor, image_to_tensor, tensor_to_image
from .._device import resolve_device, resolve_dtype
from .._progress import Channel
from .._threads import coarse_parallel
from ..errors import InputError, ShapeError
from ..lens import Lens
from .highlights import check_highlights, recover_highlights

__all__ = ["METHODS", "PRECISIONS", "RenderMethod", "check_dtype", "register_method", "render", "render_tensor",
           "reporting"]


class RenderMethod(Protocol):
    def __call__(self, image: torch.Tensor, disparity: torch.Tensor, lens: Lens, **options) -> torch.Tensor: ...


METHODS: dict[str, Callable[[], RenderMethod]] = {}

PRECISIONS: dict[str, tuple[torch.dtype, ...]] = {}
"""The types each method renders in (``dtype=``); float32 for all."""


def register_method(name: str, factory: Callable[[], RenderMethod], *,
                    dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> None:
    """Register a renderer under a name, for ``method=name``.

    Args:
        name: the method's name; an existing one is replaced.
        factory: called with no arguments the first time the method is used, returns the renderer
            ``fn(image, disparity, lens, **options) -> image`` on tensors (so its imports stay lazy).
        dtypes: the types it renders in when given tensors of that type (``dtype=``), float32 among them.
    """
    METHODS[name] = factory
    PRECISIONS[name] = tuple(dict.fromkeys((torch.float32, *dtypes)))


def _scatter():
    from .scatter import render_scatter

    return render_scatter


def _layered():
    from .layered import render_layered

    return render_layered


def _gaussian():
    from .gaussian import render_gaussian

    return render_gaussian


# scatter sums in float64 by design (the exact reference); gaussian's row filter (a 1 x k depthwise
# convolution) takes seconds in float16 on the CPU in torch 2.14 once a row is 48 px, and a baseline gains
# nothing from speed.
register_method("layered", _layered, dtypes=(torch.float16, torch.bfloat16))
register_method("scatter", _scatter)
register_method("gaussian", _gaussian)

# The largest CoC radius accepted, as a fraction of the image's longer side: beyond it nothing is left of
# the picture and the request is almost certainly a unit mistake.
MAX_COC_FRACTION = 0.5


def render_tensor(image: torch.Tensor, disparity: torch.Tensor, lens: Lens, *, method: str = "layered",
                  highlights: str | float = "auto", dtype: str | torch.dtype | None = None,
                  **options) -> torch.Tensor:
    """Render bokeh on tensors.

    Args:
        image: ``(B, 3, H, W)`` linear RGB, float.
        disparity: ``(B, 1, H, W)`` disparity (larger is nearer), float.
        lens: the lens: focus disparity, blur scale (pixels of CoC radius per unit of disparity) and aperture.
        method: a name in :data:`METHODS`: ``"layered"`` (the default), ``"scatter"``, ``"gaussian"``, or
            one added by :func:`register_method`.
        highlights: the recovery of clipped lights (:mod:`lensblur.render.highlights`): ``"auto"`` (the
            default), ``"off"``, or a strength in [0, 4] (1 = auto). Images with values above 1 are HDR and
            never boosted.
        dtype: the precision to render in: ``None`` (the image's own), ``"float32"``, or ``"float16"`` /
            ``"bfloat16"`` for the methods of :data:`PRECISIONS` that take them (``"layered"``); the image is
            converted once, after the highlights are recovered (the disparity is left as it is: in bfloat16 it
            would move CoC radii by up to 0.2 % of the blur).
        **options: passed to the method (e.g. ``block=`` for ``"layered"``).

    Returns:
        ``(B, 3, H, W)`` linear RGB, of ``dtype`` when it is given.

    Raises:
        InputError: an unknown ``method``, a ``lens`` that is not a :class:`~lensblur.lens.Lens`, a CoC
            radius above half the image's longer side, ``highlights`` not ``"auto"``, ``"off"`` or in [0, 4],
            or a ``dtype`` that is not a precision's name or not one the method renders in.
        ShapeError: ``image`` not ``(B, 3, H, W)``, or ``disparity`` not ``(B, 1, H, W)`` of its size.
    """
    if method not in METHODS:
        raise InputError("method", expected=f"one of {', '.join(sorted(METHODS))}", got=method,
                         fix='pass method="layered" (the default), method="scatter" (the slow reference) or '
                             'another name in lensblur.render.METHODS')
    precision = None if dtype is None else check_dtype(dtype, method)
    if not isinstance(lens, Lens):
        raise InputError("lens", expected="a lensblur.Lens", got=type(lens).__name__,
                         fix="build one with lensblur.Lens(focus_disparity=..., blur=...)")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ShapeError("image", expected="(B, 3, H, W)", got=f"{tuple(image.shape)}",
                         fix="add the batch dimension (image[None]), or pass an H x W x 3 array to lensblur.render")
    if disparity.shape != (image.shape[0], 1, *image.shape[2:]):
        raise ShapeError("disparity", expected=f"the image's size {image.shape[-1]}x{image.shape[-2]}",
                         got=f"{disparity.shape[-1]}x{disparity.shape[-2]}",
                         fix="resize the map to the image with lensblur.io.resize_map")
    limit = MAX_COC_FRACTION * max(image.shape[-2:])
    # The largest |d - focus| is at the least or the greatest d (the rounded difference is monotonic in d).
    reach = lens.blur * float((torch.stack(torch.aminmax(disparity)) - lens.focus_disparity).abs().max())
    if reach > limit:
        raise InputError("blur", expected=f"a CoC radius of at most {limit:g} px for this "
                         f"{image.shape[-1]}x{image.shape[-2]} image", got=f"blur {lens.blur:g} (up to {reach:g} px)",
                         fix=f"e.g. blur={math.floor(lens.blur * limit / reach)} (the most for this map and focus); "
                             "typical values are 10 to 60 pixels")
    highlights = check_highlights(highlights)
    with coarse_parallel(options.get("threads"), device=image.device):     # its bands on the render's workers
        image = recover_highlights(image, highlights)
    if precision is not None:
        image = image.to(precision)     # the disparity is left as it is: CoC radii are computed in float32
    function = METHODS[method]()
    report = _PROGRESS.listener()
    if report is not None and "progress" not in options and "progress" in inspect.signature(function).parameters:
        options["progress"] = report
    return function(image, disparity, lens, **options)


def check_dtype(dtype: str | torch.dtype | None, method: str) -> torch.dtype:
    """The precision ``dtype`` names, checked against what ``method`` renders in (:data:`PRECISIONS`).

    Args:
        dtype: ``None`` (float32), a name (``"float32"``, ``"float16"``, ``"bfloat16"``) or a :class:`torch.dtype`.
        method: a name in :data:`METHODS`.

    Returns:
        The :class:`torch.dtype`.

    Raises:
        InputError: not a precision's name, or one ``method`` does not render in (the error names those that do).
    """
    out = resolve_dtype(dtype)
    types = PRECISIONS.get(method, (torch.float32,))
    if out not in types:
        def name(t: torch.dtype) -> str:
            return str(t).removeprefix("torch.")

        takes = [other for other, its in sorted(PRECISIONS.items()) if out in its]
        raise InputError("dtype", expected=f"{' or '.join(map(name, types))} for method {method} ({name(out)} is "
                         f"taken by {', '.join(takes) or 'no method'})", got=str(dtype),
                         fix=f"dtype=float32, or method={takes[0]}" if takes else "dtype=float32")
    return out


_PROGRESS = Channel("render progress")


def reporting(progress: Callable[[int, int], None]):
    """Within the block, renders by methods that report their progress (``layered``: its blocks) call
    ``progress(done, total)`` as they advance; others run as usual. What ``lensblur render`` shows its bar with.
    Blocks nest: inside another ``reporting`` block both callbacks are called (the inner one first), so a caller
    of ``lensblur render``'s code (``lensblur ui``) sees the progress its bar sees.

    Args:
        progress: the callback.
    """
    return _PROGRESS.listening(progress)


def render(image: np.ndarray, disparity: np.ndarray, lens: Lens, *, method: str = "layered",
           highlights: str | float = "auto", device: str | torch.device | None = None,
           dtype: str | torch.dtype = "float32", **options) -> np.ndarray:
    """Render bokeh on numpy arrays.

    Args:
        image: ``H x W x 3`` (or ``B x H x W x 3``) float32 linear RGB.
        disparity: ``H x W`` (or ``B x H x W``) disparity in [0, 1], larger is nearer, the image's size.
        lens: the lens: focus disparity, blur scale and aperture.
        method: ``"layered"`` (fast, the default), ``"scatter"`` (the exact, slow reference),
            ``"gaussian"`` (a plain depth-dependent Gaussian blur, a baseline), or any name in :data:`METHODS`.
        highlights: ``"auto"`` (the default: clipped lights are raised to their estimated energy),
            ``"off"``, or a strength in [0, 4] (see :mod:`lensblur.render.highlights`).
        device: where to render: ``"auto"`` (CUDA, else Apple's MPS, else the CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:N"``, ``"mps"``, or a :class:`torch.device`; ``None`` for the CPU.
        dtype: the precision to render in: ``"float32"`` (the default), or ``"float16"`` / ``"bfloat16"``
            (or the :class:`torch.dtype`) with ``method="layered"``, within 0.1 dB of float32 on the fidelity
            bench; meant for GPUs (on a CPU, whose FFTs stay float32, about as fast: docs/performance.md).
        **options: passed to the method (``threads=`` for ``"layered"``: how many blocks it renders at once).

    Returns:
        ``H x W x 3`` float32 linear RGB (``B x H x W x 3`` for batched input).

    Raises:
        ShapeError: ``image`` not ``H x W x 3``, or ``disparity`` not of its size (or batch).
        InputError: an image that is not finite floating-point linear RGB, a ``device`` that is not there, and
            as :func:`render_tensor`.
    """
    device = torch.device("cpu") if device is None else resolve_device(device)
    batched = np.asarray(image).ndim == 4
    with coarse_parallel(options.get("threads")):       # the boundary's bands on the render's workers
        x = image_to_tensor(image, device=device)
        d = disparity_to_tensor(disparity, device=device)
    if d.shape[0] != x.shape[0] or d.shape[-2:] != x.shape[-2:]:
        raise ShapeError("disparity", expected=f"the image's size {x.shape[-1]}x{x.shape[-2]}",
                         got=f"{d.shape[-1]}x{d.shape[-2]}" + (f" (batch {d.shape[0]})" if batched else ""),
                         fix="resize the map to the image with lensblur.io.resize_map")
    with torch.inference_mode():
        out = render_tensor(x, d, lens, method=method, highlights=highlights, dtype=dtype, **options)
    with coarse_parallel(options.get("threads")):
        return tensor_to_image(out, batched=batched)
