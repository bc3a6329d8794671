"""HEIC/HEIF photos: their auxiliary depth image (the photo itself opens through :mod:`lensblur.io.image`).

iPhones (and other HEIF writers) store depth as an auxiliary grey image with a *depth representation
info* record (ISO/IEC 23008-12, the H.265 depth representation SEI): a representation type, and
``z_near``/``z_far`` (depths) or ``d_min``/``d_max`` (disparities). pillow-heif exposes it as
``info["depth_images"][i].info["metadata"]``. Each stored sample ``s`` of ``bits`` bits is first
normalised to ``v = s / (2**bits - 1)``, then:

====  ======================  =======================================================  ======================
type  name                    meaning of ``v``                                         lensblur disparity
====  ======================  =======================================================  ======================
0     uniform inverse Z       ``1/Z = 1/z_far + v (1/z_near - 1/z_far)``               ``v``
1     uniform disparity       ``D = d_min + v (d_max - d_min)``, ``D`` ~ ``1/Z``       ``v``
2     uniform Z               ``Z = z_near + v (z_far - z_near)``                      ``(1/Z - 1/z_far) /
                                                                                       (1/z_near - 1/z_far)``
3     non-uniform disparity   a piecewise-linear model pillow-heif does not expose     (refused)
====  ======================  =======================================================  ======================

Types 0 and 1 are already affine in inverse depth, which is what lensblur's disparity is, so the
normalised sample is the disparity exactly. The metric range comes from ``z_near``/``z_far`` when present;
for uniform disparity without them, ``d_min``/``d_max`` are taken in inverse metres (Apple's unit for
disparity, the writer of these files in practice): near = ``1/d_max``, far = ``1/d_min``.

**Turns.** libheif turns each image by its own ``irot``/``imir`` properties when decoding it. Apple associates
the photo's turn with its depth and matte items too, so they come out turned alike; an auxiliary image
written without a turn of its own while the photo has one (ISO/IEC 23008-12 treats an auxiliary image as a
master image of its own, so libheif leaves it as stored) is given the photo's turn here, as libavif does for
alpha, since it is stored in the photo's pixel grid. The structure is read by :mod:`~lensblur.depth.isobmff`.

**Portrait matte.** iPhone portraits hold the portrait effects matte as another auxiliary image of the
photo, of type ``urn:com:apple:photo:2018:aux:portraiteffectsmatte`` (pillow-heif: ``info["aux"]`` and
``get_aux_image``), 8-bit grey, 255 = person.

**Spatial photos** (Apple Vision Pro, iPhone 15 Pro and later): two views in one file, grouped by a ``ster``
entity group of ``grpl`` (ISO/IEC 23008-12: the first entity is the left view, the second the right);
:func:`stereo_views` says which is the photo and decodes the other.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..io import DepthRange, read_image_info
from ..io.image import HEIF_SUFFIXES, is_heif, open_heif, register_heif
from .isobmff import AUX_DEPTH, AUX_MATTE, HeifLayout, read_item, read_layout, turn_like
from .stored import StoredDepth

__all__ = [
    "HEIF_SUFFIXES",
    "HeifDepth",
    "StereoViews",
    "has_heif_depth",
    "has_heif_matte",
    "is_heif",
    "read_heif_depth",
    "read_heif_matte",
    "read_photo",
    "read_view",
    "register_heif",
    "representation_to_disparity",
    "stereo_views",
]

logger = logging.getLogger(__name__)

REPRESENTATIONS = {0: "uniform inverse Z", 1: "uniform disparity", 2: "uniform Z", 3: "non-uniform disparity"}


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """:func:`lensblur.read_image` under the depth readers' argument name (HEIC/HEIF/AVIF open through
    :func:`lensblur.io.image.open_pillow` like every photo).

    Args:
        path: the photo.

    Returns:
        ``H x W x 3`` float32 linear RGB.

    Raises:
        InputError: the file cannot be read (as :func:`lensblur.read_image`).
        MissingDependencyError: a HEIF file and pillow-heif is not installed.
    """
    return read_image_info(path, argument="image")[0]


@dataclass(frozen=True)
class HeifDepth:
    """The depth image of a HEIF photo converted to lensblur disparity (at its own, usually lower, size).

    Args:
        disparity: ``h x w`` float32 in [0, 1].
        depth_range: the metric range, or None when the file does not record one.
        representation: the HEIF depth representation type (0 uniform inverse Z, 1 uniform disparity,
            2 uniform Z).
        metadata: pillow-heif's depth metadata.
        extra: what else is reported (the photo's turn and who applied it to the map, the portrait matte).
    """

    disparity: np.ndarray
    depth_range: DepthRange | None
    representation: int
    metadata: dict
    extra: dict = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        h, w = self.disparity.shape
        parts = [f"embedded HEIC depth ({w}x{h}", REPRESENTATIONS.get(self.representation, "?")]
        if self.depth_range is not None:
            parts.append(f"near {self.depth_range.near:.3f} m, far {self.depth_range.far:.3f} m")
        for key in ("d_min", "d_max", "z_near", "z_far"):
            if key in self.metadata:
                parts.append(f"{key} {float(self.metadata[key]):.4g}")
        return ", ".join(parts) + ")"

    def stored(self) -> StoredDepth:
        """The same map as a :class:`~lensblur.depth.stored.StoredDepth` (kind ``"HEIC"``)."""
        meta = self.metadata
        if "z_near" in meta and "z_far" in meta:
            units, file_range = "metres", (float(meta["z_near"]), float(meta["z_far"]))
        elif "d_min" in meta and "d_max" in meta:
            units, file_range = "inverse metres", (float(meta["d_max"]), float(meta["d_min"]))
        else:
            units, file_range = "none", None
        return StoredDepth(disparity=self.disparity, kind="HEIC", format=REPRESENTATIONS.get(self.representation, "?"),
                           units=units, depth_range=self.depth_range, file_range=file_range, extra=dict(self.extra))


def representation_to_disparity(values: np.ndarray, metadata: dict) -> tuple[np.ndarray, DepthRange | None]:
    """Convert normalised samples ``values`` (in [0, 1]) of a HEIF depth image to lensblur disparity.

    ``metadata`` is pillow-heif's depth ``info["metadata"]`` (``representation_type`` and any of
    ``z_near``, ``z_far``, ``d_min``, ``d_max``); see the module docstring for the formulas.

    Args:
        values: ``h x w`` normalised samples in [0, 1].
        metadata: the depth metadata.

    Returns:
        ``(disparity, depth_range)``: ``h x w`` float32 in [0, 1] and the :class:`DepthRange`, or None.

    Raises:
        InputError: a representation lensblur cannot convert, or a damaged range.
    """
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    kind = metadata.get("representation_type")
    z_near, z_far = metadata.get("z_near"), metadata.get("z_far")
    d_min, d_max = metadata.get("d_min"), metadata.get("d_max")
    z_range = None
    if z_near is not None and z_far is not None:
        if not (0 < float(z_near) < float(z_far)):
            raise InputError("image_path", expected="depth metadata with 0 < z_near < z_far",
                             got=f"z_near={z_near}, z_far={z_far}", fix="the file's depth record is damaged")
        z_range = DepthRange(near=float(z_near), far=float(z_far))
    if kind == 0:
        return v.astype(np.float32), z_range
    if kind == 1:
        if z_range is None and d_min is not None and d_max is not None:
            if not (0 < float(d_min) < float(d_max)):
                raise InputError("image_path", expected="disparity metadata with 0 < d_min < d_max",
                                 got=f"d_min={d_min}, d_max={d_max}", fix="the file's depth record is damaged")
            z_range = DepthRange(near=1.0 / float(d_max), far=1.0 / float(d_min))
        return v.astype(np.float32), z_range
    if kind == 2:
        if z_range is None:
            raise InputError("image_path", expected="a uniform-Z depth image with z_near and z_far",
                             got="no z_near/z_far in its metadata",
                             fix="without the range, Z cannot be turned into disparity; pass a disparity file")
        z = z_range.near + v * (z_range.far - z_range.near)
        d = (1.0 / z - 1.0 / z_range.far) / (1.0 / z_range.near - 1.0 / z_range.far)
        return np.clip(d, 0.0, 1.0).astype(np.float32), z_range
    raise InputError("image_path", expected="a depth representation lensblur can convert (types 0, 1, 2)",
                     got=f"type {kind} ({REPRESENTATIONS.get(kind, 'unknown')})",
                     fix="export the depth as a 16-bit disparity PNG and pass it as disparity_path=FILE")


def read_heif_depth(path: str | os.PathLike) -> HeifDepth:
    """Read the first depth image of a HEIF photo as lensblur disparity (its own size) with its range.

    Args:
        path: the HEIC/HEIF photo.

    Returns:
        The :class:`HeifDepth`.

    Raises:
        InputError: unreadable, no depth image inside, or a depth image lensblur cannot convert.
        MissingDependencyError: pillow-heif is not installed.
    """
    try:
        container = open_heif(path, argument="image_path", convert_hdr_to_8bit=False)
        depth_images = container.info.get("depth_images") or []
    except (InputError, MissingDependencyError):
        raise
    except Exception as exc:
        raise InputError("image_path", expected="a readable HEIC/HEIF file", got=f"{path} ({exc})",
                         fix="check that the file opens in a photo viewer") from exc
    if not depth_images:
        raise InputError("image_path", expected="a HEIC/HEIF photo with an embedded depth image",
                         got=f"{path} (no depth image inside)",
                         fix="take the photo in Portrait mode, or get depth another way "
                             "(source=model, source=stereo or source=subject, or disparity_path=FILE)")
    depth = depth_images[0]
    metadata = dict(depth.info.get("metadata") or {})
    try:
        samples = np.asarray(depth.to_pillow() if hasattr(depth, "to_pillow") else depth)
    except Exception as exc:
        raise InputError("image_path", expected="a decodable depth image", got=f"{path} ({exc})",
                         fix="the depth image inside the file is damaged") from exc
    if samples.ndim == 3:
        samples = samples[..., 0]
    full = 65535.0 if samples.dtype == np.uint16 else 255.0 if samples.dtype == np.uint8 else None
    if full is None:
        raise InputError("image_path", expected="an 8- or 16-bit depth image", got=f"dtype {samples.dtype}",
                         fix="export the depth as a disparity PNG and pass it as disparity_path=FILE")
    disparity, depth_range = representation_to_disparity(samples.astype(np.float64) / full, metadata)
    layout = _layout(path)
    depth_id = _auxiliary(layout, AUX_DEPTH)
    turn, turned_by = _turn(layout, depth_id)
    disparity = np.ascontiguousarray(turn_like(disparity, turn))
    matte_id = _auxiliary(layout, (AUX_MATTE,))
    matte_size = layout.size(matte_id) if matte_id is not None else None
    extra = {"heif": {"photo_transforms": [list(t) for t in layout.transforms(layout.primary)]
                      if layout.primary is not None else [], "map_turned_by": turned_by},
             "apple": {**_depth_xmp_facts(path, layout, depth_id),
                       "portrait_matte": list(matte_size) if matte_size else None}}
    result = HeifDepth(disparity=disparity, depth_range=depth_range,
                       representation=int(metadata.get("representation_type", -1)), metadata=metadata, extra=extra)
    logger.info("read %s", result.describe())
    return result


def _layout(path) -> HeifLayout:
    """The file's item structure; an empty one when it cannot be read (libheif then says what is wrong)."""
    try:
        return read_layout(path)
    except OSError:
        return HeifLayout()


