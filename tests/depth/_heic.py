"""Build small HEIC files with an auxiliary depth image, for tests.

pillow-heif writes a file with a colour image and a grey image as two top-level items; this helper edits
the ISO-BMFF ``meta`` box so that the grey item becomes the colour item's depth map, as a phone would
write it: an ``auxC`` property with ``urn:mpeg:hevc:2015:auxid:2`` and the depth representation info SEI
(H.265 payload type 177) as its subtype, an ``auxl`` reference to the colour item, and the item
locations shifted by the growth of ``meta``. libheif (inside pillow-heif) then reads it back as
``info["depth_images"]``, which is what the tests check against.
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
        if version in (1, 2):
            pos += 2
        pos += 2
        fmt = {0: None, 4: ">I", 8: ">Q"}
        if base_size:
            (base,) = struct.unpack_from(fmt[base_size], body, pos)
            struct.pack_into(fmt[base_size], out, pos, base + delta)
            pos += base_size
        (extents,) = struct.unpack_from(">H", body, pos)
        pos += 2
        for _ in range(extents):
            if version in (1, 2) and index_size:
                pos += index_size
            if not base_size:
                (off,) = struct.unpack_from(fmt[offset_size], body, pos)
                struct.pack_into(fmt[offset_size], out, pos, off + delta)
            pos += offset_size + length_size
    return bytes(out)


def heic_with_depth(rgb: np.ndarray, depth: np.ndarray, sei: bytes) -> bytes:
    """A HEIC file: ``rgb`` (H x W x 3 uint8) with ``depth`` (h x w uint8) as its auxiliary depth image."""
    import pillow_heif
    from PIL import Image

    heif = pillow_heif.from_pillow(Image.fromarray(rgb))
    heif.add_from_pillow(Image.fromarray(depth, mode="L"))
    buf = io.BytesIO()
    heif.save(buf, quality=-1)
    data = buf.getvalue()
    top = list(_children(data))
    meta_body = dict(top)[b"meta"]
    header, children = meta_body[:4], list(_children(meta_body, 4))
    new_children = []
    has_iref = any(k == b"iref" for k, _ in children)
    for kind, body in children:
        if kind == b"iprp":
            parts = list(_children(body))
            ipco = dict(parts)[b"ipco"]
            n_props = len(list(_children(ipco)))
            auxc = _box(b"auxC", b"\x00\x00\x00\x00" + b"urn:mpeg:hevc:2015:auxid:2\x00" + sei)
            ipco = ipco + auxc
            ipma = bytearray(dict(parts)[b"ipma"])
            version, flags = ipma[0], int.from_bytes(ipma[1:4], "big")
            assert version == 0 and not flags & 1, "helper handles ipma v0 with 7-bit indices"
            (count,) = struct.unpack_from(">I", ipma, 4)
            pos, rebuilt = 8, bytearray(ipma[:8])
            for _ in range(count):
                item, n = struct.unpack_from(">HB", ipma, pos)
                assoc = bytes(ipma[pos + 3:pos + 3 + n])
                pos += 3 + n
                if item == 2:
                    assoc += bytes([0x80 | (n_props + 1)])
                    n += 1
                rebuilt += struct.pack(">HB", item, n) + assoc
            body = _box(b"ipco", ipco) + _box(b"ipma", bytes(rebuilt))
        elif kind == b"iref":
            body = body + _box(b"auxl", struct.pack(">HHH", 2, 1, 1))
        new_children.append((kind, body))
        if kind == b"iinf" and not has_iref:
            new_children.append((b"iref", b"\x00\x00\x00\x00" + _box(b"auxl", struct.pack(">HHH", 2, 1, 1))))
    new_meta = header + b"".join(_box(k, b) for k, b in new_children)
    delta = len(new_meta) - len(meta_body)
    new_meta = header + b"".join(_box(k, _shift_iloc(b, delta) if k == b"iloc" else b) for k, b in new_children)
    order = [k for k, _ in top]
    assert order.index(b"meta") < order.index(b"mdat")
    return b"".join(_box(k, new_meta if k == b"meta" else b) for k, b in top)
