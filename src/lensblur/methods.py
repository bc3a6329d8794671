"""The methods that turn a photo into bokeh, by name: what ``lensblur render --method`` and ``lensblur eval
--method`` run (one registry for both).

A method turns one dataset item into a predicted bokeh image::

    class EvalMethod(Protocol):
        name: str
        needs_disparity: bool      # True: items must carry a disparity map
        needs_lens: bool           # True: a Lens (blur, focus, aperture) must be known for each item
        def predict(self, image, *, disparity, lens, meta) -> np.ndarray: ...

``image`` is ``H x W x 3`` float32 linear RGB, ``disparity`` ``H x W`` in [0, 1] or ``None``, ``lens`` a
:class:`~lensblur.lens.Lens` or ``None``; the result is ``H x W x 3`` linear RGB of the same size.

Methods are registered by name with :func:`register_method` (a factory, called once per run with the run's
method options such as ``checkpoint``, so heavy models load only when asked for). Trained baselines
(``pix2pix``, ``cyclegan``) take the ``checkpoint`` of a ``lensblur train`` run; ``depth-threshold`` (the third paper's depth +
Gaussian blur beyond a threshold) blurs by the disparity it is given, or with ``checkpoint`` by the depth a
``lensblur train depth`` network predicts. Every classical renderer of :mod:`lensblur.render` is available under its
own name (``layered``, ``scatter``, ``gaussian``, and whatever is registered there later), plus ``identity``
(the input itself, the floor every method should beat).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .bokehdiff.method import bokehdiff
from .errors import InputError
from .lens import Lens

__all__ = [
    "METHODS",
    "ClassicalRenderer",
    "EvalMethod",
    "Identity",
    "available_methods",
    "get_method",
    "register_method",
]


@runtime_checkable
class EvalMethod(Protocol):
    """What :func:`~lensblur.eval.evaluate` scores (see the module doc for ``predict``'s contract).

    Attributes:
        name: the method's name in tables.
        needs_disparity: items must carry a disparity map.
        needs_lens: items (or the run's options) must give a lens.
    """

    name: str
    needs_disparity: bool
    needs_lens: bool

    def predict(self, image: np.ndarray, *, disparity: np.ndarray | None, lens: Lens | None,
                meta: dict[str, Any]) -> np.ndarray: ...


METHODS: dict[str, Callable[[], EvalMethod]] = {}


def register_method(name: str, factory: Callable[[], EvalMethod]) -> None:
    """Make ``factory()`` available as ``name`` to :func:`get_method` (and ``lensblur eval --method``).

    Args:
        name: the method's name; an existing name is replaced.
        factory: builds the :class:`EvalMethod`, without arguments.
    """
    METHODS[name] = factory


class Identity:
    """The input unchanged (as float32): the score of doing nothing.

    Attributes:
        name: ``"identity"``; it needs neither disparity nor a lens.
    """

    name = "identity"
    needs_disparity = False
    needs_lens = False

    def predict(self, image, *, disparity=None, lens=None, meta=None):
        return np.asarray(image, dtype=np.float32)


@dataclass
class ClassicalRenderer:
    """A renderer of :mod:`lensblur.render`, called through the public ``render(image, disparity, lens)``.

    Args:
        name: the renderer's name in ``lensblur.render.METHODS``.
        highlights: the recovery of clipped lights, ``"auto"`` (the default), ``"off"`` or a strength in [0, 4]
            (``render(..., highlights=)``); checked here, before anything is rendered.
        device: where to render (``render(..., device=)``: ``"auto"``, ``"cpu"``, ``"cuda"``, ...; None for
            the CPU).
        dtype: the precision (``render(..., dtype=)``): None or ``"float32"``, ``"float16"`` or ``"bfloat16"``
            for the renderers that take it (``layered``); checked here.
    """

    name: str
    highlights: str | float = "auto"
    device: str | None = None
    dtype: str | None = None
    needs_disparity = True
    needs_lens = True

    def __post_init__(self):
        from .render import check_dtype
        from .render.highlights import check_highlights

        self.highlights = check_highlights(self.highlights)
        check_dtype(self.dtype, self.name)

    def predict(self, image, *, disparity, lens, meta=None):
        from .render import render

        return render(image, disparity, lens, method=self.name, highlights=self.highlights, device=self.device,
                      dtype=self.dtype or "float32")


register_method("identity", Identity)


def _trained(name: str):
    def factory(checkpoint=None):
        from .baselines.trained import TrainedMethod

        return TrainedMethod(name, checkpoint)

    return factory


register_method("pix2pix", _trained("pix2pix"))
register_method("cyclegan", _trained("cyclegan"))
register_method("bggan", _trained("bggan"))
register_method("bokehdiff", bokehdiff)


def _depth_threshold(threshold=None, sigma=None, feather=None, checkpoint=None, near=None):
    from .baselines.threshold import DepthThreshold

    given = {"threshold": threshold, "sigma": sigma, "feather": feather, "checkpoint": checkpoint, "near": near}
    return DepthThreshold(**{k: v for k, v in given.items() if v is not None})


register_method("depth-threshold", _depth_threshold)


def _render_names() -> list[str]:
    from .render import METHODS as RENDERERS

    return sorted(RENDERERS)


def available_methods() -> list[str]:
    """The names :func:`get_method` takes.

    Returns:
        The registered methods and the classical renderers, sorted.
    """
    return sorted(set(METHODS) | set(_render_names()))


def _accepted(factory) -> set[str] | None:
    """The keyword options ``factory`` takes (None: any)."""
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _check_options(name: str, options: dict[str, Any], accepted: set[str] | None) -> None:
    unknown = [] if accepted is None else [k for k in options if k not in accepted]
    if unknown:
        takes = ", ".join(sorted(accepted)) or "none"
        raise InputError(unknown[0], expected=f"an option that method {name} takes ({takes})", got=options[unknown[0]],
                         fix=f"drop it for method={name}")


def get_method(name: str, *, argument: str = "name", **options: Any) -> EvalMethod:
    """The method registered as ``name``, or the classical renderer of that name.

    Args:
        name: one of :func:`available_methods`.
        argument: the name error messages give ``name``.
        options: the method's own options (``checkpoint=`` for a trained one); None values are left out.

    Returns:
        The :class:`EvalMethod`.

    Raises:
        InputError: an unknown name, or a factory whose object does not follow :class:`EvalMethod`.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if name in METHODS:
        factory = METHODS[name]
        _check_options(name, options, _accepted(factory))
        method = factory(**options)
    elif name in _render_names():
        _check_options(name, options, {"highlights", "device", "dtype"})
        method = ClassicalRenderer(name, **options)
    else:
        raise InputError(argument, expected=f"one of {', '.join(available_methods())}", got=name,
                         fix=f"e.g. {argument}=layered (classical renderer) or {argument}=identity")
    if not isinstance(method, EvalMethod):
        raise InputError(argument, expected="an object with name, needs_disparity, needs_lens and predict()",
                         got=type(method).__name__, fix="see lensblur.methods.EvalMethod")
    return method
