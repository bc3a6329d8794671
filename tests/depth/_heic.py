"""Build small HEIC files as phones write them, for tests.

pillow-heif writes the images (a colour photo, grey maps) as top-level items but has no way to make one
image the auxiliary of another, to group two as a stereo pair, or to add a turn of its own choosing; so
:func:`edit_heic` edits the ISO-BMFF ``meta`` box itself, with this file's own small box writer:

* an auxiliary image: an ``auxC`` property (its URN, such as ``urn:mpeg:hevc:2015:auxid:2`` for depth with
  the depth representation info SEI, H.265 payload type 177, as its subtype, or Apple's
  ``urn:com:apple:photo:2018:aux:portraiteffectsmatte``) and an ``auxl`` reference to its master;
* transforms: ``irot`` and ``imir`` properties, marked essential, after the item's others;
* entity groups: a ``grpl`` box of ``EntityToGroupBox`` entries (``ster``: left, right);

and shifts the item locations (``iloc``) by the growth of ``meta``. libheif (inside pillow-heif) then reads
the result, which is what the tests check the readers against.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np


class _Bits:
    def __init__(self):
        self.bits: list[int] = []

    def put(self, value: int, n: int):
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int):
        code = value + 1
        n = code.bit_length()
        self.put(0, n - 1)
        self.put(code, n)

    def element(self, x: float):
        # sign u(1), exponent u(7), mantissa_len_minus1 u(5), mantissa u(v): x = 2^(e-31) (1 + m / 2^len)
        sign = 1 if x < 0 else 0
        x = abs(x)
        e = math.floor(math.log2(x))
        length = 23
        m = round((x / 2.0 ** e - 1.0) * 2 ** length)
        if m == 2 ** length:
            e, m = e + 1, 0
        self.put(sign, 1)
        self.put(e + 31, 7)
        self.put(length - 1, 5)
        self.put(m, length)

    def payload(self) -> bytes:
        bits = self.bits + [1]  # rbsp stop bit
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def depth_sei(representation: int, *, z_near=None, z_far=None, d_min=None, d_max=None) -> bytes:
    b = _Bits()
    for v in (z_near, z_far, d_min, d_max):
        b.put(v is not None, 1)
    b.ue(representation)
    if d_min is not None or d_max is not None:
        b.ue(0)
    for v in (z_near, z_far, d_min, d_max):
        if v is not None:
            b.element(v)
    payload = b.payload()
    nal = b"\x4e\x01" + bytes([177, len(payload)]) + payload
    body = struct.pack(">I", len(nal)) + nal
    return struct.pack(">I", len(body)) + body


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, body: bytes, version: int = 0, flags: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


def _children(data: bytes, start: int = 0):
    pos = start
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + size]
        pos += size


def _shift_iloc(body: bytes, delta: int) -> bytes:
    out = bytearray(body)
    version = body[0]
    offset_size, length_size = body[4] >> 4, body[4] & 15
    base_size, index_size = body[5] >> 4, body[5] & 15
    pos = 6
    count_fmt = ">H" if version < 2 else ">I"
    (count,) = struct.unpack_from(count_fmt, body, pos)
    pos += struct.calcsize(count_fmt)
    for _ in range(count):
        pos += 2 if version < 2 else 4
        in_file = True                              # construction method 0: offsets into the file
        if version in (1, 2):
            in_file = (body[pos + 1] & 15) == 0     # 1: into idat, 2: into another item; neither moves
            pos += 2
        pos += 2
        fmt = {0: None, 4: ">I", 8: ">Q"}
        if base_size:
            (base,) = struct.unpack_from(fmt[base_size], body, pos)
            if in_file:
                struct.pack_into(fmt[base_size], out, pos, base + delta)
            pos += base_size
        (extents,) = struct.unpack_from(">H", body, pos)
        pos += 2
        for _ in range(extents):
            if version in (1, 2) and index_size:
                pos += index_size
            if not base_size and in_file:
                (off,) = struct.unpack_from(fmt[offset_size], body, pos)
                struct.pack_into(fmt[offset_size], out, pos, off + delta)
            pos += offset_size + length_size
    return bytes(out)


def _image_ids(iinf: bytes) -> list[int]:
    """The ids of the coded images (``hvc1``) listed in an ``iinf`` body, in stored order."""
    start = 4 + (2 if iinf[0] == 0 else 4)
    ids = []
    for kind, body in _children(iinf, start):
        if kind == b"infe" and body[0] >= 2:
            width = 2 if body[0] == 2 else 4
            item = int.from_bytes(body[4:4 + width], "big")
            if body[4 + width + 2:4 + width + 6] == b"hvc1":
                ids.append(item)
    return ids


def edit_heic(data: bytes, *, aux=(), transforms=None, groups=(), xmp=None) -> bytes:
    """Edit the ``meta`` box of a HEIC written by pillow-heif (see the module docstring).

    Args:
        data: the file.
        aux: ``(image, master, urn, subtype)`` entries: image number ``image`` (0 = the first image written)
            becomes an auxiliary image of type ``urn`` of image number ``master``.
        transforms: ``{image: [("irot", quarter_turns_anticlockwise) | ("imir", axis), ...]}``.
        groups: ``(grouping_type, (image, image, ...))`` entries, such as ``(b"ster", (0, 1))``.
        xmp: ``(image, packet)``: a ``mime`` item holding ``packet`` (in a second ``mdat`` at the end) that
            describes image number ``image`` (a ``cdsc`` reference), as Apple describes its depth maps.

    Returns:
        The edited file.
    """
    top = list(_children(data))
    meta_body = dict(top)[b"meta"]
    header, children = meta_body[:4], list(_children(meta_body, 4))
    ids = _image_ids(dict(children)[b"iinf"])
    added: dict[int, list[int]] = {}
    new_props: list[bytes] = []

    def prop(image: int, box: bytes):
        new_props.append(box)
        added.setdefault(ids[image], []).append(len(new_props))

    for image, _master, urn, subtype in aux:
        prop(image, _full(b"auxC", urn.encode() + b"\x00" + subtype))
    for image, steps in (transforms or {}).items():
        for kind, value in steps:
            prop(image, _box(kind.encode(), bytes([value])))
    refs = b"".join(_box(b"auxl", struct.pack(">HHH", ids[image], 1, ids[master])) for image, master, _u, _s in aux)
    xmp_id = None
    if xmp is not None:
        xmp_id = max(ids) + 50
        refs += _box(b"cdsc", struct.pack(">HHH", xmp_id, 1, ids[xmp[0]]))
    rebuilt = []
    for kind, body in children:
        if kind == b"iprp":
            parts = list(_children(body))
            ipco = dict(parts)[b"ipco"]
            base = len(list(_children(ipco)))
            ipma = dict(parts)[b"ipma"]
            version, flags = ipma[0], int.from_bytes(ipma[1:4], "big")
            assert version == 0 and not flags & 1, "written for ipma v0 with 7-bit indices"
            (count,) = struct.unpack_from(">I", ipma, 4)
            pos, entries = 8, bytearray(ipma[:8])
            for _ in range(count):
                item, n = struct.unpack_from(">HB", ipma, pos)
                assoc = bytes(ipma[pos + 3:pos + 3 + n])
                pos += 3 + n
                extra = bytes(0x80 | (base + i) for i in added.get(item, []))
                assert base + len(new_props) < 128
                entries += struct.pack(">HB", item, n + len(extra)) + assoc + extra
            body = _box(b"ipco", ipco + b"".join(new_props)) + _box(b"ipma", bytes(entries))
        elif kind == b"iref" and refs:
            body, refs = body + refs, b""
        elif kind == b"iinf" and xmp_id is not None:
            assert body[0] == 0, "written for iinf v0"
            infe = _full(b"infe", struct.pack(">HH", xmp_id, 0) + b"mime" + b"\x00application/rdf+xml\x00", version=2)
            body = body[:4] + struct.pack(">H", struct.unpack_from(">H", body, 4)[0] + 1) + body[6:] + infe
        elif kind == b"iloc" and xmp_id is not None:
            assert body[0] == 0 and body[4] == 0x44 and body[5] >> 4 == 4, "written for iloc v0, 32-bit fields"
            count = struct.unpack_from(">H", body, 6)[0]
            body = (body[:6] + struct.pack(">H", count + 1) + body[8:] +
                    struct.pack(">HHIHII", xmp_id, 0, 0, 1, 0, len(xmp[1])))
        rebuilt.append((kind, body))
        if kind == b"iinf" and refs and not any(k == b"iref" for k, _ in children):
            rebuilt.append((b"iref", b"\x00\x00\x00\x00" + refs))
            refs = b""
    if groups:
        boxes = b"".join(_full(kind, struct.pack(">II", 100 + n, len(members)) +
                               b"".join(struct.pack(">I", ids[m]) for m in members))
                         for n, (kind, members) in enumerate(groups))
        rebuilt.append((b"grpl", boxes))
    new_meta = header + b"".join(_box(k, b) for k, b in rebuilt)
    delta = len(new_meta) - len(meta_body)
    shifted = [(k, _shift_iloc(b, delta) if k == b"iloc" else b) for k, b in rebuilt]
    order = [k for k, _ in top]
    assert order.index(b"meta") < order.index(b"mdat")
    if xmp_id is not None:                          # the packet's item: a base offset into the mdat at the end
        start = sum(len(_box(k, b)) for k, b in top if k != b"meta") + len(_box(b"meta", header + b"".join(
            _box(k, b) for k, b in shifted))) + 8
        shifted = [(k, b[:-14] + struct.pack(">I", start) + b[-10:] if k == b"iloc" else b) for k, b in shifted]
    new_meta = header + b"".join(_box(k, b) for k, b in shifted)
    out = b"".join(_box(k, new_meta if k == b"meta" else b) for k, b in top)
    return out + (_box(b"mdat", xmp[1]) if xmp_id is not None else b"")


def heic_images(*images: np.ndarray) -> bytes:
    """A HEIC of ``images`` (``H x W x 3`` or ``H x W`` uint8) as top-level items, the first primary,
    written by pillow-heif (lossless)."""
    import pillow_heif
    from PIL import Image

    heif = pillow_heif.from_pillow(Image.fromarray(images[0]))
    for image in images[1:]:
        heif.add_from_pillow(Image.fromarray(image, mode="L" if image.ndim == 2 else "RGB"))
    buf = io.BytesIO()
    heif.save(buf, quality=-1)
    return buf.getvalue()


DEPTH_URN = "urn:mpeg:hevc:2015:auxid:2"
MATTE_URN = "urn:com:apple:photo:2018:aux:portraiteffectsmatte"


def heic_with_depth(rgb: np.ndarray, depth: np.ndarray, sei: bytes, *, matte: np.ndarray | None = None,
                    transforms=None, aux_transforms: bool = True, depth_xmp: bytes | None = None) -> bytes:
    """A HEIC file: ``rgb`` (H x W x 3 uint8) with ``depth`` (h x w uint8) as its auxiliary depth image, and
    ``matte`` (uint8, 255 = person) as Apple's portrait effects matte. ``transforms`` (``irot``/``imir``
    steps) go on the photo and, with ``aux_transforms``, on the depth and matte too (as Apple writes them)."""
    images = [rgb, depth] + ([matte] if matte is not None else [])
    aux = [(1, 0, DEPTH_URN, sei)] + ([(2, 0, MATTE_URN, b"")] if matte is not None else [])
    steps = {}
    if transforms:
        steps = {n: list(transforms) for n in (range(len(images)) if aux_transforms else [0])}
    return edit_heic(heic_images(*images), aux=aux, transforms=steps,
                     xmp=(1, depth_xmp) if depth_xmp is not None else None)
