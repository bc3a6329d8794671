"""Metadata carried from the input to the output: EXIF (camera, lens, date, GPS; orientation 1 once applied),
XMP and the comment, for every format that can hold them; lensblur's record added as valid XMP."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from lensblur.io import Metadata, read_image_info, write_image
from lensblur.io.metadata import LENSBLUR_NS, lensblur_xmp

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
       b'exif:GPSLatitude="48,51.5N"><dc:format>image/jpeg</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>'
       b'<?xpacket end="w"?>')


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"                 # Make
    exif[0x0110] = "EOS R5"                # Model
    exif[0x0112] = 6                       # Orientation: turn 90 degrees clockwise
    exif[0x0132] = "2024:05:01 10:20:30"   # DateTime
    sub = exif.get_ifd(EXIF_IFD)
    sub[0x920A] = 85.0                     # FocalLength
    sub[0x829D] = 1.4                      # FNumber
    sub[0xA434] = "RF85mm F1.2 L USM"      # LensModel
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (48.0, 51.0, 30.0)
    return exif


@pytest.fixture
def photo(tmp_path):
    """A 6 x 4 (stored) JPEG with EXIF (orientation 6), XMP and a comment."""
    stored = np.zeros((4, 6, 3), np.uint8)
    stored[0, 0] = 255                     # top-left stored pixel: after orientation 6 it is top-right
    path = tmp_path / "in.jpg"
    Image.fromarray(stored).save(path, exif=_exif(), xmp=XMP, comment="a comment", quality=100)
    return path


def _read_back(path):
    with Image.open(path) as im:
        im.load()
        return im.getexif(), im.info, im.size


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".avif"])
def test_exif_xmp_and_comment_are_carried_and_orientation_is_one(tmp_path, photo, suffix):
    image, info = read_image_info(photo)
    assert image.shape[:2] == (6, 4)                      # upright
    out = write_image(tmp_path / f"out{suffix}", image, info=info)
    exif, meta, size = _read_back(out)
    assert size == (4, 6)
    assert exif[0x010F] == "Canon" and exif[0x0110] == "EOS R5" and exif[0x0132] == "2024:05:01 10:20:30"
    assert exif.get(0x0112, 1) == 1                       # applied, so normalised (AVIF leaves the tag out)
    sub = exif.get_ifd(EXIF_IFD)
    assert float(sub[0x920A]) == 85.0 and float(sub[0x829D]) == 1.4 and sub[0xA434] == "RF85mm F1.2 L USM"
    assert exif.get_ifd(GPS_IFD)[1] == "N"
    assert (meta.get("xmp") or b"").startswith(XMP[:40])
    if suffix in (".jpg", ".png"):
        comment = meta.get("comment", meta.get("Comment"))
        assert (comment.decode() if isinstance(comment, bytes) else comment) == "a comment"


def test_16_bit_png_and_tiff_carry_metadata(tmp_path, photo):
    image, info = read_image_info(photo)
    png = write_image(tmp_path / "o16.png", image, info=info, bits=16)
    exif, meta, _ = _read_back(png)
    assert exif[0x010F] == "Canon" and exif.get_ifd(EXIF_IFD)[0xA434] == "RF85mm F1.2 L USM"
    assert meta["xmp"].startswith(XMP[:40]) and meta["Comment"] == "a comment"
    assert read_image_info(png)[1].bits == 16
    tif = write_image(tmp_path / "o16.tif", image, info=info, bits=16)
    exif, meta, _ = _read_back(tif)
    assert exif[0x010F] == "Canon" and exif[0x0110] == "EOS R5"   # TIFF keeps the first IFD's camera tags
    assert meta["xmp"].startswith(XMP[:40]) and read_image_info(tif)[1].bits == 16


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_tiff_of_any_depth_says_the_records_software_and_keeps_the_camera_tags_and_xmp(tmp_path, photo, bits):
    import tifffile

    image, info = read_image_info(photo)
    info = info.with_metadata(info.metadata.with_software("lensblur 0.1.0"))
    tif = write_image(tmp_path / f"o{bits}.tif", image, info=info, bits=bits)
    with tifffile.TiffFile(tif) as f:
        tags = {tag.code: tag.value for tag in f.pages[0].tags}
    assert tags[0x0131] == "lensblur 0.1.0"
    assert tags[0x010F] == "Canon" and tags[0x0110] == "EOS R5" and bytes(tags[700]).startswith(XMP[:40])
    assert read_image_info(tif)[1].bits == bits


def test_strip_gps_drops_the_gps_ifd_and_xmp_gps(tmp_path, photo):
    image, info = read_image_info(photo)
    out = write_image(tmp_path / "o.jpg", image, info=info.with_metadata(info.metadata.without_gps()))
    exif, meta, _ = _read_back(out)
    assert len(exif.get_ifd(GPS_IFD)) == 0 and exif[0x010F] == "Canon"
    assert b"GPSLatitude" not in meta["xmp"] and b"dc:format" in meta["xmp"]


def test_stripped_metadata_writes_none(tmp_path, photo):
    image, info = read_image_info(photo)
    out = write_image(tmp_path / "o.jpg", image, info=info.with_metadata(Metadata()))
    exif, meta, _ = _read_back(out)
    assert len(exif) == 0 and "xmp" not in meta and "comment" not in meta


def test_lensblur_record_is_valid_xmp_added_to_the_input_packet():
    packet = lensblur_xmp({"Software": "lensblur 0.1.0", "Blur": 30.0, "FNumber": 1.4, "Empty": None}, XMP)
    root = ET.fromstring(packet.decode("utf-8").split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    descriptions = root.findall(f"{rdf}RDF/{rdf}Description")
    assert len(descriptions) == 2                         # the input's, then lensblur's
    ours = descriptions[1]
    assert ours.find(f"{{{LENSBLUR_NS}}}Software").text == "lensblur 0.1.0"
    assert ours.find(f"{{{LENSBLUR_NS}}}Blur").text == "30" and ours.find(f"{{{LENSBLUR_NS}}}FNumber").text == "1.4"
    assert ours.find(f"{{{LENSBLUR_NS}}}Empty") is None
    assert packet.startswith(XMP[: XMP.find(b"</rdf:RDF>")])   # the input's bytes kept as they were
    fresh = lensblur_xmp({"Software": "lensblur"})
    assert fresh.startswith(b"<?xpacket begin=") and fresh.endswith(b'<?xpacket end="w"?>')
    ET.fromstring(fresh.decode("utf-8").split("?>", 1)[1].rsplit("<?xpacket", 1)[0])


def test_tiff_structure_tags_are_not_carried_as_exif(tmp_path):
    tif = tmp_path / "in.tif"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tif, tiffinfo={0x010F: "Nikon"})
    _, info = read_image_info(tif)
    exif = info.metadata.exif_tags()
    assert exif[0x010F] == "Nikon" and 0x0111 not in exif and 0x0100 not in exif   # no strip offsets, no width
