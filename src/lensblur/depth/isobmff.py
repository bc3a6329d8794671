"""The item structure of a HEIF file (ISO/IEC 23008-12 on the ISO base media file format, ISO/IEC 14496-12),
read from its ``meta`` box without decoding any image.

pillow-heif (libheif) decodes the images; what it does not say, or says only after decoding, is read here:
which item is the primary (``pitm``), each item's type and hidden flag (``iinf``/``infe``), the references
between items (``iref``: ``auxl`` auxiliary-of, ``thmb``, ``dimg``, ``cdsc``), where each item's bytes are
(``iloc``, ``idat``: used here only for small metadata items, such as the XMP describing a depth map), each
item's properties in
association order (``iprp``: ``ipco`` and ``ipma``), among them the transforms ``irot`` (a turn by a multiple
of 90 degrees anticlockwise), ``imir`` (a mirror) and ``clap`` (a crop) and the auxiliary type ``auxC``
(``urn:mpeg:hevc:2015:auxid:2`` for depth, ``urn:com:apple:photo:2018:aux:portraiteffectsmatte`` for
Apple's portrait matte), and the entity groups of ``grpl`` (``ster``: a stereo pair, left view first;
``altr``, ``tsyn``...).

Only the ``meta`` box is read, so a 200 MP photo costs a few kilobytes here. Boxes of another kind are
skipped by their size; a box that overruns its parent ends the reading of that parent.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

__all__ = ["EntityGroup", "HeifLayout", "Item", "read_item", "read_layout", "turn_like"]

AUX_DEPTH = ("urn:mpeg:hevc:2015:auxid:2", "urn:mpeg:mpegB:cicp:systems:auxiliary:depth")
AUX_MATTE = "urn:com:apple:photo:2018:aux:portraiteffectsmatte"
_IMAGE_TYPES = ("hvc1", "av01", "grid", "iden", "iovl", "jpeg", "unci", "j2k1", "vvc1", "avc1", "mski")


@dataclass(frozen=True)
class Item:
    """One item of the file.

    Args:
        id: its ``item_ID``.
        type: its four-character ``item_type`` (``hvc1``, ``grid``, ``Exif``, ``mime``...).
        hidden: the ``infe`` hidden flag (not meant to be shown on its own, such as a grid's tiles).
    """

    id: int
    type: str
    hidden: bool = False

    @property
    def is_image(self) -> bool:
        """Whether the item is a coded or derived image."""
        return self.type in _IMAGE_TYPES


@dataclass(frozen=True)
class EntityGroup:
    """An ``EntityToGroupBox`` of ``grpl``.

    Args:
        type: its grouping type (``ster``, ``altr``, ``tsyn``, ...).
        id: its ``group_id``.
        entities: the ``entity_id`` values in stored order (for ``ster``: left view, right view).
    """

    type: str
    id: int
    entities: tuple[int, ...]


@dataclass(frozen=True)
class HeifLayout:
    """What the ``meta`` box of a HEIF file says about its items.

    Args:
        brands: the major brand and the compatible brands of ``ftyp``.
        primary: the primary item's id (``pitm``), or None.
        items: items by id.
        references: ``(type, from_id, to_ids)`` for every ``iref`` entry, in stored order.
        properties: for each item id, its properties in association order as ``(type, payload)``
            (the payload after the box header; for full boxes it starts with version and flags).
        groups: the entity groups of ``grpl``.
        locations: for each item id, ``(construction_method, ((offset, length), ...))`` from ``iloc``: method 0
            offsets in the file, 1 offsets in ``idat`` (base offsets added; length 0 = to the end).
        idat: the ``idat`` box's body (item data kept inside ``meta``).
    """

    brands: tuple[str, ...] = ()
    primary: int | None = None
    items: dict[int, Item] = field(default_factory=dict)
    references: tuple[tuple[str, int, tuple[int, ...]], ...] = ()
    properties: dict[int, tuple[tuple[str, bytes], ...]] = field(default_factory=dict)
    groups: tuple[EntityGroup, ...] = ()
    locations: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = field(default_factory=dict)
    idat: bytes = b""

    def descriptions(self, item_id: int) -> tuple[int, ...]:
        """The ids of the metadata items that describe an item (``cdsc`` references to it: Exif, XMP)."""
        return tuple(src for kind, src, dst in self.references if kind == "cdsc" and item_id in dst)

    def transforms(self, item_id: int) -> tuple[tuple[str, int], ...]:
        """The item's turn and mirror, in the order they apply: ``("irot", quarter_turns_anticlockwise)`` and
        ``("imir", axis)`` (ISO/IEC 23008-12:2022 6.5.12: axis 0 exchanges top and bottom, 1 left and right;
        libheif reads it so). A ``clap`` crop is not among them.

        Args:
            item_id: the item.

        Returns:
            The transforms; empty for an item stored upright.
        """
        found = []
        for kind, payload in self.properties.get(item_id, ()):
            if kind == "irot" and payload:
                found.append(("irot", payload[0] & 3))
            elif kind == "imir" and payload:
                found.append(("imir", payload[0] & 1))
        return tuple(found)

    def aux_type(self, item_id: int) -> str | None:
        """The item's auxiliary type (``auxC``'s URN), or None for an item that is not auxiliary."""
        for kind, payload in self.properties.get(item_id, ()):
            if kind == "auxC" and len(payload) > 4:
                return payload[4:].split(b"\x00", 1)[0].decode("ascii", "replace")
        return None

    def size(self, item_id: int) -> tuple[int, int] | None:
        """The item's ``(width, height)`` before its turn: ``ispe``, cropped by ``clap`` where it has one; or None."""
        size = None
        for kind, payload in self.properties.get(item_id, ()):
            if kind == "ispe" and len(payload) >= 12:
                size = struct.unpack(">II", payload[4:12])
            elif kind == "clap" and len(payload) >= 16 and size is not None:
                wn, wd, hn, hd = struct.unpack(">IIII", payload[:16])
                if wd and hd:
                    size = (int(wn / wd), int(hn / hd))
        return size

    def auxiliaries(self, item_id: int) -> tuple[tuple[int, str | None], ...]:
        """The auxiliary images of an item (``auxl`` references to it): ``(id, auxiliary type)`` in stored order."""
        return tuple((src, self.aux_type(src)) for kind, src, dst in self.references
                     if kind == "auxl" and item_id in dst)

    def stereo_pair(self) -> tuple[int, int] | None:
        """``(left, right)``: the item ids of the first ``ster`` group of two images, or None.

        Returns:
            The left and right views' ids (ISO/IEC 23008-12: the group's first entity is the left view).
        """
        for group in self.groups:
            if group.type == "ster" and len(group.entities) == 2 and all(
                    self.items.get(e) is not None and self.items[e].is_image for e in group.entities):
                return group.entities[0], group.entities[1]
        return None


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """``(type, body_start, body_end)`` of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def _meta_bytes(path: str | os.PathLike) -> tuple[bytes, bytes]:
    """The ``ftyp`` and ``meta`` box bodies of the file (empty when absent), read without the media data."""
    ftyp = meta = b""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        total = fh.tell()
        pos = 0
        while pos + 8 <= total and not (ftyp and meta):
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                break
            size, kind = struct.unpack_from(">I4s", head)
            header = 8
            if size == 1 and len(head) >= 16:
                (size,) = struct.unpack_from(">Q", head, 8)
                header = 16
            elif size == 0:
                size = total - pos
            if size < header or pos + size > total:
                break
            if kind in (b"ftyp", b"meta"):
                fh.seek(pos + header)
                body = fh.read(size - header)
                if kind == b"ftyp":
                    ftyp = body
                else:
                    meta = body
            pos += size
    return ftyp, meta


def _uint(data: bytes, pos: int, size: int) -> tuple[int, int]:
    """A big-endian unsigned number of ``size`` bytes at ``pos`` and the position after it."""
    return int.from_bytes(data[pos:pos + size], "big"), pos + size


def _items(meta: bytes, start: int, end: int) -> dict[int, Item]:
    version = meta[start]
    pos = start + 4 + (2 if version == 0 else 4)     # the entry count: the boxes that follow say it
    found = {}
    for kind, s, e in _boxes(meta, pos, end):
        if kind != "infe" or e - s < 8:
            continue
        v, flags = meta[s], int.from_bytes(meta[s + 1:s + 4], "big")
        if v < 2:
            item_id, _ = _uint(meta, s + 4, 2)
            found[item_id] = Item(item_id, "", bool(flags & 1))
            continue
        item_id, p = _uint(meta, s + 4, 2 if v == 2 else 4)
        p += 2                                          # item_protection_index
        found[item_id] = Item(item_id, meta[p:p + 4].decode("latin-1"), bool(flags & 1))
    return found


def _references(meta: bytes, start: int, end: int) -> list[tuple[str, int, tuple[int, ...]]]:
    width = 2 if meta[start] == 0 else 4
    found = []
    for kind, s, e in _boxes(meta, start + 4, end):
        if s + width + 2 > e:
            continue
        src, p = _uint(meta, s, width)
        count, p = _uint(meta, p, 2)
        dst = []
        for _ in range(count):
            if p + width > e:
                break
            value, p = _uint(meta, p, width)
            dst.append(value)
        found.append((kind, src, tuple(dst)))
    return found


def _properties(meta: bytes, start: int, end: int) -> dict[int, tuple[tuple[str, bytes], ...]]:
    pool: list[tuple[str, bytes]] = []
    associations: dict[int, list[int]] = {}
    for kind, s, e in _boxes(meta, start, end):
        if kind == "ipco":
            pool = [(k, meta[a:b]) for k, a, b in _boxes(meta, s, e)]
        elif kind == "ipma" and e - s >= 8:
            version, flags = meta[s], int.from_bytes(meta[s + 1:s + 4], "big")
            count, p = _uint(meta, s + 4, 4)
            for _ in range(count):
                if p >= e:
                    break
                item_id, p = _uint(meta, p, 2 if version < 1 else 4)
                n, p = _uint(meta, p, 1)
                for _ in range(n):
                    if flags & 1:
                        value, p = _uint(meta, p, 2)
                        index = value & 0x7FFF
                    else:
                        value, p = _uint(meta, p, 1)
                        index = value & 0x7F
                    if index:                           # 0 means "no property"
                        associations.setdefault(item_id, []).append(index)
    return {item_id: tuple(pool[i - 1] for i in indices if 0 < i <= len(pool))
            for item_id, indices in associations.items()}


def _groups(meta: bytes, start: int, end: int) -> list[EntityGroup]:
    found = []
    for kind, s, e in _boxes(meta, start, end):
        if e - s < 12:
            continue
        group_id, p = _uint(meta, s + 4, 4)
        count, p = _uint(meta, p, 4)
        if p + 4 * count > e:
            continue                                    # a truncated entity list is no group
        found.append(EntityGroup(kind, group_id, tuple(_uint(meta, p + 4 * i, 4)[0] for i in range(count))))
    return found


def _locations(meta: bytes, start: int, end: int) -> dict[int, tuple[int, tuple[tuple[int, int], ...]]]:
    version = meta[start]
    sizes = meta[start + 4], meta[start + 5]
    offset_size, length_size = sizes[0] >> 4, sizes[0] & 15
    base_size, index_size = sizes[1] >> 4, (sizes[1] & 15) if version in (1, 2) else 0
    count, p = _uint(meta, start + 6, 2 if version < 2 else 4)
    found = {}
    for _ in range(count):
        if p >= end:
            break
        item_id, p = _uint(meta, p, 2 if version < 2 else 4)
        method = 0
        if version in (1, 2):
            method, p = _uint(meta, p, 2)
            method &= 15
        p += 2                                          # data_reference_index
        base, p = _uint(meta, p, base_size)
        extents_count, p = _uint(meta, p, 2)
        extents = []
        for _ in range(extents_count):
            p += index_size
            offset, p = _uint(meta, p, offset_size)
            length, p = _uint(meta, p, length_size)
            extents.append((base + offset, length))
        found[item_id] = (method, tuple(extents))
    return found


def read_item(path: str | os.PathLike, layout: HeifLayout, item_id: int, *, limit: int = 1 << 20) -> bytes | None:
    """The stored bytes of a small item (an XMP or Exif block), or None when it cannot be read here.

    Args:
        path: the file ``layout`` was read from.
        layout: its :class:`HeifLayout`.
        item_id: the item.
        limit: the most bytes read (metadata items are small; images are decoded by libheif, not here).

    Returns:
        The item's bytes (its extents joined), or None for an item stored otherwise (in another item), of
        unknown or excessive length, or beyond the end of the file.
    """
    method, extents = layout.locations.get(item_id, (None, ()))
    if method not in (0, 1) or not extents or any(length <= 0 for _, length in extents):
        return None
    if sum(length for _, length in extents) > limit:
        return None
    if method == 1:
        data = b"".join(layout.idat[o:o + n] for o, n in extents)
        return data if len(data) == sum(n for _, n in extents) else None
    chunks = []
    with open(path, "rb") as fh:
        for offset, length in extents:
            fh.seek(offset)
            chunk = fh.read(length)
            if len(chunk) != length:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def read_layout(path: str | os.PathLike) -> HeifLayout:
    """The item structure of the HEIF file at ``path`` (see the module docstring).

    Args:
        path: an ISO base media file; for any other file, an empty :class:`HeifLayout`.

    Returns:
        The :class:`HeifLayout`.

    Raises:
        OSError: the file cannot be read.
    """
    ftyp, meta = _meta_bytes(path)
    brands = tuple(ftyp[i:i + 4].decode("latin-1") for i in range(0, len(ftyp), 4) if i != 4 and i + 4 <= len(ftyp))
    if len(meta) < 4:
        return HeifLayout(brands=brands)
    primary, items, references, properties, groups, locations, idat = None, {}, [], {}, [], {}, b""
    for kind, s, e in _boxes(meta, 4):                  # meta is a full box: version and flags first
        if kind == "pitm" and e - s >= 6:
            primary = _uint(meta, s + 4, 2 if meta[s] == 0 else 4)[0]
        elif kind == "iinf" and e - s >= 6:
            items = _items(meta, s, e)
        elif kind == "iref" and e - s >= 4:
            references = _references(meta, s, e)
        elif kind == "iprp":
            properties = _properties(meta, s, e)
        elif kind == "grpl":
            groups = _groups(meta, s, e)
        elif kind == "iloc" and e - s >= 8:
            locations = _locations(meta, s, e)
        elif kind == "idat":
            idat = meta[s:e]
    return HeifLayout(brands=brands, primary=primary, items=items, references=tuple(references),
                      properties=properties, groups=tuple(groups), locations=locations, idat=idat)


def turn_like(array, transforms):
    """Apply HEIF transforms (:meth:`HeifLayout.transforms`) to an ``H x W`` or ``H x W x C`` array, in order.

    Args:
        array: the stored pixels.
        transforms: ``("irot", quarter_turns_anticlockwise)`` and ``("imir", axis)`` entries.

    Returns:
        The transformed array (a view where numpy gives one).
    """
    import numpy as np

    out = array
    for kind, value in transforms:
        if kind == "irot":
            out = np.rot90(out, k=value % 4, axes=(0, 1))
        elif kind == "imir":
            out = out[::-1] if value == 0 else out[:, ::-1]
    return out
