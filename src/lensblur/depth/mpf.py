"""The extra frames of a JPEG's Multi-Picture Format index (CIPA DC-007): iPhone portrait depth and mattes,
and stereo pairs.

**iPhone portrait JPEGs** ("Most Compatible" capture setting): after the primary JPEG come grey JPEG
frames, each with its own XMP. The depth frame carries Apple's ``depthData`` namespace and the pixel data
info (``apdi``, ``http://ns.apple.com/pixeldatainfo/1.0/``): ``AuxiliaryImageType`` ``disparity`` or
``depth``, and ``IntMinValue``/``IntMaxValue`` (the stored codes) standing for
``FloatMinValue``/``FloatMaxValue``. A code ``s`` means ``q = Fmin + (s - Imin) / (Imax - Imin) (Fmax -
Fmin)``: a disparity in 1/m (so lensblur's disparity is the normalised code exactly, and the range is
``1/Fmax`` to ``1/Fmin`` metres) or a depth in metres (converted through ``1/q``). The portrait effects
matte is another frame, marked by the ``portraitEffectsMatte`` namespace (or ``AuxiliaryImageSubType``
``portraiteffectsmatte``): 255 = person. The primary's XMP may hold a ``mwg-rs`` region of type ``Focus``,
where the camera focused. Semantic segmentation mattes (hair, skin, teeth) are ignored.

**Stereo MPO** (3D cameras, some phones): two or more frames of the same size whose MP type is
*Multi-Frame Image (Disparity)*, ordered left to right; the first two become a stereo pair.
"""

from __future__ import annotations

import io
import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io import DepthRange
from .stored import StoredDepth

__all__ = ["MpfFrame", "apple_depth_facts", "decode_image", "frame_image", "mpf_frames", "read_apple_depth",
           "read_portrait_matte", "stereo_pair", "xmp_properties"]

logger = logging.getLogger(__name__)

NS_APDI = "http://ns.apple.com/pixeldatainfo/1.0/"
NS_DEPTHDATA = "http://ns.apple.com/depthData/1.0/"
NS_MATTE = "http://ns.apple.com/portraitEffectsMatte/1.0/"
NS_SEMANTIC = "http://ns.apple.com/semanticSegmentationMatte/1.0/"
NS_BLUR = "http://ns.apple.com/depthBlurEffect/1.0/"
NS_MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
NS_AREA = "http://ns.adobe.com/xmp/sType/Area#"
DISPARITY_TYPE = "Multi-Frame Image: (Disparity)"   # Pillow's name for MP type 0x020002


@dataclass(frozen=True)
class MpfFrame:
    """One frame of a Multi-Picture file.

    Args:
        index: its position (0 = the primary image).
        size: ``(width, height)``.
        mp_type: the MP type as Pillow names it (``"Undefined"``, ``"Multi-Frame Image: (Disparity)"``...).
        xmp: the frame's own XMP packet, or None.
    """

    index: int
    size: tuple[int, int]
    mp_type: str
    xmp: bytes | None

    def properties(self) -> dict[str, str]:
        """The frame XMP's simple properties, keyed ``namespace-uri + local name``."""
        return xmp_properties(self.xmp)

    @property
    def role(self) -> str:
        """``"depth"``, ``"matte"``, ``"segmentation"``, ``"stereo"`` or ``"other"``."""
        xmp = self.xmp or b""
        props = self.properties()
        if NS_MATTE.encode() in xmp or props.get(NS_APDI + "AuxiliaryImageSubType", "").lower() == \
                "portraiteffectsmatte":
            return "matte"
        if NS_SEMANTIC.encode() in xmp:
            return "segmentation"
        if props.get(NS_APDI + "AuxiliaryImageType", "").lower() in ("disparity", "depth"):
            return "depth"
        if self.mp_type == DISPARITY_TYPE:
            return "stereo"
        return "other"


def xmp_properties(xmp: bytes | None) -> dict[str, str]:
    """An XMP packet's simple properties (attributes and leaf elements), keyed ``namespace-uri + local name``.

    Args:
        xmp: the packet, or None.

    Returns:
        The properties; empty for no packet or one that does not parse.
    """
    if not xmp:
        return {}
    try:
        root = ET.fromstring(xmp.strip(b"\x00 \r\n\t"))
    except ET.ParseError:
        return {}
    found: dict[str, str] = {}
    for elem in root.iter():
        for key, value in elem.attrib.items():
            if key.startswith("{"):
                found[key[1:].replace("}", "")] = value
        if len(elem) == 0 and elem.text and elem.text.strip() and elem.tag.startswith("{"):
            found[elem.tag[1:].replace("}", "")] = elem.text.strip()
    return found


