"""ICC colour profiles: which colour space a file's codes are in, and the working space lensblur renders in.

**The working space is the image's own primaries, linear** (its profile's colorant matrix, the sRGB tone curve
undone). The renderer is per-channel linear (every output pixel is a weighted sum of input pixels with the
same weights in R, G and B), and a change of primaries is a 3 x 3 matrix, so rendering in the image's own
linear primaries gives exactly the picture rendering in any other linear RGB space would, with no gamut
clipping on the way in: a Display P3 photo keeps its colours outside sRGB. Its profile is written back
unchanged by default.

How a file is linearised:

* no profile, or an RGB matrix/TRC profile whose tone curve is the sRGB curve (sRGB IEC 61966-2.1, Display
  P3, the phone profiles): the exact sRGB curve of :mod:`lensblur.color` at the file's full bit depth, as for
  an untagged file. Whether a profile's curve is the sRGB curve is asked of LittleCMS (:func:`has_srgb_curve`).
* any other profile (Adobe RGB's gamma 2.2, ProPhoto's 1.8, LUT profiles, CMYK): LittleCMS (Pillow's
  ImageCms) converts the 8-bit codes to the *working profile* of the same primaries with the sRGB curve
  (:func:`working_profile`; sRGB for profiles that are not RGB matrix/TRC), which is then linearised as above.
  Pillow's ImageCms transforms 8-bit RGB only, so a 16-bit file with such a profile goes through 8 bits.

Converting linear values between two matrix/TRC profiles (``--output-profile srgb`` of a P3 photo) applies
the profiles' own colorant matrices, as LittleCMS does for relative colorimetric intent between such profiles
(:func:`linear_matrix`); it runs in float so a 16-bit output keeps its precision, and a test compares it with
LittleCMS's own 8-bit transform.

Display P3 (:func:`display_p3`): Pillow can build sRGB but no other RGB profile, so lensblur writes the ICC v4
bytes itself (:func:`matrix_shaper_profile`): the DCI-P3 primaries of SMPTE EG 432-1 with the D65 white, the
sRGB tone curve (a ``para`` curve of type 3), the colorants adapted to the D50 connection space with the
Bradford transform (ICC.1:2022 Annex E) and the adaptation stored in ``chad``. It is built in memory when
needed; no file is shipped.
"""

from __future__ import annotations

import functools
import io
import struct

import numpy as np

__all__ = [
    "OUTPUT_PROFILES",
    "describe",
    "display_p3",
    "has_srgb_curve",
    "linear_matrix",
    "matrix_shaper_profile",
    "profile_for",
    "same_profile",
    "srgb",
    "to_working",
    "working_profile",
]

OUTPUT_PROFILES = ("input", "srgb", "p3")
"""What ``output_profile`` may name: the input's own profile, sRGB, or Display P3."""

# ICC.1 PCS illuminant (D50), as the header stores it.
_D50 = np.array([0.9642, 1.0, 0.8249])
# The Bradford cone response matrix (ICC.1:2022 Annex E).
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# The sRGB tone curve as an ICC parametric curve of type 3: Y = (aX + b)^g for X >= d, else cX.
_SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
# DCI-P3 primaries (SMPTE EG 432-1) and the D65 white point, CIE xy.
_P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
_D65_XY = (0.3127, 0.3290)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(v) for v in xyz)


def _mluc(text: str) -> bytes:
    data = text.encode("utf-16-be")
    return b"mluc" + b"\0" * 4 + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(data), 28) + data


