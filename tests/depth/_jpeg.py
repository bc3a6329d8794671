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
                chunk: int = 150, corrupt_extended: bool = False, units: str | None = None,
                original: np.ndarray | None = None, focus: dict | None = None,
                confidence: np.ndarray | None = None, exif: bytes | None = None) -> bytes:
    """A Lens Blur style JPEG: GDepth (+ GImage original, GFocus, confidence) with the data in extended XMP."""
    data = base64.b64encode(png_bytes(depth_samples)).decode()
    big = f'GDepth:Data="{data}"'
    if confidence is not None:
        big += f' GDepth:Confidence="{base64.b64encode(png_bytes(confidence)).decode()}"'
    if original is not None:
        big += f' GImage:Data="{base64.b64encode(jpeg_bytes(original)).decode()}"'
    extended = _packet('<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
                       f'xmlns:GImage="http://ns.google.com/photos/1.0/image/" {big}/>')
    if corrupt_extended:
        extended = extended.replace(b"rdf:Description", b"rdf:Descr<ption", 1)
    guid = hashlib.md5(extended).hexdigest().upper().encode()
    attrs = f'GDepth:Format="{fmt}" GDepth:Near="{near}" GDepth:Far="{far}" GDepth:Mime="image/png" '
    if units is not None:
        attrs += f'GDepth:Units="{units}" '
    if confidence is not None:
        attrs += 'GDepth:ConfidenceMime="image/png" '
    if original is not None:
        attrs += 'GImage:Mime="image/jpeg" '
    for key, value in (focus or {}).items():
        attrs += f'GFocus:{key}="{value}" '
    standard = _packet(
        '<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
        'xmlns:GFocus="http://ns.google.com/photos/1.0/focus/" xmlns:GImage="http://ns.google.com/photos/1.0/image/" '
        'xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
        f'{attrs}xmpNote:HasExtendedXMP="{guid.decode()}"/>')
    segments = ([_app1(b"Exif\x00\x00" + exif)] if exif else []) + [_app1(STD + standard)]
    for offset in range(0, len(extended), chunk):
        part = extended[offset:offset + chunk]
        segments.append(_app1(EXT + guid + struct.pack(">II", len(extended), offset) + part))
    return with_segments(jpeg_bytes(rgb), segments)


def exif_orientation(value: int) -> bytes:
    """A minimal big-endian TIFF/EXIF block holding only the Orientation tag (0x0112, SHORT)."""
    return b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) \
        + struct.pack(">I", 0)