def _turn(layout: HeifLayout, item_id: int | None) -> tuple[tuple[tuple[str, int], ...], str | None]:
    """The transforms still to apply to an auxiliary image libheif decoded, and who turns it like the photo:
    ``"libheif"`` (the image has transforms of its own), ``"lensblur"`` (it has none, the photo has some: the
    photo's are returned), or None (nothing to turn)."""
    photo = layout.transforms(layout.primary) if layout.primary is not None else ()
    own = layout.transforms(item_id) if item_id is not None else ()
    if own:
        return (), "libheif"
    if photo and item_id is not None:
        return photo, "lensblur"
    return (), None


def _depth_xmp_facts(path, layout: HeifLayout, depth_id: int | None) -> dict:
    """Apple's facts about the depth map (``depthData:Accuracy``...) from the XMP item describing it."""
    from .mpf import apple_depth_facts, xmp_properties

    for item in (layout.descriptions(depth_id) if depth_id is not None else ()):
        try:
            data = read_item(path, layout, item)
        except OSError:
            data = None
        if data and b"xmpmeta" in data:
            return apple_depth_facts(xmp_properties(data))
    return {}


def has_heif_depth(path: str | os.PathLike) -> bool:
    """Whether a HEIF photo holds a depth image (read from its structure, nothing decoded).

    Args:
        path: the photo; an unreadable file has none.

    Returns:
        True when the primary image has an auxiliary depth image (``urn:mpeg:hevc:2015:auxid:2``).
    """
    return _auxiliary(_layout(path), AUX_DEPTH) is not None


