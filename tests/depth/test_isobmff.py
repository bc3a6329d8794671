"""The HEIF structure reader on ``meta`` boxes built byte by byte here, in the layouts of ISO/IEC 14496-12 and
23008-12 that pillow-heif's writer does not use (32-bit item ids, ipma v1 with 15-bit indices, 64-bit box
sizes, idat data), and on damaged ones (truncated boxes and groups), which must not raise."""

import struct

from lensblur.depth.isobmff import read_item, read_layout, turn_like


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def full(kind: bytes, body: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


def big_box(kind: bytes, body: bytes) -> bytes:
    """A box with a 64-bit size (size field 1, then the largesize)."""
    return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body


def infe(item: int, kind: bytes, hidden: bool = False) -> bytes:
    return full(b"infe", struct.pack(">IH", item, 0) + kind + b"\x00", version=3, flags=int(hidden))


def meta_v1() -> bytes:
    """Two images (ids 70000, 70001; 32-bit ids everywhere), an XMP item in idat, a matte, a stereo group."""
    iinf = full(b"iinf", struct.pack(">I", 4) + infe(70000, b"hvc1") + infe(70001, b"hvc1") +
                infe(70002, b"mime", hidden=True) + infe(70003, b"hvc1", hidden=True), version=1)
    iref = full(b"iref", box(b"cdsc", struct.pack(">IHI", 70002, 1, 70000)) +
                box(b"auxl", struct.pack(">IHI", 70003, 1, 70000)), version=1)
    ipco = box(b"ipco", full(b"ispe", struct.pack(">II", 640, 480)) + box(b"irot", b"\x03") + box(b"imir", b"\x01") +
               full(b"auxC", b"urn:com:apple:photo:2018:aux:portraiteffectsmatte\x00"))
    entries = [(70000, [1, 0x8002, 0x8003]), (70001, [1]), (70003, [1, 4])]
    ipma = full(b"ipma", struct.pack(">I", len(entries)) + b"".join(
        struct.pack(">IB", item, len(a)) + b"".join(struct.pack(">H", x) for x in a) for item, a in entries),
        version=1, flags=1)
    packet = b"<x:xmpmeta>hello</x:xmpmeta>"
    iloc = full(b"iloc", bytes([0x44, 0x40]) + struct.pack(">I", 1) +
                struct.pack(">IHHIHII", 70002, 1, 0, 0, 1, 0, len(packet)), version=2)
    grpl = box(b"grpl", full(b"ster", struct.pack(">IIII", 9, 2, 70001, 70000)) +
               full(b"altr", struct.pack(">IIII", 10, 2, 70000, 70001)))
    return big_box(b"meta", b"\x00\x00\x00\x00" + full(b"pitm", struct.pack(">I", 70000), version=1) + iinf + iref +
                   box(b"iprp", ipco + ipma) + iloc + box(b"idat", packet) + grpl), packet


def test_32_bit_ids_15_bit_indices_64_bit_sizes_and_idat(tmp_path):
    meta, packet = meta_v1()
    path = tmp_path / "v1.heic"
    path.write_bytes(box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + meta + box(b"mdat", b"\x00" * 16))
    layout = read_layout(path)
    assert layout.brands == ("heic", "mif1", "heic") and layout.primary == 70000
    assert {i: (x.type, x.hidden) for i, x in layout.items.items()} == {
        70000: ("hvc1", False), 70001: ("hvc1", False), 70002: ("mime", True), 70003: ("hvc1", True)}
    assert layout.transforms(70000) == (("irot", 3), ("imir", 1)) and layout.transforms(70001) == ()
    assert layout.size(70001) == (640, 480)
    assert layout.auxiliaries(70000) == ((70003, "urn:com:apple:photo:2018:aux:portraiteffectsmatte"),)
    assert layout.descriptions(70000) == (70002,) and read_item(path, layout, 70002) == packet
    assert layout.stereo_pair() == (70001, 70000)            # the group's order: left first, whatever pitm says


def test_damaged_boxes_are_skipped_not_raised(tmp_path):
    meta, _ = meta_v1()
    path = tmp_path / "cut.heic"
    path.write_bytes(box(b"ftyp", b"heic\x00\x00\x00\x00") + meta[:-30])       # the grpl box runs past the end
    layout = read_layout(path)
    assert layout.primary is None and layout.items == {}   # meta itself overruns the file: nothing is trusted
    truncated = box(b"grpl", full(b"ster", struct.pack(">III", 1, 2, 5)))       # two entities announced, one given
    path.write_bytes(box(b"ftyp", b"heic\x00\x00\x00\x00") + full(b"meta", truncated))
    assert read_layout(path).groups == () and read_layout(path).stereo_pair() is None
    path.write_bytes(b"\xff\xd8\xff\xe0 not a box")
    assert read_layout(path).items == {}
    path.write_bytes(struct.pack(">I4s", 0, b"meta"))           # a size-0 box (to the end) without a body
    assert read_layout(path).items == {}


def test_turns_compose_in_order():
    import numpy as np

    a = np.arange(6).reshape(2, 3)
    assert np.array_equal(turn_like(a, [("irot", 1)]), [[2, 5], [1, 4], [0, 3]])       # anticlockwise
    assert np.array_equal(turn_like(a, [("imir", 0)]), a[::-1])                        # top and bottom
    assert np.array_equal(turn_like(a, [("imir", 1)]), a[:, ::-1])                     # left and right
    assert np.array_equal(turn_like(a, [("irot", 3), ("imir", 1)]), a.T)               # EXIF 5, a transpose