def _xyz_of(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def _bradford(white_xyz: np.ndarray) -> np.ndarray:
    """The chromatic adaptation from ``white_xyz`` to the D50 connection space (Bradford)."""
    cone = _BRADFORD @ _D50 / (_BRADFORD @ white_xyz)
    return np.linalg.inv(_BRADFORD) @ np.diag(cone) @ _BRADFORD


def matrix_shaper_profile(description: str, colorants: np.ndarray, *, chad: np.ndarray | None = None,
                          gamma: float | None = None, copyright: str = "No copyright, use freely") -> bytes:
    """An ICC v4 display profile: ``colorants`` (D50 XYZ of R, G, B as columns) and one tone curve for all three.

    Args:
        description: the profile's name (its ``desc`` tag).
        colorants: ``3 x 3``; column ``i`` is the PCS (D50) XYZ of primary ``i`` at full value.
        chad: the chromatic adaptation the colorants went through (``chad`` tag), or None.
        gamma: None for the sRGB curve, else a pure power law ``Y = X ** gamma`` (Adobe RGB's 2.2).
        copyright: the ``cprt`` tag.

    Returns:
        The profile's bytes.
    """
    colorants = np.asarray(colorants, dtype=np.float64)
    kind, params = (3, _SRGB_CURVE) if gamma is None else (0, (gamma,))
    curve = b"para" + b"\0" * 4 + struct.pack(">H", kind) + b"\0\0" + b"".join(_s15(v) for v in params)
    tags = [(b"desc", _mluc(description)), (b"cprt", _mluc(copyright)), (b"wtpt", _xyz_tag(_D50))]
    if chad is not None:
        tags.append((b"chad", b"sf32" + b"\0" * 4 + b"".join(_s15(v) for v in np.asarray(chad).ravel())))
    tags += [(b"rXYZ", _xyz_tag(colorants[:, 0])), (b"gXYZ", _xyz_tag(colorants[:, 1])),
             (b"bXYZ", _xyz_tag(colorants[:, 2]))]
    table, blobs = [], b""
    offset = 128 + 4 + 12 * (len(tags) + 3)
    for sig, data in tags:
        table.append((sig, offset + len(blobs), len(data)))
        blobs += data + b"\0" * (-len(data) % 4)
    curve_at = offset + len(blobs)
    blobs += curve
    table += [(sig, curve_at, len(curve)) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    body = struct.pack(">I", len(table)) + b"".join(sig + struct.pack(">II", at, n) for sig, at, n in table) + blobs
    size = 128 + len(body)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x04300000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4 + struct.pack(">I", 0)
              + b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0) + b"".join(_s15(v) for v in _D50) + b"\0" * 4
              + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + body


@functools.lru_cache(maxsize=1)
def display_p3() -> bytes:
    """The Display P3 profile (DCI-P3 primaries, D65 white, sRGB tone curve), ICC v4 bytes.

    Returns:
        The profile's bytes.
    """
    white = _xyz_of(_D65_XY)
    primaries = np.stack([_xyz_of(xy) for xy in _P3_PRIMARIES], axis=1)
    scale = np.linalg.solve(primaries, white)          # each primary's share of the white
    chad = _bradford(white)
    return matrix_shaper_profile("Display P3 (lensblur)", chad @ primaries * scale, chad=chad)


@functools.lru_cache(maxsize=1)
def srgb() -> bytes:
    """LittleCMS's built-in sRGB profile (IEC 61966-2.1), as bytes.

    Returns:
        The profile's bytes.
    """
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def profile_for(name: str, input_profile: bytes | None) -> bytes | None:
    """The profile ``name`` (one of :data:`OUTPUT_PROFILES`) stands for.

    Args:
        name: ``input``, ``srgb`` or ``p3``.
        input_profile: the input's profile (None: untagged, taken as sRGB).

    Returns:
        The profile's bytes; None for ``input`` of an untagged input (written untagged, as it came).
    """
    return {"input": lambda: input_profile, "srgb": srgb, "p3": display_p3}[name]()


def _open(profile: bytes):
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(io.BytesIO(profile))


def describe(profile: bytes | None) -> str:
    """The profile's name (``desc``), ``sRGB (untagged)`` for None, ``unreadable`` if LittleCMS cannot read it."""
    if profile is None:
        return "sRGB (untagged)"
    try:
        from PIL import ImageCms

        return ImageCms.getProfileDescription(_open(profile)).strip() or "unnamed"
    except Exception:  # noqa: BLE001 - a damaged profile is reported by name only
        return "unreadable"


def _is_rgb_matrix_shaper(profile: bytes) -> bool:
    p = _open(profile).profile
    return p.xcolor_space.strip() == "RGB" and bool(p.is_matrix_shaper) and p.red_colorant is not None


def _colorants(profile: bytes) -> np.ndarray:
    p = _open(profile).profile
    return np.array([c[0] for c in (p.red_colorant, p.green_colorant, p.blue_colorant)], dtype=np.float64).T


def same_profile(a: bytes | None, b: bytes | None) -> bool:
    """Whether two profiles describe the same RGB space (the same bytes, or matrix/TRC profiles with the same
    colorants to 1e-4 and the sRGB curve both); None counts as sRGB."""
    a, b = a or srgb(), b or srgb()
    if a == b:
        return True
    try:
        if not (_is_rgb_matrix_shaper(a) and _is_rgb_matrix_shaper(b) and has_srgb_curve(a) and has_srgb_curve(b)):
            return False
        return bool(np.abs(_colorants(a) - _colorants(b)).max() < 1e-4)
    except Exception:  # noqa: BLE001 - unreadable profiles are not the same
        return False


def _transform(source: bytes, target: bytes, mode: str = "RGB"):
    from PIL import ImageCms

    return ImageCms.buildTransform(_open(source), _open(target), mode, mode,
                                   renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)


@functools.lru_cache(maxsize=16)
def working_profile(profile: bytes) -> bytes:
    """The working profile of an input profile: its own colorants with the sRGB tone curve for an RGB
    matrix/TRC profile, sRGB for any other (or the profile itself when its curve is already the sRGB curve).

    Args:
        profile: the input's ICC profile.

    Returns:
        The working profile's bytes.
    """
    if not _is_rgb_matrix_shaper(profile):
        return srgb()
    if has_srgb_curve(profile):
        return profile
    p = _open(profile).profile
    chad = None if p.chromatic_adaptation is None else np.array(p.chromatic_adaptation[0])
    return matrix_shaper_profile(f"{describe(profile)} primaries, sRGB curve (lensblur)", _colorants(profile),
                                 chad=chad)


@functools.lru_cache(maxsize=16)
def _curve_is(profile: bytes, gamma: float | None) -> bool:
    """Whether an RGB matrix/TRC profile's tone curves are the sRGB curve (``gamma=None``) or the power law
    ``gamma``, to within half an 8-bit code: LittleCMS maps every 8-bit code of each channel through the profile
    and back through a profile of the same colorants with that curve; the curves are the same when every code
    comes back unchanged."""
    from PIL import Image

    if not _is_rgb_matrix_shaper(profile):
        return False
    p = _open(profile).profile
    chad = None if p.chromatic_adaptation is None else np.array(p.chromatic_adaptation[0])
    twin = matrix_shaper_profile("twin", _colorants(profile), chad=chad, gamma=gamma)
    ramp = np.arange(256, dtype=np.uint8)
    zeros = np.zeros(256, dtype=np.uint8)
    probe = np.stack([np.stack([ramp, zeros, zeros], -1), np.stack([zeros, ramp, zeros], -1),
                      np.stack([zeros, zeros, ramp], -1)])
    out = np.asarray(_transform(profile, twin).apply(Image.fromarray(probe, "RGB")))
    return bool(np.abs(out.astype(int) - probe.astype(int)).max() == 0)


def has_srgb_curve(profile: bytes) -> bool:
    """Whether an RGB matrix/TRC profile's tone curves are the sRGB curve, to within half an 8-bit code.

    Args:
        profile: an ICC profile.

    Returns:
        True for sRGB, Display P3 and other profiles of the sRGB curve; False for other curves and profiles
        that are not RGB matrix/TRC.
    """
    return _curve_is(profile, None)


def has_linear_curve(profile: bytes) -> bool:
    """Whether an RGB matrix/TRC profile is linear (tone curves of gamma 1): its file holds scene light as
    recorded, as a linear 16-bit TIFF from a raw converter does.

    Args:
        profile: an ICC profile.

    Returns:
        True for linear profiles; False for other curves and profiles that are not RGB matrix/TRC.
    """
    return _curve_is(profile, 1.0)


def to_working(codes: np.ndarray, profile: bytes) -> tuple[np.ndarray, bytes]:
    """Convert 8-bit RGB codes from ``profile`` to its :func:`working_profile` with LittleCMS.

    Args:
        codes: ``H x W x 3`` uint8.
        profile: the codes' profile.

    Returns:
        ``(codes, working_profile)``: uint8 codes of the same shape, and the profile they are now in.
    """
    from PIL import Image

    target = working_profile(profile)
    if target == profile:
        return codes, profile
    out = _transform(profile, target).apply(Image.fromarray(np.ascontiguousarray(codes), "RGB"))
    return np.asarray(out), target


def from_working(codes: np.ndarray, working: bytes, profile: bytes) -> np.ndarray:
    """Convert 8-bit RGB codes from a working profile back to ``profile`` with LittleCMS (the inverse of
    :func:`to_working`).

    Args:
        codes: ``H x W x 3`` uint8 in ``working``.
        working: their profile.
        profile: the profile to convert to.

    Returns:
        uint8 codes of the same shape.
    """
    from PIL import Image

    return np.asarray(_transform(working, profile).apply(Image.fromarray(np.ascontiguousarray(codes), "RGB")))


def linear_matrix(source: bytes | None, target: bytes | None) -> np.ndarray | None:
    """The ``3 x 3`` matrix that takes linear RGB in ``source``'s primaries to ``target``'s (None: sRGB).

    Both must be RGB matrix/TRC profiles: the linear RGB -> PCS XYZ matrices are their colorants, so the
    conversion is ``inv(colorants(target)) @ colorants(source)`` (relative colorimetric).

    Args:
        source: the working profile the values are in.
        target: the profile to convert to.

    Returns:
        The matrix (apply as ``rgb @ matrix.T``), or None when the two are the same space.
    """
    if same_profile(source, target):
        return None
    return np.linalg.solve(_colorants(target or srgb()), _colorants(source or srgb()))