def _auxiliary(layout: HeifLayout, kinds: tuple[str, ...]) -> int | None:
    """The item id of the photo's first auxiliary image of one of ``kinds``, or None."""
    if layout.primary is None:
        return None
    return next((i for i, kind in layout.auxiliaries(layout.primary) if kind in kinds), None)


def has_heif_matte(path: str | os.PathLike) -> bool:
    """Whether a HEIF photo holds Apple's portrait effects matte (read from its structure, nothing decoded).

    Args:
        path: the photo; an unreadable file has none.

    Returns:
        True when the primary image has an auxiliary image of type ``urn:com:apple:photo:2018:aux:portraiteffectsmatte``.
    """
    return _auxiliary(_layout(path), (AUX_MATTE,)) is not None


def read_heif_matte(path: str | os.PathLike) -> np.ndarray | None:
    """The portrait effects matte of an iPhone HEIC, turned like the photo (1 = person), or None.

    Args:
        path: the HEIC.

    Returns:
        ``h x w`` float32 in [0, 1] at the matte's own size, or None without a matte.

    Raises:
        InputError: the matte cannot be decoded.
        MissingDependencyError: pillow-heif is not installed.
    """
    layout = _layout(path)
    matte_id = _auxiliary(layout, (AUX_MATTE,))
    if matte_id is None:
        return None
    try:
        container = open_heif(path, argument="image_path", convert_hdr_to_8bit=False)
        pixels = np.asarray(container.get_aux_image(matte_id).to_pillow())
    except (InputError, MissingDependencyError):
        raise
    except Exception as exc:
        raise InputError("mask", expected="a decodable portrait matte in the HEIC", got=f"{path} ({exc})",
                         fix="pass mask=MASK.png") from exc
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    full = 65535.0 if pixels.dtype == np.uint16 else 255.0
    turn, _ = _turn(layout, matte_id)
    return np.ascontiguousarray(turn_like(pixels.astype(np.float32) / full, turn))


