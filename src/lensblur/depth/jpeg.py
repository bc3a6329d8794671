"""Depth inside JPEG files: Google's GDepth XMP (with GFocus and GImage) and the Dynamic Depth container.

**GDepth** (Google Camera "Lens Blur", the depthmap metadata reference): the XMP namespace
``http://ns.google.com/photos/1.0/depthmap/`` holds ``Format`` (``RangeInverse`` or ``RangeLinear``),
``Near``, ``Far``, ``Units`` (optional), ``Mime`` and ``Data`` (a base64 PNG/JPEG, usually in the *extended
XMP* segments, joined by their offsets), and optionally ``ConfidenceMime``/``Confidence``. The same file
carries ``GImage:Mime``/``GImage:Data``, the sharp original photo (the primary JPEG is the camera's
already-blurred render), and ``GFocus:FocalDistance`` (in depth units), ``GFocus:FocalPointX``/``Y``
(normalised) and ``GFocus:BlurAtInfinity``, where the user focused and how much the app blurred.

**Dynamic Depth 1.0** (Pixel portrait photos): the XMP describes a ``Device:Container`` directory of items
appended after the primary JPEG in order (``Item:Mime``, ``Item:Semantic``, ``Item:Length``,
``Item:Padding``, ``Item:DataURI``; the primary's length is not counted), and cameras whose
``Camera:DepthMap`` gives ``Format``, ``Near``, ``Far``, ``Units`` (``Meters``, ``Diopters`` or ``None``),
``DepthURI``, ``ConfidenceURI``, ``MeasureType`` and ``FocalTable``, and whose ``Camera:Image``
(``ItemSemantic`` ``Original``, ``ItemURI``) names the original image.

**Google Camera container** (later Pixel portraits): GDepth metadata without ``GDepth:Data``, the depth,
confidence and original images appended as the items ``Depth``, ``Confidence`` and ``Original`` of a
``http://ns.google.com/photos/1.0/container/`` directory (the same layout as Dynamic Depth's).

A stored sample ``v`` in [0, 1] decodes by :func:`lensblur.depth.stored.range_to_disparity`; the range
becomes metres only when the unit is known (see :mod:`lensblur.depth.stored`).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import struct
import xml.etree.ElementTree as ET

import numpy as np

from ..errors import InputError
from ..io import DepthRange
from .stored import StoredDepth, range_to_disparity, unit_of

__all__ = ["XMP_EXTENDED", "XMP_STANDARD", "JpegDepth", "jpeg_xmp", "range_to_disparity", "read_jpeg_depth"]

logger = logging.getLogger(__name__)

XMP_STANDARD = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENDED = b"http://ns.adobe.com/xmp/extension/\x00"
NS_GDEPTH = "http://ns.google.com/photos/1.0/depthmap/"
NS_GFOCUS = "http://ns.google.com/photos/1.0/focus/"
NS_GIMAGE = "http://ns.google.com/photos/1.0/image/"
NS_DD = "http://ns.google.com/photos/dd/1.0/"
NS_DEVICE = NS_DD + "device/"
NS_GCONTAINER = "http://ns.google.com/photos/1.0/container/"

JpegDepth = StoredDepth
"""The depth found in a JPEG (the one type of every embedded format)."""


def _segments(data: bytes):
    """Yield ``(marker, payload)`` of the JPEG's segments up to the start of scan."""
    if data[:2] != b"\xff\xd8":
        return
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        yield marker, data[pos + 4:pos + 2 + length]
        if marker == 0xDA:
            return
        pos += 2 + length


def jpeg_xmp(data: bytes) -> tuple[bytes | None, bytes | None]:
    """The standard XMP packet and the joined extended XMP of a JPEG (either may be ``None``).

    Extended XMP chunks carry a 32-byte GUID, the full length and the chunk's offset; the chunks of the
    GUID named by ``xmpNote:HasExtendedXMP`` (or the only GUID present) are assembled.

    Args:
        data: the JPEG file's bytes.

    Returns:
        ``(standard, extended)``, each bytes or None.

    Raises:
        InputError: extended XMP chunks that are incomplete or do not join up.
    """
    standard = None
    chunks: dict[bytes, tuple[int, dict[int, bytes]]] = {}
    for marker, payload in _segments(data):
        if marker != 0xE1:
            continue
        if payload.startswith(XMP_STANDARD) and standard is None:
            standard = payload[len(XMP_STANDARD):]
        elif payload.startswith(XMP_EXTENDED):
            body = payload[len(XMP_EXTENDED):]
            if len(body) < 40:
                raise InputError("image_path", expected="complete extended XMP segments",
                                 got="a truncated segment header", fix="the photo's depth metadata is damaged")
            guid, (total, offset) = body[:32], struct.unpack(">II", body[32:40])
            chunks.setdefault(guid, (total, {}))[1][offset] = body[40:]
    if not chunks:
        return standard, None
    wanted = None
    if standard is not None:
        marker_text = b"HasExtendedXMP"
        at = standard.find(marker_text)
        if at >= 0:
            tail = standard[at + len(marker_text):at + len(marker_text) + 64]
            for guid in chunks:
                if guid in tail:
                    wanted = guid
    if wanted is None:
        wanted = next(iter(chunks))
    total, parts = chunks[wanted]
    joined = b"".join(parts[k] for k in sorted(parts))
    expected_next = 0
    for k in sorted(parts):
        if k != expected_next:
            break
        expected_next += len(parts[k])
    if expected_next != total or len(joined) != total:
        raise InputError("image_path", expected=f"extended XMP of {total} bytes in contiguous chunks",
                         got=f"{len(joined)} bytes", fix="the photo's depth metadata is truncated or damaged")
    return standard, joined