def apple_depth_facts(props: dict[str, str]) -> dict[str, str]:
    """What Apple's depth XMP says about its map, for reports: ``depthData:Accuracy`` (``relative`` or
    ``absolute``), ``Quality``, ``Filtered`` and ``depthBlurEffect:SimulatedAperture``, where present.

    Args:
        props: :func:`xmp_properties` of the depth map's XMP (an MPF frame's, or a HEIC depth item's).

    Returns:
        The facts found, by their XMP names.
    """
    facts = {k: props[NS_DEPTHDATA + k] for k in ("Accuracy", "Quality", "Filtered") if NS_DEPTHDATA + k in props}
    if NS_BLUR + "SimulatedAperture" in props:
        facts["SimulatedAperture"] = props[NS_BLUR + "SimulatedAperture"]
    return facts


def mpf_frames(path: str | os.PathLike) -> list[MpfFrame]:
    """The frames of a JPEG with a Multi-Picture index (one frame for any other file Pillow opens).

    Args:
        path: the photo.

    Returns:
        The frames, primary first; empty when Pillow cannot open the file.
    """
    from ..io.image import open_pillow

    try:
        with open_pillow(path) as im:
            entries = (getattr(im, "mpinfo", None) or {}).get(0xB002) or []
            frames = []
            for n in range(getattr(im, "n_frames", 1)):
                im.seek(n)
                mp_type = entries[n]["Attribute"]["MPType"] if n < len(entries) else "Undefined"
                frames.append(MpfFrame(n, im.size, mp_type, im.info.get("xmp")))
            return frames
    except Exception:  # noqa: BLE001 - a file Pillow cannot parse has no frames to offer
        return []


def _frame_pixels(path, index: int) -> np.ndarray:
    from ..io.image import open_pillow

    try:
        with open_pillow(path) as im:
            im.seek(index)
            im.load()
            return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    except InputError:
        raise
    except Exception as exc:
        raise InputError("image_path", expected=f"a decodable frame {index} in the Multi-Picture file",
                         got=f"{path} ({exc})", fix="the photo is damaged; pass a disparity file instead") from exc


def _float(props: dict, key: str, what: str) -> float:
    try:
        return float(props[NS_APDI + key])
    except (KeyError, ValueError):
        raise InputError("image_path", expected=f"apdi:{key} ({what}) in the depth frame's XMP",
                         got=repr(props.get(NS_APDI + key)),
                         fix="the photo's depth record is damaged; pass a disparity file instead") from None


def _focus_region(frame: MpfFrame) -> tuple[float, float] | None:
    """The centre (x, y in [0, 1]) of the primary's ``mwg-rs`` region of type ``Focus``, or None."""
    if not frame.xmp or NS_MWG_RS.encode() not in frame.xmp:
        return None
    try:
        root = ET.fromstring(frame.xmp.strip(b"\x00 \r\n\t"))
    except ET.ParseError:
        return None
    for elem in root.iter():
        kind = elem.find(f"{{{NS_MWG_RS}}}Type")
        area = elem.find(f"{{{NS_MWG_RS}}}Area")
        if kind is None or area is None or (kind.text or "").strip() != "Focus":
            continue
        values = {}
        for key in ("x", "y"):
            child = area.find(f"{{{NS_AREA}}}{key}")
            text = child.text if child is not None else area.get(f"{{{NS_AREA}}}{key}")
            try:
                values[key] = float(text)
            except (TypeError, ValueError):
                break
        if len(values) == 2 and 0 <= values["x"] <= 1 and 0 <= values["y"] <= 1:
            return values["x"], values["y"]
    return None