def dynamic_depth_jpeg(rgb: np.ndarray, depth_samples: np.ndarray, *, fmt: str, near: float, far: float,
                       units: str = "Meters", uri_name: str = "DepthURI", original: np.ndarray | None = None,
                       confidence: np.ndarray | None = None, focal_table: list[tuple[float, float]] | None = None,
                       exif: bytes | None = None) -> bytes:
    """A Dynamic Depth 1.0 JPEG: the XMP's container directory and one camera, the items appended in order."""
    depth_png = png_bytes(depth_samples)
    extra = b"not a depth map, a decoy item"
    items = [("image/jpeg", "Primary", b"", None),
             ("application/octet-stream", "Other", extra, "extra"),
             ("image/png", "Depth", depth_png, "android/depthmap")]
    if confidence is not None:
        items.append(("image/png", "Confidence", png_bytes(confidence), "android/confidencemap"))
    if original is not None:
        items.append(("image/jpeg", "Original", jpeg_bytes(original), "android/original_image"))
    directory = ""
    for mime, semantic, payload, uri in items:
        length = "" if semantic == "Primary" else f' Item:Length="{len(payload)}" Item:DataURI="{uri}"'
        directory += (f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="{mime}" '
                      f'Item:Semantic="{semantic}"{length}/></rdf:li>')
    depth_map = (f"<DepthMap:Format>{fmt}</DepthMap:Format><DepthMap:Near>{near}</DepthMap:Near>"
                 f"<DepthMap:Far>{far}</DepthMap:Far><DepthMap:Units>{units}</DepthMap:Units>"
                 "<DepthMap:ItemSemantic>Depth</DepthMap:ItemSemantic>"
                 f"<DepthMap:{uri_name}>android/depthmap</DepthMap:{uri_name}>"
                 "<DepthMap:MeasureType>OpticalAxis</DepthMap:MeasureType>")
    if confidence is not None:
        depth_map += "<DepthMap:ConfidenceURI>android/confidencemap</DepthMap:ConfidenceURI>"
    if focal_table:
        table = base64.b64encode(np.asarray(focal_table, dtype="<f4").tobytes()).decode()
        depth_map += (f"<DepthMap:FocalTableEntryCount>{len(focal_table)}</DepthMap:FocalTableEntryCount>"
                      f"<DepthMap:FocalTable>{table}</DepthMap:FocalTable>")
    image = ""
    if original is not None:
        image = ('<Camera:Image rdf:parseType="Resource"><Image:ItemSemantic>Original</Image:ItemSemantic>'
                 "<Image:ItemURI>android/original_image</Image:ItemURI></Camera:Image>")
    xmp = _packet(
        '<rdf:Description rdf:about="" '
        'xmlns:Device="http://ns.google.com/photos/dd/1.0/device/" '
        'xmlns:Container="http://ns.google.com/photos/dd/1.0/container/" '
        'xmlns:Item="http://ns.google.com/photos/dd/1.0/item/" '
        'xmlns:Camera="http://ns.google.com/photos/dd/1.0/camera/" '
        'xmlns:Image="http://ns.google.com/photos/dd/1.0/image/" '
        'xmlns:DepthMap="http://ns.google.com/photos/dd/1.0/depthmap/">'
        f"<Device:Container><Container:Directory><rdf:Seq>{directory}</rdf:Seq></Container:Directory>"
        "</Device:Container>"
        '<Device:Cameras><rdf:Seq><rdf:li rdf:parseType="Resource"><Device:Camera rdf:parseType="Resource">'
        "<Camera:Trait>Physical</Camera:Trait>"
        f'<Camera:DepthMap rdf:parseType="Resource">{depth_map}</Camera:DepthMap>{image}'
        "</Device:Camera></rdf:li></rdf:Seq></Device:Cameras></rdf:Description>")
    segments = ([_app1(b"Exif\x00\x00" + exif)] if exif else []) + [_app1(STD + xmp)]
    return with_segments(jpeg_bytes(rgb), segments, tail=b"".join(payload for _, _, payload, _ in items))


def gcontainer_portrait_jpeg(rgb: np.ndarray, depth_samples: np.ndarray, *, near: float, far: float,
                             original: np.ndarray, confidence: np.ndarray) -> bytes:
    """A later Pixel portrait: GDepth metadata without Data, the maps and the original appended as items of a
    Google Camera container directory (Primary, GainMap, Original, Depth, Confidence)."""
    items = [("image/jpeg", "Primary", b""), ("image/jpeg", "GainMap", b"a gain map stands here"),
             ("image/jpeg", "Original", jpeg_bytes(original)), ("image/png", "Depth", png_bytes(depth_samples)),
             ("image/png", "Confidence", png_bytes(confidence))]
    directory = "".join(
        f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="{mime}" Item:Semantic="{semantic}" '
        f'Item:Length="{len(payload)}"/></rdf:li>' for mime, semantic, payload in items)
    xmp = _packet(
        '<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
        'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
        'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" '
        f'GDepth:Format="RangeInverse" GDepth:Near="{near}" GDepth:Far="{far}" GDepth:Mime="image/png">'
        f"<Container:Directory><rdf:Seq>{directory}</rdf:Seq></Container:Directory></rdf:Description>")
    return with_segments(jpeg_bytes(rgb), [_app1(STD + xmp)], tail=b"".join(p for _, _, p in items))