def _parse(xmp: bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(xmp.strip(b"\x00 \r\n\t"))
    except ET.ParseError as exc:
        raise InputError("image_path", expected=f"well-formed {what} XML", got=f"a corrupt packet ({exc})",
                         fix="the photo's depth metadata is damaged; pass disparity_path=FILE or use "
                             "source=model, source=stereo or source=subject") from exc


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _properties(root: ET.Element, namespace_prefix: str) -> list[dict[str, str]]:
    """For every element, the properties (attributes and simple child elements) whose namespace starts
    with ``namespace_prefix``, keyed ``namespace-tail:Local`` (e.g. ``depthmap:Near``)."""
    found = []
    for elem in root.iter():
        props: dict[str, str] = {}
        for key, value in elem.attrib.items():
            ns, local = _split(key)
            if ns.startswith(namespace_prefix):
                props[_short(ns, local)] = value
        for child in elem:
            ns, local = _split(child.tag)
            if ns.startswith(namespace_prefix) and len(child) == 0 and child.text and child.text.strip():
                props[_short(ns, local)] = child.text.strip()
        if props:
            found.append(props)
    return found


def _short(ns: str, local: str) -> str:
    tail = ns.rstrip("/").rsplit("/", 1)[-1]
    return f"{tail}:{local}"


def _number(props: dict, key: str, what: str) -> float:
    try:
        return float(props[key])
    except KeyError:
        raise InputError("image_path", expected=f"{what} in the depth metadata", got="nothing",
                         fix="the photo's depth metadata is incomplete; pass a disparity file instead") from None
    except ValueError:
        raise InputError("image_path", expected=f"a number for {what}", got=repr(props[key]),
                         fix="the photo's depth metadata is damaged; pass a disparity file instead") from None




def _decode_map(blob: bytes, what: str) -> np.ndarray:
    """A grey PNG/JPEG depth (or confidence) image as samples in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(im).astype(np.float64) / 65535.0
            return np.asarray(im.convert("L")).astype(np.float64) / 255.0
    except Exception as exc:
        raise InputError("image_path", expected=f"a decodable {what} image", got=f"undecodable data ({exc})",
                         fix="the depth image inside the photo is damaged; pass a disparity file instead") from exc


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("image_path", expected=f"base64 data in {what}", got=f"invalid base64 ({exc})",
                         fix="the photo's depth metadata is damaged; pass a disparity file instead") from exc


def _optional_number(props: dict, key: str) -> float | None:
    try:
        return float(props[key])
    except (KeyError, ValueError):
        return None


def _decode(fmt: str, near: float, far: float, units: str | None, samples: np.ndarray, kind: str, **more):
    """A :class:`StoredDepth` from decoded samples and the range as written."""
    unit, scale = unit_of(units)
    disparity = range_to_disparity(samples, format=fmt, near=near, far=far, unit=unit)
    metric = None
    if scale is not None:
        metric = DepthRange(near=near * scale, far=far * scale)
    elif unit == "diopters" and min(near, far) > 0:
        metric = DepthRange(near=1.0 / max(near, far), far=1.0 / min(near, far))
    return StoredDepth(disparity=disparity, kind=kind, format=fmt, units=unit, depth_range=metric,
                       file_range=(near, far), **more)


def _gcontainer(data: bytes, standard: bytes | None) -> dict[str, tuple[bytes, str]]:
    """The items of a Google Camera container (``http://ns.google.com/photos/1.0/container/``: Pixel
    portraits since Ultra HDR append Depth, Confidence and Original items as Dynamic Depth does) by semantic."""
    if not standard or NS_GCONTAINER.encode() not in standard:
        return {}
    items = _container_items(_parse(standard, "XMP"), NS_GCONTAINER)
    start = _items_start(data, items)
    found = {}
    for semantic in ("Depth", "Confidence", "Original"):
        item = _dd_item(data, items, start, uri=None, semantic=semantic, what=semantic.lower())
        if item is not None:
            found[semantic] = item
    return found


def _gdepth(data: bytes, standard: bytes | None, extended: bytes | None) -> StoredDepth | None:
    packets = [p for p in (standard, extended) if p]
    if not packets or not any(NS_GDEPTH.encode() in p for p in packets):
        return None
    props: dict[str, str] = {}
    for packet, what in zip(packets, ("XMP", "extended XMP")):
        for found in _properties(_parse(packet, what), "http://ns.google.com/photos/1.0/"):
            props.update(found)
    appended = _gcontainer(data, standard) if "depthmap:Data" not in props else {}
    if "depthmap:Data" in props:
        depth_blob = _base64(props["depthmap:Data"], "GDepth:Data")
    elif "Depth" in appended:
        depth_blob = appended["Depth"][0]
    else:
        return None
    samples = _decode_map(depth_blob, "GDepth")
    confidence = None
    if "depthmap:Confidence" in props or "Confidence" in appended:
        blob = (_base64(props["depthmap:Confidence"], "GDepth:Confidence") if "depthmap:Confidence" in props
                else appended["Confidence"][0])
        confidence = _decode_map(blob, "GDepth confidence").astype(np.float32)
    original, mime = None, None
    if "image:Data" in props:
        original, mime = _base64(props["image:Data"], "GImage:Data"), props.get("image:Mime", "image/jpeg")
    elif "Original" in appended:
        original, mime = appended["Original"]
    fx, fy = _optional_number(props, "focus:FocalPointX"), _optional_number(props, "focus:FocalPointY")
    extra = {k: props[f"depthmap:{k}"] for k in ("MeasureType", "Manufacturer", "Model", "Software",
                                                  "ImageWidth", "ImageHeight") if f"depthmap:{k}" in props}
    if appended:
        extra["container_items"] = sorted(appended)
    return _decode(props.get("depthmap:Format", "RangeInverse"),
                   _number(props, "depthmap:Near", "GDepth:Near"), _number(props, "depthmap:Far", "GDepth:Far"),
                   props.get("depthmap:Units"), samples, "GDepth XMP",
                   focus_distance=_optional_number(props, "focus:FocalDistance"),
                   focus_point=(fx, fy) if fx is not None and fy is not None else None,
                   blur_at_infinity=_optional_number(props, "focus:BlurAtInfinity"),
                   original=original, original_mime=mime if original is not None else None,
                   confidence=confidence, extra={"gdepth": extra} if extra else {})


def _container_items(root: ET.Element, namespace_prefix: str) -> list[dict[str, str]]:
    """A container's items in directory order (each with its byte offset after the primary image)."""
    items = [p for p in _properties(root, namespace_prefix) if "item:Mime" in p]
    position = 0
    for item in items:
        primary = item.get("item:Semantic", "") == "Primary"
        try:
            length = 0 if primary else int(float(item.get("item:Length", "0")))
            padding = int(float(item.get("item:Padding", "0")))
        except ValueError:
            raise InputError("image_path", expected="whole numbers for Item:Length and Item:Padding",
                             got=f"{item.get('item:Length')!r}, {item.get('item:Padding')!r}",
                             fix="the photo's depth container is damaged; pass a disparity file instead") from None
        item["offset"], item["length"] = str(position), str(length)
        position += length + padding
    return items


def _items_start(data: bytes, items: list[dict[str, str]]) -> int:
    """Where the appended items begin: they fill the end of the file."""
    total = sum(int(item["length"]) + int(float(item.get("item:Padding", "0"))) for item in items)
    start = len(data) - total
    if start <= 0:
        raise InputError("image_path", expected="a container whose items fit in the file",
                         got=f"items of {total} bytes in a {len(data)}-byte file",
                         fix="the photo was truncated; pass a disparity file instead")
    return start


def _dd_item(data: bytes, items: list[dict], start: int, *, uri: str | None, semantic: str | None,
             what: str) -> tuple[bytes, str] | None:
    """The bytes and mime of the item named by ``uri`` (else the first of ``semantic``), or None."""
    chosen = None
    if uri:
        chosen = next((item for item in items if item.get("item:DataURI") == uri), None)
    if chosen is None and semantic:
        chosen = next((item for item in items if item.get("item:Semantic", "").lower() == semantic.lower()), None)
    if chosen is None:
        return None
    offset, length = int(chosen["offset"]), int(chosen["length"])
    if length <= 0:
        raise InputError("image_path", expected=f"a non-empty {what} item in the Dynamic Depth container",
                         got=f"an item of length {length}", fix="the photo's depth container is damaged")
    return data[start + offset:start + offset + length], chosen.get("item:Mime", "")


def _focal_table_distance(props: dict) -> float | None:
    """The distance of least blur in a Dynamic Depth ``FocalTable`` (little-endian float32 pairs of distance
    and circle-of-confusion radius), or None."""
    text = props.get("depthmap:FocalTable")
    if not text:
        return None
    raw = _base64(text, "DepthMap:FocalTable")
    if len(raw) < 8 or len(raw) % 8:
        raise InputError("image_path", expected="a FocalTable of float32 (distance, radius) pairs",
                         got=f"{len(raw)} bytes", fix="the photo's depth metadata is damaged")
    table = np.frombuffer(raw, dtype="<f4").reshape(-1, 2).astype(np.float64)
    least = table[:, 1] <= table[:, 1].min() + 1e-6
    return float(table[least, 0].mean())


def _dynamic_depth(data: bytes, standard: bytes | None) -> StoredDepth | None:
    if not standard or NS_DD.encode() not in standard:
        return None
    root = _parse(standard, "Dynamic Depth XMP")
    cameras = [e for e in root.iter() if _split(e.tag) == (NS_DEVICE, "Camera")] or [root]
    depth_props = image_props = None
    for camera in cameras:
        found = _properties(camera, NS_DD)
        dm = next((p for p in found if any(k.startswith("depthmap:") for k in p)
                   and p.get("depthmap:ItemSemantic", "Depth").lower() != "segmentation"), None)
        if dm is not None:
            depth_props = dm
            image_props = next((p for p in found if any(k.startswith("image:") for k in p)), None)
            break
    if depth_props is None:
        return None
    items = _container_items(root, NS_DD)
    start = _items_start(data, items)
    uri = depth_props.get("depthmap:DepthURI") or depth_props.get("depthmap:ItemURI")
    depth = _dd_item(data, items, start, uri=uri, semantic="Depth", what="depth")
    if depth is None:
        raise InputError("image_path", expected="the depth item named by the DepthMap in the container",
                         got=f"no item for URI {uri!r}",
                         fix="the photo's depth container is damaged; pass a disparity file instead")
    confidence = None
    conf = _dd_item(data, items, start, uri=depth_props.get("depthmap:ConfidenceURI"), semantic=None,
                    what="confidence")
    if conf is not None:
        confidence = _decode_map(conf[0], "Dynamic Depth confidence").astype(np.float32)
    original = None
    if image_props is not None and image_props.get("image:ItemSemantic", "Original").lower() == "original":
        original = _dd_item(data, items, start, uri=image_props.get("image:ItemURI"), semantic="Original",
                            what="original image")
    extra = {"dynamic_depth": {k: depth_props[f"depthmap:{k}"] for k in ("ItemSemantic", "MeasureType", "Software",
                                                                           "FocalTableEntryCount")
                               if f"depthmap:{k}" in depth_props}}
    return _decode(depth_props.get("depthmap:Format", "RangeInverse"),
                   _number(depth_props, "depthmap:Near", "DepthMap:Near"),
                   _number(depth_props, "depthmap:Far", "DepthMap:Far"), depth_props.get("depthmap:Units"),
                   _decode_map(depth[0], "Dynamic Depth"), "Dynamic Depth",
                   focus_distance=_focal_table_distance(depth_props),
                   original=original[0] if original else None, original_mime=original[1] if original else None,
                   confidence=confidence, extra=extra)


def read_jpeg_depth(path: str | os.PathLike) -> JpegDepth:
    """Read the depth map of a JPEG with Dynamic Depth or GDepth XMP (the former is preferred).

    Args:
        path: the JPEG.

    Returns:
        The :class:`JpegDepth`.

    Raises:
        InputError: not a JPEG, no depth metadata, or damaged metadata or depth image.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] != b"\xff\xd8":
        raise InputError("image_path", expected="a JPEG file", got=f"{path} (not a JPEG)", fix="check the path")
    standard, extended = jpeg_xmp(data)
    found = _dynamic_depth(data, standard) or _gdepth(data, standard, extended)
    if found is None:
        raise InputError("image_path", expected="a JPEG with embedded depth (Dynamic Depth or GDepth XMP)",
                         got=f"{path} (no depth metadata)",
                         fix="get depth another way: source=model, source=stereo or source=subject, or "
                             "disparity_path=FILE")
    logger.info("read %s", found.describe())
    return found
