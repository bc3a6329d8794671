"""Build small Multi-Picture JPEGs for tests: iPhone portrait files (a depth frame with Apple's ``apdi`` XMP,
a portrait matte) and stereo MPOs.

Written from CIPA DC-007 (the MP Index IFD in the first image's APP2 ``MPF`` segment, offsets relative to
its TIFF header) and the XMP Apple writes beside each auxiliary frame, independently of the reader.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

STD = b"http://ns.adobe.com/xap/1.0/\x00"


def _app(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg(pixels: np.ndarray, quality: int = 100) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def _packet(body: str, namespaces: str) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" {namespaces}>{body}</rdf:Description></rdf:RDF></x:xmpmeta>').encode()


def _with(jpeg: bytes, segments: list[bytes]) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _mp_index(entries: list[tuple[int, int, int]]) -> bytes:
    """The APP2 payload: ``MPF\\0`` + a big-endian TIFF header + the MP Index IFD for ``(type, size, offset)``."""
    n = len(entries)
    ifd_entries = 3
    value_offset = 8 + 2 + 12 * ifd_entries + 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", ifd_entries)
    tiff += struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")
    tiff += struct.pack(">HHII", 0xB001, 4, 1, n)
    tiff += struct.pack(">HHII", 0xB002, 7, 16 * n, value_offset)
    tiff += struct.pack(">I", 0)
    for kind, size, offset in entries:
        tiff += struct.pack(">IIIHH", kind, size, offset, 0, 0)
    return b"MPF\x00" + tiff


def mpf_file(primary: bytes, frames: list[tuple[int, bytes]], *, primary_segments: list[bytes] = ()) -> bytes:
    """A Multi-Picture file: ``primary`` (a JPEG) with ``primary_segments`` and the MP index, then each
    ``(mp_type, jpeg)`` frame."""
    types = [0x20030000] + [kind for kind, _ in frames]
    dummy = _app(0xE2, _mp_index([(t, 0, 0) for t in types]))
    head = _with(primary, [*primary_segments, dummy])
    tiff_at = head.index(b"MPF\x00") + 4
    sizes = [len(head)] + [len(jpeg) for _, jpeg in frames]
    offsets, position = [0], len(head)
    for size in sizes[1:]:
        offsets.append(position - tiff_at)
        position += size
    real = _app(0xE2, _mp_index(list(zip(types, sizes, offsets))))
    assert len(real) == len(dummy)
    return _with(primary, [*primary_segments, real]) + b"".join(jpeg for _, jpeg in frames)


def exif_segment(orientation: int) -> bytes:
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1,
                                                                                    orientation, 0)
    return _app(0xE1, b"Exif\x00\x00" + tiff + struct.pack(">I", 0))


def iphone_portrait_jpeg(rgb: np.ndarray, codes: np.ndarray, *, float_min: float, float_max: float,
                         kind: str = "disparity", int_min: int = 0, int_max: int = 255,
                         matte: np.ndarray | None = None, orientation: int | None = None,
                         focus: tuple[float, float] | None = None) -> bytes:
    """An iPhone "Most Compatible" portrait JPEG: primary (EXIF orientation, a Focus region), a depth frame
    of ``codes`` described by ``apdi`` XMP, and optionally a portrait effects matte frame."""
    segments = [exif_segment(orientation)] if orientation else []
    if focus is not None:
        region = ('<mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Seq>'
                  '<rdf:li rdf:parseType="Resource"><mwg-rs:Area rdf:parseType="Resource">'
                  f"<stArea:x>{focus[0]}</stArea:x><stArea:y>{focus[1]}</stArea:y><stArea:w>0.1</stArea:w>"
                  "<stArea:h>0.1</stArea:h><stArea:unit>normalized</stArea:unit></mwg-rs:Area>"
                  "<mwg-rs:Type>Focus</mwg-rs:Type></rdf:li></rdf:Seq></mwg-rs:RegionList></mwg-rs:Regions>")
        segments.append(_app(0xE1, STD + _packet(region, 'xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/'
                                                         'regions/" xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"')))
    depth_xmp = _packet(
        "<depthData:Accuracy>relative</depthData:Accuracy><depthData:Filtered>True</depthData:Filtered>"
        f"<apdi:IntMaxValue>{int_max}</apdi:IntMaxValue><apdi:FloatMaxValue>{float_max}</apdi:FloatMaxValue>"
        f"<apdi:IntMinValue>{int_min}</apdi:IntMinValue><apdi:FloatMinValue>{float_min}</apdi:FloatMinValue>"
        "<apdi:NativeFormat>1751411059</apdi:NativeFormat><apdi:StoredFormat>1278226488</apdi:StoredFormat>"
        f"<apdi:AuxiliaryImageType>{kind}</apdi:AuxiliaryImageType>",
        'xmlns:depthData="http://ns.apple.com/depthData/1.0/" xmlns:apdi="http://ns.apple.com/pixeldatainfo/1.0/"')
    frames = [(0x000000, _with(_jpeg(codes), [_app(0xE1, STD + depth_xmp)]))]
    if matte is not None:
        matte_xmp = _packet(
            "<apdi:AuxiliaryImageSubType>portraiteffectsmatte</apdi:AuxiliaryImageSubType>"
            "<apdi:AuxiliaryImageType>depth</apdi:AuxiliaryImageType>"
            "<portraitEffectsMatte:PortraitEffectsMatteVersion>65537</portraitEffectsMatte:PortraitEffectsMatteVersion>",
            'xmlns:apdi="http://ns.apple.com/pixeldatainfo/1.0/" '
            'xmlns:portraitEffectsMatte="http://ns.apple.com/portraitEffectsMatte/1.0/"')
        frames.append((0x000000, _with(_jpeg(matte), [_app(0xE1, STD + matte_xmp)])))
    return mpf_file(_jpeg(rgb, quality=95), frames, primary_segments=segments)


def stereo_views(far: int = 4, near: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A rectified 96 x 160 pair: a textured wall ``far`` px apart in the two views and a near patch ``near`` px
    apart (a point at left x shows at right x - d)."""
    rng = np.random.default_rng(3)
    h, w = 96, 160
    texture = (rng.random((h, w + 40, 3)) * 255).astype(np.uint8)
    left = texture[:, 20:20 + w].copy()
    right = texture[:, 20 + far:20 + far + w].copy()
    patch = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    left[30:70, 60:110] = patch
    right[30:70, 60 - near:110 - near] = patch
    return left, right


def stereo_mpo(left: np.ndarray, right: np.ndarray) -> bytes:
    """A stereo MPO: two views of one size, both of MP type Multi-Frame Disparity (0x020002), left first."""
    return mpf_file(_jpeg(left), [(0x020002, _jpeg(right))])
