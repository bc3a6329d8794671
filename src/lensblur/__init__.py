"""lensblur: realistic, controllable lens blur (bokeh) for photographs and generated images.

The small public API::

    import lensblur
    image = lensblur.read_image("photo.jpg")                  # H x W x 3 float32, linear RGB
    disparity = lensblur.read_disparity("disp.png")           # H x W float32 in [0, 1], 1 = nearest
    lens = lensblur.Lens(focus_disparity=0.4, blur=30, aperture=lensblur.Aperture(blades=6))
    out = lensblur.render(image, disparity, lens)             # linear RGB
    lensblur.write_image("out.jpg", out)

Heavy parts (diffusion, depth models, training) live in subpackages that import their dependencies only
when used.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
import sys
import types

from .errors import InputError, LensblurError, MissingDependencyError, ModelNotFoundError

# The rest of the public API, imported when first used, so that ``import lensblur`` (and ``lensblur --help``)
# does not pay for torch: name -> the module that defines it.
_LAZY = {
    "read_depth": ".io", "read_disparity": ".io", "read_image": ".io", "write_image": ".io",
    "Aperture": ".lens", "Lens": ".lens", "focus_at_point": ".lens", "focus_in_box": ".lens",
    "focus_in_mask": ".lens", "render": ".render", "tune_allocator": "._memory",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lensblur' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``lensblur.render`` is the function, as it always was, though ``lensblur/render/`` is also a subpackage:
    importing the subpackage would otherwise bind its module over the lazily imported function's name."""

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return      # the subpackage stays reachable as sys.modules["lensblur.render"]
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "Aperture",
    "InputError",
    "Lens",
    "LensblurError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "__version__",
    "focus_at_point",
    "focus_in_box",
    "focus_in_mask",
    "read_depth",
    "read_disparity",
    "read_image",
    "render",
    "tune_allocator",
    "write_image",
]
