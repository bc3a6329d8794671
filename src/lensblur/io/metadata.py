"""Photo metadata carried from the input to the output: EXIF, XMP and the comment, and lensblur's own record.

What is carried (:func:`read_metadata`):

* **EXIF**: the descriptive tags of the first IFD (description, make, model, software, date, artist,
  copyright), the whole Exif IFD (exposure, lens, dates...) but its maker note, its interoperability pointer
  and its pixel dimensions (which would no longer hold), and the GPS IFD. The orientation is set to 1, since
  the reader has already turned the pixels upright. Structure tags of a TIFF's first IFD (strip offsets, bit
  depth...) are never copied.
* **XMP**: the packet as stored, byte for byte, with lensblur's description added (:func:`lensblur_xmp`).
* **The comment**: a JPEG COM segment, or a PNG ``Comment`` text chunk.

lensblur's record is one ``rdf:Description`` in the namespace :data:`LENSBLUR_NS` (prefix ``lensblur``), added
to the input's packet (or to a new one): ``lensblur:Software`` (``lensblur 0.1.0``) and one property per lens
setting (``lensblur:Method``, ``lensblur:FocusDisparity``, ``lensblur:Blur``, ``lensblur:FNumber``...). The
EXIF Software tag (0x0131) says ``lensblur`` too. The namespace URI is a name, not a web address.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

__all__ = ["LENSBLUR_NS", "Metadata", "lensblur_xmp", "read_metadata"]

LENSBLUR_NS = "http://ns.lensblur.org/xmp/1.0/"
"""The XMP namespace of lensblur's record (prefix ``lensblur``)."""

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_X = "adobe:ns:meta/"

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_ORIENTATION, _SOFTWARE = 0x0112, 0x0131
# The first IFD's tags that describe the photo (not its storage): description, make, model, orientation,
# software, date, artist, copyright.
_IFD0_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x8298)
# Exif IFD tags that describe the stored file, not the photo: maker note (offsets into the old file),
# interoperability pointer, pixel dimensions.
_EXIF_DROP = (0x927C, 0xA005, 0xA002, 0xA003)


@dataclass(frozen=True)
class Metadata:
    """The metadata of a photo that lensblur carries to its output.

    Attributes:
        exif: an EXIF block (``Exif\\0\\0`` and a TIFF structure, as Pillow writes it), orientation 1; or None.
        xmp: the XMP packet (UTF-8 bytes), or None.
        comment: the comment text, or None.
    """

    exif: bytes | None = None
    xmp: bytes | None = None
    comment: str | None = None

    def exif_tags(self):
        """The EXIF as a :class:`PIL.Image.Exif` (empty when there is none)."""
        from PIL import Image

        exif = Image.Exif()
        if self.exif:
            exif.load(self.exif)
        return exif

    def without_gps(self) -> Metadata:
        """A copy without the GPS IFD (and without GPS properties in the XMP, ``exif:GPS...``)."""
        exif = self.exif_tags()
        if _GPS_IFD in exif:
            del exif[_GPS_IFD]
        xmp = self.xmp
        if xmp:
            xmp = re.sub(rb"<exif:GPS\w+\b[^>]*/>|<exif:GPS(\w+)\b[^>]*>.*?</exif:GPS\1>", b"", xmp, flags=re.DOTALL)
            xmp = re.sub(rb"\s+exif:GPS\w+=\"[^\"]*\"", b"", xmp)
        return replace(self, exif=exif.tobytes() if len(exif) else None, xmp=xmp)

    def with_software(self, software: str) -> Metadata:
        """A copy whose EXIF says ``software`` in its Software tag (an EXIF block is made if there was none)."""
        exif = self.exif_tags()
        exif[_SOFTWARE] = software
        exif.setdefault(_ORIENTATION, 1)
        return replace(self, exif=exif.tobytes())


def read_metadata(image) -> Metadata:
    """The metadata of an open Pillow image (any format; HEIC with pillow-heif registered).

    Args:
        image: a :class:`PIL.Image.Image` as opened (before its orientation is applied).

    Returns:
        The :class:`Metadata` (see the module docstring for what is kept).
    """
    from PIL import Image

    source = image.getexif()
    exif = Image.Exif()
    for tag in _IFD0_TAGS:
        if tag in source:
            exif[tag] = source[tag]
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    sub = {tag: value for tag, value in source.get_ifd(_EXIF_IFD).items() if tag not in _EXIF_DROP}
    if sub:
        exif.get_ifd(_EXIF_IFD).update(sub)
    gps = dict(source.get_ifd(_GPS_IFD))
    if gps:
        exif.get_ifd(_GPS_IFD).update(gps)
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    comment = image.info.get("comment", image.info.get("Comment"))
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", errors="replace")
    return Metadata(exif=exif.tobytes() if len(exif) else None, xmp=xmp or None, comment=comment or None)


def _record(settings: dict) -> ET.Element:
    ET.register_namespace("rdf", _RDF)
    ET.register_namespace("lensblur", LENSBLUR_NS)
    desc = ET.Element(f"{{{_RDF}}}Description", {f"{{{_RDF}}}about": ""})
    for name, value in settings.items():
        if value is None:
            continue
        prop = ET.SubElement(desc, f"{{{LENSBLUR_NS}}}{name}")
        prop.text = f"{value:g}" if isinstance(value, float) else str(value)
    return desc


def lensblur_xmp(settings: dict, xmp: bytes | None = None) -> bytes:
    """An XMP packet that records what lensblur did, added to ``xmp`` (the input's packet) when given.

    Args:
        settings: property name -> value (``{"Software": "lensblur 0.1.0", "Blur": 30.0, ...}``; names are
            XML names in :data:`LENSBLUR_NS`; None values are left out).
        xmp: the packet to add to; its bytes are kept as they are and lensblur's ``rdf:Description`` goes
            before its ``</rdf:RDF>``. A packet without one is replaced by a new packet.

    Returns:
        The packet, UTF-8.
    """
    desc = _record(settings)
    if xmp:
        end = xmp.rfind(b"</rdf:RDF>")
        if end >= 0:
            # the description declares its own namespaces, so it reads the same whatever prefixes the packet uses
            text = ET.tostring(desc, encoding="unicode", xml_declaration=False)
            text = text.replace("<rdf:Description", f'<rdf:Description xmlns:rdf="{_RDF}"', 1) \
                if f'xmlns:rdf="{_RDF}"' not in text else text
            return xmp[:end] + text.encode("utf-8") + xmp[end:]
    ET.register_namespace("x", _X)
    root = ET.Element(f"{{{_X}}}xmpmeta")
    rdf = ET.SubElement(root, f"{{{_RDF}}}RDF")
    rdf.append(desc)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>' + body
            + '<?xpacket end="w"?>').encode("utf-8")
