"""Depth inside JPEG files: Google's GDepth XMP and the Dynamic Depth container.

**GDepth** (Google Camera "Lens Blur"): the XMP namespace ``http://ns.google.com/photos/1.0/depthmap/``
holds ``Format`` (``RangeInverse`` or ``RangeLinear``), ``Near``, ``Far``, ``Mime`` and ``Data`` (a base64
PNG/JPEG, too large for one APP1 segment and so stored in the *extended XMP* segments, which are joined
by their offsets). A stored sample ``v`` in [0, 1] means

* ``RangeLinear``:  ``z = near + v (far - near)``
* ``RangeInverse``: ``z = near * far / (far - v (far - near))``, i.e. ``1/z = 1/near - v (1/near - 1/far)``,
  so lensblur's disparity is exactly ``1 - v``.

**Dynamic Depth 1.0** (Pixel portrait photos): the XMP describes a ``Container:Directory`` of items
appended after the primary JPEG, each with ``Item:Mime``, ``Item:Length`` (and ``Item:Padding``), and a
camera whose ``DepthMap`` gives ``Format``, ``Near``, ``Far``, ``Units`` and ``ItemSemantic``/``ItemURI``
naming the depth item; the same two formats apply.

Both give the depth map at its own size with the metric range ``(near, far)`` in the file's units
(converted to metres for ``mm``/``cm``).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io import DepthRange

__all__ = ["XMP_EXTENDED", "XMP_STANDARD", "JpegDepth", "jpeg_xmp", "range_to_disparity", "read_jpeg_depth"]

logger = logging.getLogger(__name__)

XMP_STANDARD = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENDED = b"http://ns.adobe.com/xmp/extension/\x00"
NS_GDEPTH = "http://ns.google.com/photos/1.0/depthmap/"
NS_DD = "http://ns.google.com/photos/dd/1.0/"
_UNITS = {"m": 1.0, "meters": 1.0, "metres": 1.0, "mm": 1e-3, "millimeters": 1e-3, "cm": 1e-2}


@dataclass(frozen=True)
class JpegDepth:
    """A depth map found inside a JPEG, converted to lensblur disparity at its own size.

    Args:
        disparity: ``h x w`` float32 in [0, 1].
        depth_range: the metric range the file records.
        kind: ``"GDepth XMP"`` or ``"Dynamic Depth"``.
        format: ``"RangeInverse"`` or ``"RangeLinear"``.
    """

    disparity: np.ndarray
    depth_range: DepthRange
    kind: str  # "GDepth XMP" or "Dynamic Depth"
    format: str

    def describe(self) -> str:
        h, w = self.disparity.shape
        return (f"embedded {self.kind} depth ({w}x{h}, {self.format}, near {self.depth_range.near:.3f} m, "
                f"far {self.depth_range.far:.3f} m)")


def range_to_disparity(values: np.ndarray, *, format: str, near: float, far: float) -> np.ndarray:
    """Convert the normalised samples of a GDepth / Dynamic Depth map to disparity.

    Args:
        values: samples in [0, 1], any shape.
        format: ``"RangeInverse"`` or ``"RangeLinear"``.
        near: depth of sample 1 (``RangeInverse``) or 0 (``RangeLinear``), > 0.
        far: the other end, > ``near``.

    Returns:
        float32 disparity in [0, 1], same shape (1 at ``near``).

    Raises:
        InputError: not ``0 < near < far``, or an unknown ``format``.
    """
    if not (0 < near < far):
        raise InputError("image_path", expected="depth metadata with 0 < Near < Far", got=f"Near={near}, Far={far}",
                         fix="the photo's depth record is damaged; pass a disparity file instead")
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    if format == "RangeInverse":
        return (1.0 - v).astype(np.float32)
    if format == "RangeLinear":
        z = near + v * (far - near)
        d = (1.0 / z - 1.0 / far) / (1.0 / near - 1.0 / far)
        return np.clip(d, 0.0, 1.0).astype(np.float32)
    raise InputError("image_path", expected="a depth Format of RangeInverse or RangeLinear", got=repr(format),
                     fix="pass the depth as a disparity file instead")


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
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im).astype(np.float64)
                return arr / 65535.0
            return np.asarray(im.convert("L")).astype(np.float64) / 255.0
    except InputError:
        raise
    except Exception as exc:
        raise InputError("image_path", expected=f"a decodable {what} image", got=f"undecodable data ({exc})",
                         fix="the depth image inside the photo is damaged; pass a disparity file instead") from exc


def _units(props: dict, key: str) -> float:
    unit = props.get(key, "m").strip().lower()
    if unit not in _UNITS:
        raise InputError("image_path", expected="depth units of m, cm or mm", got=repr(unit),
                         fix="pass the depth as a disparity file instead")
    return _UNITS[unit]


def _gdepth(standard: bytes | None, extended: bytes | None) -> JpegDepth | None:
    packets = [p for p in (standard, extended) if p]
    if not packets or not any(NS_GDEPTH.encode() in p for p in packets):
        return None
    props: dict[str, str] = {}
    for packet, what in zip(packets, ("XMP", "extended XMP")):
        for found in _properties(_parse(packet, what), NS_GDEPTH):
            props.update(found)
    if "depthmap:Data" not in props:
        return None
    try:
        blob = base64.b64decode("".join(props["depthmap:Data"].split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("image_path", expected="base64 depth data in GDepth:Data", got=f"invalid base64 ({exc})",
                         fix="the photo's depth metadata is damaged; pass a disparity file instead") from exc
    fmt = props.get("depthmap:Format", "RangeInverse")
    scale = _units(props, "depthmap:Units")
    near = _number(props, "depthmap:Near", "GDepth:Near") * scale
    far = _number(props, "depthmap:Far", "GDepth:Far") * scale
    values = _decode_map(blob, "GDepth")
    disparity = range_to_disparity(values, format=fmt, near=near, far=far)
    return JpegDepth(disparity, DepthRange(near=near, far=far), "GDepth XMP", fmt)


def _dynamic_depth(data: bytes, standard: bytes | None) -> JpegDepth | None:
    if not standard or NS_DD.encode() not in standard:
        return None
    root = _parse(standard, "Dynamic Depth XMP")
    items = [p for p in _properties(root, NS_DD) if "item:Mime" in p]
    depth_maps = [p for p in _properties(root, NS_DD) if any(k.startswith("depthmap:") for k in p)]
    if not depth_maps:
        return None
    dm = depth_maps[0]
    offsets, position = [], 0
    lengths = []
    for item in items:
        semantic = item.get("item:Semantic", "")
        length = 0 if semantic == "Primary" else int(float(item.get("item:Length", "0")))
        padding = int(float(item.get("item:Padding", "0")))
        lengths.append(length)
        offsets.append(position)
        position += length + padding
    start = len(data) - position
    if start <= 0:
        raise InputError("image_path", expected="a Dynamic Depth container whose items fit in the file",
                         got=f"items of {position} bytes in a {len(data)}-byte file",
                         fix="the photo was truncated; pass a disparity file instead")
    uri, semantic = dm.get("depthmap:ItemURI"), dm.get("depthmap:ItemSemantic", "Depth")
    index = None
    for i, item in enumerate(items):
        if uri is not None and item.get("item:DataURI") == uri:
            index = i
            break
    if index is None:
        matches = [i for i, item in enumerate(items) if item.get("item:Semantic") == semantic]
        index = matches[0] if matches else None
    if index is None or lengths[index] == 0:
        raise InputError("image_path", expected="the depth item named by the DepthMap in the container",
                         got=f"no item for URI {uri!r} / semantic {semantic!r}",
                         fix="the photo's depth container is damaged; pass a disparity file instead")
    blob = data[start + offsets[index]:start + offsets[index] + lengths[index]]
    fmt = dm.get("depthmap:Format", "RangeInverse")
    scale = _units(dm, "depthmap:Units")
    near = _number(dm, "depthmap:Near", "DepthMap:Near") * scale
    far = _number(dm, "depthmap:Far", "DepthMap:Far") * scale
    disparity = range_to_disparity(_decode_map(blob, "Dynamic Depth"), format=fmt, near=near, far=far)
    return JpegDepth(disparity, DepthRange(near=near, far=far), "Dynamic Depth", fmt)


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
    found = _dynamic_depth(data, standard) or _gdepth(standard, extended)
    if found is None:
        raise InputError("image_path", expected="a JPEG with embedded depth (Dynamic Depth or GDepth XMP)",
                         got=f"{path} (no depth metadata)",
                         fix="get depth another way: source=model, source=stereo or source=subject, or "
                             "disparity_path=FILE")
    logger.info("read %s", found.describe())
    return found