def read_apple_depth(path: str | os.PathLike, frames: list[MpfFrame] | None = None) -> StoredDepth | None:
    """The depth frame of an iPhone portrait JPEG as lensblur disparity (stored orientation), or None.

    Args:
        path: the JPEG.
        frames: its :func:`mpf_frames`, when already read.

    Returns:
        The :class:`StoredDepth` (kind ``"Apple MPF"``), or None when no frame is a depth frame.

    Raises:
        InputError: a depth frame with a damaged or missing ``apdi`` range, or undecodable.
    """
    frames = mpf_frames(path) if frames is None else frames
    depth = next((f for f in frames[1:] if f.role == "depth"), None)
    if depth is None:
        return None
    props = depth.properties()
    kind = props.get(NS_APDI + "AuxiliaryImageType", "").lower()
    f_min, f_max = _float(props, "FloatMinValue", "the lowest value"), _float(props, "FloatMaxValue", "the highest")
    i_min = _float(props, "IntMinValue", "code of the lowest") if NS_APDI + "IntMinValue" in props else 0.0
    i_max = _float(props, "IntMaxValue", "code of the highest") if NS_APDI + "IntMaxValue" in props else 255.0
    if not (0 < f_min < f_max) or i_max <= i_min:
        raise InputError("image_path", expected="apdi values with 0 < FloatMinValue < FloatMaxValue and "
                         "IntMinValue < IntMaxValue", got=f"{f_min}..{f_max}, codes {i_min}..{i_max}",
                         fix="the photo's depth record is damaged; pass a disparity file instead")
    codes = _frame_pixels(path, depth.index).astype(np.float64)
    if codes.ndim == 3:
        codes = codes[..., 0]
    v = np.clip((codes - i_min) / (i_max - i_min), 0.0, 1.0)
    if kind == "disparity":
        disparity = v.astype(np.float32)
        metric = DepthRange(near=1.0 / f_max, far=1.0 / f_min)
        units, file_range = "inverse metres", (f_max, f_min)
    else:
        z = f_min + v * (f_max - f_min)
        disparity = np.clip((1.0 / z - 1.0 / f_max) / (1.0 / f_min - 1.0 / f_max), 0.0, 1.0).astype(np.float32)
        metric = DepthRange(near=f_min, far=f_max)
        units, file_range = "metres", (f_min, f_max)
    extra = {"apple": apple_depth_facts(props)}
    matte = next((f for f in frames[1:] if f.role == "matte"), None)
    extra["apple"]["portrait_matte"] = list(matte.size) if matte is not None else None
    return StoredDepth(disparity=disparity, kind="Apple MPF", format=f"apdi {kind}", units=units,
                       depth_range=metric, file_range=file_range, focus_point=_focus_region(frames[0]),
                       extra=extra)


def read_portrait_matte(path: str | os.PathLike, frames: list[MpfFrame] | None = None) -> np.ndarray | None:
    """The portrait effects matte of an iPhone portrait JPEG (stored orientation, 1 = person), or None.

    Args:
        path: the JPEG.
        frames: its :func:`mpf_frames`, when already read.

    Returns:
        ``h x w`` float32 in [0, 1], or None without a matte frame.
    """
    frames = mpf_frames(path) if frames is None else frames
    matte = next((f for f in frames[1:] if f.role == "matte"), None)
    if matte is None:
        return None
    pixels = _frame_pixels(path, matte.index).astype(np.float32)
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    return pixels / 255.0


def stereo_pair(path: str | os.PathLike, frames: list[MpfFrame] | None = None) -> tuple[int, int] | None:
    """The frame indices ``(left, right)`` of a stereo MPO, or None when the file is not one.

    Args:
        path: the photo.
        frames: its :func:`mpf_frames`, when already read.

    Returns:
        ``(0, n)``: the primary and the next frame of its size marked *Disparity*, or None.
    """
    frames = mpf_frames(path) if frames is None else frames
    if len(frames) < 2 or frames[0].mp_type not in (DISPARITY_TYPE, "Baseline MP Primary Image"):
        return None
    partner = next((f for f in frames[1:] if f.role == "stereo" and f.size == frames[0].size), None)
    return None if partner is None else (0, partner.index)


def frame_image(path: str | os.PathLike, index: int) -> np.ndarray:
    """Frame ``index`` of a Multi-Picture file as stored pixels (``H x W x 3`` or ``H x W`` uint8).

    Args:
        path: the file.
        index: the frame.

    Returns:
        The frame's pixels, not yet turned upright.

    Raises:
        InputError: the frame cannot be decoded.
    """
    return _frame_pixels(path, index)


def decode_image(blob: bytes) -> tuple[np.ndarray, int | None]:
    """An encoded image held inside a photo (GImage, a Dynamic Depth item) as stored RGB pixels, and its own
    EXIF orientation (None when it has none).

    Args:
        blob: the encoded JPEG/PNG.

    Returns:
        ``(pixels, orientation)``: ``H x W x 3`` uint8 (or uint16) and the tag.

    Raises:
        InputError: not a decodable image.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            orientation = im.getexif().get(0x0112)
            if im.mode not in ("RGB", "I;16"):
                im = im.convert("RGB")
            return np.asarray(im), orientation
    except Exception as exc:
        raise InputError("image_path", expected="a decodable original image inside the photo",
                         got=f"undecodable data ({exc})", fix="the photo is damaged; render its primary image "
                         "(source=file with a disparity map)") from exc