@dataclass(frozen=True)
class StereoViews:
    """The two views of a spatial (stereo) HEIC, as its ``ster`` group says.

    Args:
        left: the left view's item id.
        right: the right view's item id.
        primary: the primary item's id (the photo that opens).
    """

    left: int
    right: int
    primary: int | None

    @property
    def photo_is(self) -> str | None:
        """``"left"`` or ``"right"``: which view the photo is; None when the primary is neither."""
        return "left" if self.primary == self.left else "right" if self.primary == self.right else None

    @property
    def partner(self) -> int:
        """The item id of the view that is not the photo."""
        return self.right if self.primary == self.left else self.left


def stereo_views(path: str | os.PathLike) -> StereoViews | None:
    """The stereo pair of a spatial HEIC (a ``ster`` group of two images), or None for any other file.

    Args:
        path: the photo.

    Returns:
        The :class:`StereoViews`, or None.
    """
    if not is_heif(path):
        return None
    layout = _layout(path)
    pair = layout.stereo_pair()
    return None if pair is None else StereoViews(left=pair[0], right=pair[1], primary=layout.primary)


def read_view(path: str | os.PathLike, item_id: int) -> np.ndarray:
    """One top-level image of a HEIF file, by item id, as libheif decodes it (turned by its own transforms):
    ``H x W x 3`` uint8 sRGB codes.

    Args:
        path: the file.
        item_id: the image's item id.

    Returns:
        The pixels.

    Raises:
        InputError: no top-level image with that id, or it cannot be decoded.
        MissingDependencyError: pillow-heif is not installed.
    """
    try:
        container = open_heif(path, argument="image_path")
        index = None
        for group in container.info.get("entity_groups") or []:      # libheif's own id -> image mapping
            for entity, image in zip(group.get("entities", ()), group.get("images", ()), strict=False):
                if entity == item_id and image is not None:
                    index = image
        if index is None:
            index = _top_level(_layout(path)).index(item_id)
        pixels = np.asarray(container[index].to_pillow().convert("RGB"))
    except (InputError, MissingDependencyError):
        raise
    except (ValueError, IndexError) as exc:
        raise InputError("image_path", expected=f"a decodable image with item id {item_id} in the HEIC",
                         got=f"{path} ({exc})", fix="the file's stereo group names an image it does not hold; "
                         "pass the right view as right=RIGHT_IMAGE") from exc
    except Exception as exc:
        raise InputError("image_path", expected="a decodable stereo view in the HEIC", got=f"{path} ({exc})",
                         fix="the file is damaged; pass the right view as right=RIGHT_IMAGE") from exc
    return np.ascontiguousarray(pixels)


def _top_level(layout: HeifLayout) -> list[int]:
    """Ids of the images shown on their own, in stored order: not hidden, not a thumbnail or auxiliary image."""
    dependent = {src for kind, src, _ in layout.references if kind in ("thmb", "auxl")}
    return [i for i, item in layout.items.items() if item.is_image and not item.hidden and i not in dependent]
