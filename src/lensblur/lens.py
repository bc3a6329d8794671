"""The lens model: where the focus is, how much blur, and the shape of the aperture.

The signed circle of confusion (CoC) radius of a pixel, in pixels of the image being rendered, is::

    coc = blur * (disparity - focus_disparity)

positive in front of the focal plane (nearer), negative behind it. A point in front images the aperture as
it is; a point behind images it turned by 180 degrees.

Thin-lens mapping (:meth:`Lens.from_camera`). With focal length ``f``, f-number ``N``, focus distance
``s_f`` and an object at distance ``s`` (all in one unit), the CoC diameter on the sensor is::

    c = f**2 / (N * (s_f - f)) * s_f * |1/s - 1/s_f|

Disparity ``d`` stands for inverse depth ``1/s = 1/far + d * (1/near - 1/far)`` (:class:`DepthRange`), so
``1/s - 1/s_f = (1/near - 1/far) * (d - d_f)`` and the signed CoC radius in pixels is ``blur * (d - d_f)``
with::

    blur = 0.5 * f**2 * s_f / (N * (s_f - f)) * (1/near - 1/far) * image_width / sensor_width

``d_f`` being the disparity of the focus distance.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import InputError
from .geometry import DepthRange, parse_box

__all__ = ["Aperture", "Lens", "focus_at_point", "focus_in_box", "focus_in_mask", "parse_box"]

# More blades than this gives the same disc as blades=0 to a fraction of a pixel at any blur lensblur renders.
MAX_BLADES = 64


@dataclass(frozen=True)
class Aperture:
    """Shape of the aperture, in unit coordinates (the CoC radius is the circumradius).

    - ``blades``: 0 for a circle, N >= 3 for a regular N-gon inscribed in the unit circle, vertices at
      ``rotation + 360 * k / N`` degrees from +x (columns, right) towards +y (rows, down).
    - ``curvature``: rounded blades, 0 = straight edges, 1 = a circle; the boundary radius is
      ``(1 - curvature) * polygon + curvature * 1`` along every direction.
    - ``kernel``: any grey-scale shape (a heart, a star) as an ``H x W`` array; its square bounding box spans
      the unit circle's. It is resampled per CoC radius and normalised to unit energy (sum 1).
    - ``cat_eye``: optical vignetting, 0 = none. A point at normalised frame position ``p`` (0 at the
      centre, length 1 at a corner) sees the aperture clipped by a unit circle shifted by
      ``-2 * cat_eye * p``: round in the middle of the frame, cat's eyes toward the corners.

    Args:
        blades: 0 for a circle, or an integer >= 3.
        rotation: rotation of the blades in degrees.
        curvature: blade rounding in [0, 1].
        kernel: ``H x W`` non-negative array (H, W >= 3), white = open; rescaled so its maximum is 1.
        cat_eye: optical vignetting in [0, 1].

    Raises:
        InputError: a value is out of its range, or ``kernel`` is not a 2-D image with some light in it.
    """

    blades: int = 0
    rotation: float = 0.0
    curvature: float = 0.0
    kernel: np.ndarray | None = field(default=None, compare=False, repr=False)
    cat_eye: float = 0.0
    # A digest of ``kernel`` so that equality and hashing (used to cache rasterised kernels) see its content.
    kernel_digest: str = field(default="", init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.blades, (int, np.integer)) or self.blades < 0 or self.blades in (1, 2) \
                or self.blades > MAX_BLADES:
            raise InputError("blades", expected=f"0 (circle) or an integer from 3 to {MAX_BLADES} (real lenses have "
                             "5 to 15; more blades than that is a circle to the eye)", got=self.blades,
                             fix="pass blades=0 for a circle or blades=6 for a hexagon")
        if not (_is_number(self.rotation) and math.isfinite(self.rotation)):
            raise InputError("rotation", expected="a finite number of degrees", got=self.rotation,
                             fix="e.g. rotation=15")
        if not 0.0 <= self.curvature <= 1.0:
            raise InputError("curvature", expected="a value in [0, 1]", got=self.curvature,
                             fix="e.g. curvature=0 (straight blades) or curvature=1 (round)")
        if not 0.0 <= self.cat_eye <= 1.0:
            raise InputError("cat_eye", expected="a value in [0, 1]", got=self.cat_eye,
                             fix="e.g. cat_eye=0 (no optical vignetting) or cat_eye=0.3 (moderate)")
        if self.kernel is not None:
            k = np.asarray(self.kernel, dtype=np.float32)
            if k.ndim != 2 or min(k.shape) < 3:
                raise InputError("kernel", expected="an aperture kernel: a 2-D grey-scale image at least 3x3",
                                 got=f"shape {k.shape}", fix="pass a grey-scale PNG of the shape")
            if not np.isfinite(k).all() or k.min() < 0 or float(k.max()) <= 0:
                raise InputError("kernel", expected="an aperture kernel: a non-negative image with some light in it",
                                 got="an all-black (or invalid) image",
                                 fix="draw the shape in white on black")
            k = k / float(k.max())
            object.__setattr__(self, "kernel", k)
            object.__setattr__(self, "kernel_digest", hashlib.sha1(np.ascontiguousarray(k).tobytes()
                                                                    + str(k.shape).encode()).hexdigest())

    @classmethod
    def named(cls, name: str, *, rotation: float = 0.0, **kwargs) -> Aperture:
        """The aperture of a named shape.

        Args:
            name: ``circle`` (or ``disk``), ``triangle``, ``square``, ``pentagon``, ``hexagon``, ``heptagon``
                or ``octagon``.
            rotation: rotation of the blades in degrees.
            **kwargs: the other fields (``curvature``, ``cat_eye``).

        Returns:
            The :class:`Aperture`.

        Raises:
            InputError: ``name`` is not one of these.
        """
        names = {"circle": 0, "disk": 0, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6,
                 "heptagon": 7, "octagon": 8}
        if name not in names:
            raise InputError("aperture", expected=f"one of {', '.join(names)} or an image file", got=name,
                             fix="e.g. aperture=hexagon, or an image of the aperture's shape, "
                                 "e.g. aperture=iris.png")
        return cls(blades=names[name], rotation=rotation, **kwargs)

    @classmethod
    def from_image(cls, path, **kwargs) -> Aperture:
        """Read a grey-scale kernel image (white = open) as a custom aperture.

        Args:
            path: an image file; colour is averaged to grey, alpha is ignored.
            **kwargs: the other fields (``rotation``, ``curvature``, ``cat_eye``).

        Returns:
            The :class:`Aperture` with that ``kernel``.

        Raises:
            InputError: the file cannot be read, or holds no light.
        """
        from .io.image import read_raw

        arr, full = read_raw(path, argument="aperture")
        arr = arr.astype(np.float32)
        if arr.ndim == 3:
            arr = arr[..., :3].mean(axis=2) if arr.shape[2] >= 3 else arr[..., 0]
        if full is not None:
            arr = arr / full
        return cls(kernel=arr, **kwargs)

    def contains(self, u, v):
        """Whether unit-coordinate points ``(u, v)`` (torch tensors of one shape; +u right, +v down) are inside
        the blades; a bool tensor of that shape.

        A regular N-gon is the set where every edge normal ``n_k`` (at ``rotation + 360 (k + 1/2) / N``
        degrees) has ``<p, n_k> <= cos(pi / N)``. Rounded blades move the boundary radius along each
        direction to ``(1 - curvature) * polygon + curvature``, where the polygon's radius along ``p`` is
        ``|p| cos(pi / N) / max_k <p, n_k>``.
        """
        import torch

        rho = torch.sqrt(u * u + v * v)
        if self.blades == 0:
            return rho <= 1.0
        n = self.blades
        base = math.radians(self.rotation) + math.pi / n
        reach = torch.stack([u * math.cos(base + 2 * math.pi * k / n) + v * math.sin(base + 2 * math.pi * k / n)
                             for k in range(n)]).amax(dim=0)
        apothem = math.cos(math.pi / n)
        if self.curvature == 0:
            return reach <= apothem
        limit = (1.0 - self.curvature) * apothem * rho / reach.clamp_min(1e-12) + self.curvature
        return rho <= limit

    def radial_limit(self, theta):
        """Boundary radius of the blade shape along direction ``theta`` (radians, a torch tensor); a tensor of
        ``theta``'s shape, 1 for a circle."""
        import torch

        if self.blades == 0:
            return torch.ones_like(theta)
        n = self.blades
        sector = 2 * math.pi / n
        phase = torch.remainder(theta - math.radians(self.rotation), sector)
        polygon = math.cos(math.pi / n) / torch.cos(phase - math.pi / n)
        return (1.0 - self.curvature) * polygon + self.curvature


