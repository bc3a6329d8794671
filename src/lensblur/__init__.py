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

from .errors import InputError, LensblurError, MissingDependencyError, ModelNotFoundError
from .io import read_depth, read_disparity, read_image, write_image
from .lens import Aperture, Lens, focus_at_point, focus_in_box, focus_in_mask
from .render import render

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
    "write_image",
]
