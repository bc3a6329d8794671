"""Build small JPEGs carrying Google depth (GDepth XMP with extended XMP, Dynamic Depth), for tests.

Written from the public specifications (Adobe XMP part 3 for extended XMP in APP1; Google's depth map
metadata and Dynamic Depth 1.0), independently of the reader under test.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct

import numpy as np
from PIL import Image

STD = b"http://ns.adobe.com/xap/1.0/\x00"
EXT = b"http://ns.adobe.com/xmp/extension/\x00"


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def png_bytes(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, format="PNG")
    return buf.getvalue()


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _packet(description: str) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f"{description}</rdf:RDF></x:xmpmeta>").encode()


def with_segments(jpeg: bytes, segments: list[bytes], tail: bytes = b"") -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:] + tail


def gdepth_jpeg(rgb: np.ndarray, depth_samples: np.ndarray, *, fmt: str, near: float, far: float,
                chunk: int = 150, corrupt_extended: bool = False) -> bytes:
    data = base64.b64encode(png_bytes(depth_samples)).decode()
    extended = _packet(f'<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
                       f'GDepth:Data="{data}"/>')
    if corrupt_extended:
        extended = extended.replace(b"rdf:Description", b"rdf:Descr<ption", 1)
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    standard = _packet(
        '<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
        'xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
        f'GDepth:Format="{fmt}" GDepth:Near="{near}" GDepth:Far="{far}" GDepth:Mime="image/png" '
        f'xmpNote:HasExtendedXMP="{guid.decode()}"/>')
    segments = [_app1(STD + standard)]
    for offset in range(0, len(extended), chunk):
        part = extended[offset:offset + chunk]
        segments.append(_app1(EXT + guid + struct.pack(">II", len(extended), offset) + part))
    return with_segments(jpeg_bytes(rgb), segments)


def dynamic_depth_jpeg(rgb: np.ndarray, depth_samples: np.ndarray, *, fmt: str, near: float, far: float,
                       units: str = "Meters") -> bytes:
    depth_png = png_bytes(depth_samples)
    extra = b"not a depth map, a decoy item"
    xmp = _packet(
        '<rdf:Description rdf:about="" '
        'xmlns:Device="http://ns.google.com/photos/dd/1.0/device/" '
        'xmlns:Container="http://ns.google.com/photos/dd/1.0/container/" '
        'xmlns:Item="http://ns.google.com/photos/dd/1.0/item/" '
        'xmlns:Camera="http://ns.google.com/photos/dd/1.0/camera/" '
        'xmlns:DepthMap="http://ns.google.com/photos/dd/1.0/depthmap/">'
        "<Device:Container><Container:Directory><rdf:Seq>"
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Semantic="Primary"/></rdf:li>'
        f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="application/octet-stream" '
        f'Item:Semantic="Other" Item:Length="{len(extra)}" Item:DataURI="extra"/></rdf:li>'
        f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/png" Item:Semantic="Depth" '
        f'Item:Length="{len(depth_png)}" Item:DataURI="android/depthmap"/></rdf:li>'
        "</rdf:Seq></Container:Directory></Device:Container>"
        "<Device:Cameras><rdf:Seq><rdf:li rdf:parseType=\"Resource\"><Device:Camera>"
        f'<Camera:DepthMap rdf:parseType="Resource"><DepthMap:Format>{fmt}</DepthMap:Format>'
        f"<DepthMap:Near>{near}</DepthMap:Near><DepthMap:Far>{far}</DepthMap:Far>"
        f"<DepthMap:Units>{units}</DepthMap:Units><DepthMap:ItemSemantic>Depth</DepthMap:ItemSemantic>"
        "<DepthMap:ItemURI>android/depthmap</DepthMap:ItemURI></Camera:DepthMap>"
        "</Device:Camera></rdf:li></rdf:Seq></Device:Cameras></rdf:Description>")
    return with_segments(jpeg_bytes(rgb), [_app1(STD + xmp)], tail=extra + depth_png)