def _is_number(value) -> bool:
    """A real number, Python or numpy (``np.float32(0.4)`` is not a ``float``); ``True`` is not one."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Lens:
    """Focus and blur: ``coc = blur * (disparity - focus_disparity)`` pixels (signed radius).

    Args:
        focus_disparity: the disparity in focus, in [0, 1].
        blur: the CoC radius in pixels per unit of disparity, finite and >= 0 (0 = no blur).
        aperture: the shape of the aperture.

    Raises:
        InputError: ``focus_disparity`` or ``blur`` is out of its range (or not a number).
    """

    focus_disparity: float = 0.5
    blur: float = 20.0
    aperture: Aperture = field(default_factory=Aperture)

    def __post_init__(self):
        if not (_is_number(self.focus_disparity) and 0.0 <= self.focus_disparity <= 1.0):
            raise InputError("focus_disparity", expected="a disparity in [0, 1]", got=self.focus_disparity,
                             fix="pass e.g. focus_disparity=0.5 (1 is the nearest, 0 the farthest)")
        if not (_is_number(self.blur) and math.isfinite(self.blur) and self.blur >= 0):
            raise InputError("blur", expected="a finite number of pixels >= 0", got=self.blur,
                             fix="pass the CoC scale in pixels, e.g. blur=30 (blur=0 = no blur)")
        # numpy scalars (a value read from the map, disparity[y, x]) are numbers too; store plain floats.
        object.__setattr__(self, "focus_disparity", float(self.focus_disparity))
        object.__setattr__(self, "blur", float(self.blur))

    def coc(self, disparity):
        """Signed CoC radius in pixels for a disparity value or array."""
        return self.blur * (disparity - self.focus_disparity)

    def with_focus(self, focus_disparity: float) -> Lens:
        """A copy of this lens focused on ``focus_disparity`` (in [0, 1])."""
        return replace(self, focus_disparity=float(focus_disparity))

    @classmethod
    def from_camera(
        cls, *, focal_length: float, f_number: float, focus_distance: float, sensor_width: float,
        image_width: int, depth_range: DepthRange, aperture: Aperture | None = None,
    ) -> Lens:
        """Thin-lens mapping of a physical camera onto ``blur`` and ``focus_disparity`` (see module doc).

        Args:
            focal_length: focal length in millimetres, > 0.
            f_number: f-number ``N``, > 0.
            focus_distance: distance in focus in metres, more than the focal length and inside ``depth_range``.
            sensor_width: sensor width in millimetres, > 0.
            image_width: width in pixels of the image being rendered, > 0.
            depth_range: the metric depths (metres) that disparity 1 and 0 stand for.
            aperture: the shape of the aperture (a circle when None).

        Returns:
            The :class:`Lens` with the ``blur`` and ``focus_disparity`` of that camera.

        Raises:
            InputError: a number is not positive, or ``focus_distance`` is not beyond the focal length or
                outside ``depth_range``.
        """
        examples = {"focal_length": 50, "f_number": 1.8, "focus_distance": 2, "sensor_width": 36,
                    "image_width": 4000}
        checks = {"focal_length": focal_length, "f_number": f_number, "focus_distance": focus_distance,
                  "sensor_width": sensor_width, "image_width": image_width}
        for name, value in checks.items():
            if not (_is_number(value) and math.isfinite(value) and value > 0):
                raise InputError(name, expected="a positive number", got=value, fix=f"e.g. {name}={examples[name]}")
        f = focal_length / 1000.0
        if focus_distance <= f:
            raise InputError("focus_distance", expected=f"more than the focal length ({f:g} m)",
                             got=focus_distance, fix="focus farther away than the lens' focal length")
        focus_d = depth_range.disparity(focus_distance)
        if not 0.0 <= focus_d <= 1.0:
            raise InputError("focus_distance", expected=f"a distance between {depth_range.near:g} and "
                             f"{depth_range.far:g} m (the depth map's range)", got=focus_distance,
                             fix="focus on something in the picture")
        magnification = f * f * focus_distance / (f_number * (focus_distance - f))
        inv_span = 1.0 / depth_range.near - 1.0 / depth_range.far
        blur = 0.5 * magnification * inv_span * image_width / (sensor_width / 1000.0)
        return cls(focus_disparity=float(focus_d), blur=float(blur), aperture=aperture or Aperture())


def focus_at_point(disparity: np.ndarray, point, *, window: int = 9) -> float:
    """Focus disparity at pixel ``point = (x, y)``: the median in a ``window`` x ``window`` square around it.

    The median keeps a click on a thin edge from picking a value between foreground and background.

    Args:
        disparity: ``(..., H, W)`` disparity map, in [0, 1].
        point: ``(x, y)`` in pixels, ``0 <= x < W``, ``0 <= y < H``.
        window: side of the square in pixels.

    Returns:
        The focus disparity.

    Raises:
        InputError: ``point`` is not two numbers, or lies outside the image.
    """
    disparity = np.asarray(disparity)
    h, w = disparity.shape[-2:]
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError):
        raise InputError("point", expected="a point (x, y)", got=point, fix="e.g. point=(812, 430)")
    if not (0 <= x < w and 0 <= y < h):
        raise InputError("point", expected=f"a point inside the {w}x{h} image (0 <= x < {w}, 0 <= y < {h})",
                         got=f"{x:g},{y:g}", fix="pick a pixel inside the image")
    xi, yi, half = int(x), int(y), max(0, window // 2)
    patch = disparity[..., max(0, yi - half): yi + half + 1, max(0, xi - half): xi + half + 1]
    return float(np.median(patch))


def focus_in_box(disparity: np.ndarray, box, *, argument: str = "box") -> float:
    """Focus disparity of a box: the median inside it.

    Args:
        disparity: ``(..., H, W)`` disparity map, in [0, 1].
        box: ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive, inside the image.
        argument: the name error messages give the box.

    Returns:
        The focus disparity.

    Raises:
        InputError: ``box`` is not four numbers, or is empty or outside the image.
    """
    disparity = np.asarray(disparity)
    x0, y0, x1, y1 = parse_box(box, disparity.shape[-2:], argument=argument)
    return float(np.median(disparity[..., y0:y1, x0:x1]))


def focus_in_mask(disparity: np.ndarray, mask: np.ndarray, *, argument: str = "mask") -> float:
    """Focus disparity of a subject mask: the median under it.

    Args:
        disparity: ``H x W`` disparity map, in [0, 1].
        mask: ``H x W`` mask in [0, 1]; pixels above 0.5 are the subject.
        argument: the name error messages give the mask.

    Returns:
        The focus disparity.

    Raises:
        InputError: ``mask`` is not the disparity's size, or selects no pixel.
    """
    mask = np.asarray(mask) > 0.5
    if mask.shape != np.asarray(disparity).shape:
        raise InputError(argument, expected=f"a mask of the disparity's size {disparity.shape}",
                         got=f"shape {mask.shape}", fix="resize the mask to the image")
    if not mask.any():
        raise InputError(argument, expected="a mask with at least one pixel set", got="an empty mask",
                         fix="pass a mask where the subject is white")
    return float(np.median(np.asarray(disparity)[mask]))
