"""Reading evidence images and ground-truth masks.

Forgiving where it is safe (any common format, mode, bit depth, orientation) and loud where it
is not: anything that cannot be decoded faithfully raises one ``ImageReadError`` naming the file,
the reason and what to do. Files are only ever opened for reading.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pillow_heif
import simplejpeg
from PIL import Image, UnidentifiedImageError

from ncl_core.errors import ImageReadError, MaskError

DEFAULT_MAX_PIXELS = 120_000_000

# HEIC/HEIF (phone photos) through libheif; AVIF is Pillow's own decoder. Thumbnails, depth
# maps and auxiliary images are never decoded: only the primary picture is evidence here.
# libheif's own security limits stay on.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# Only these Pillow decoders are ever tried. Pillow can open more (EPS even runs Ghostscript),
# but evidence files must not reach decoders we do not test. The JPEG decoder also yields MPO, camera
# JPEGs that carry a second picture (e.g. a preview); those are reported as JPEG.
READABLE_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP", "GIF", "PPM", "AVIF", "HEIF")

# The image extensions read, and the format each promises (a file named otherwise is decoded
# by its content, and the mismatch is reported: a renamed or re-saved file is part of its
# history).
_EXTENSION_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".gif": "GIF",
    ".ppm": "PPM",
    ".pgm": "PPM",
    ".heic": "HEIF",
    ".heif": "HEIF",
    ".hif": "HEIF",
    ".avif": "HEIF",
}
IMAGE_EXTENSIONS = tuple(_EXTENSION_FORMATS)
# Below this many pixels a side an image is mostly upsampled before the network sees it.
SMALL_SIDE = 64
# Pillow's raw modes for integer samples wider than 8 bits: a channel's width, then the byte
# order (B, L, N) or sign (S); packed pixels such as BGR;16 carry no such letter.
_WIDE_RAWMODE = re.compile(r"I;(16|32)|(?:L|LA|RGB|RGBA|RGBX|CMYK);(16)[BLN]")

_ORIENTATION_TAG = 0x0112
_ROTATED = "image was EXIF-rotated (orientation {})"
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_EXIF_TEXT_TAGS = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "datetime": 0x0132}
_DATETIME_ORIGINAL = 0x9003
_HINT = "check that the file is a complete JPEG, PNG, TIFF, BMP, WebP, GIF, HEIC or AVIF image"
_SUPPORTED = "JPEG, PNG, TIFF, BMP, WebP, GIF, HEIC/HEIF, AVIF"
# ISO base media files (HEIF, AVIF) start with an ftyp box naming their brand.
_HEIF_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"hevc": "HEIC",
    b"hevx": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


@dataclass
class ImageInfo:
    """What the file header says, read without decoding the pixels.

    ``width``/``height`` are as displayed, i.e. after the EXIF orientation is applied.
    ``exif`` holds the subset ``make``, ``model``, ``software``, ``datetime`` (only keys present).
    """

    format: str
    width: int
    height: int
    mode: str
    n_frames: int = 1
    orientation: int = 1
    exif: dict[str, str] = field(default_factory=dict)
    has_gps: bool = False


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when the name has one of the image extensions this package reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(
    path: str | os.PathLike[str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    check_damage: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Read an image file as RGB uint8 H x W x 3, plus warnings about what was converted.

    ``check_damage`` asks libjpeg-turbo whether a JPEG's data is damaged (``jpeg_damage``: a
    second, scaled decode, about a third of the first); readers that drop the warnings, such
    as training and evaluation data, pass False.
    """
    path = Path(os.fspath(path))
    data = _read_bytes(path, ImageReadError)
    image, warnings, _ = _decode(data, str(path), max_pixels, check_damage)
    return image, warnings


def read_image_bytes(
    data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, list[str]]:
    """Like ``read_image`` for an in-memory file (e.g. pasted or downloaded); ``name`` is for messages."""
    image, warnings, _ = decode_image(data, name, max_pixels)
    return image, warnings


def decode_image(
    data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, list[str], ImageInfo]:
    """Pixels, warnings and header of an in-memory file, from one parse of its bytes.

    ``ncl_core.evidence.image.load_evidence`` builds on it: one read of a file gives the pixels,
    the header and the hash of exactly those bytes.
    """
    if not data:
        raise ImageReadError(f"{name}: the data is empty (0 bytes); {_HINT}.")
    return _decode(bytes(data), name, max_pixels)


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole file, read once and read-only; ``ImageReadError`` naming the file otherwise."""
    return _read_bytes(Path(os.fspath(path)), ImageReadError)


def read_image_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Format, size and a few EXIF fields from the header, without decoding pixel data."""
    path = Path(os.fspath(path))
    _check_file(path, ImageReadError)
    with open(path, "rb") as fh:
        if fh.read(8) != _PNG_SIGNATURE:
            fh.seek(0)
            with _open(fh, str(path)) as im:
                return _header(im)
    # A PNG: read whole, so that a text chunk too large for the decoder can be left out.
    data, _ = without_oversized_png_chunks(_read_bytes(path, ImageReadError))
    with _open(io.BytesIO(data), str(path)) as im:
        return _header(im)


def read_mask(
    path: str | os.PathLike[str],
    expected_hw: tuple[int, int] | None = None,
    resize: bool = False,
    *,
    image_path: str | os.PathLike[str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, list[str]]:
    """Read a ground-truth mask as bool H x W (True = tampered), plus warnings.

    Any bit depth and channel count: colour is reduced to luma, then binarised at half the
    range (so white is tampered, and Columbia's green-on-red edge masks mark the green region).
    A size other than ``expected_hw`` raises ``MaskError`` naming both files, or with
    ``resize=True`` is fixed by nearest-neighbour resizing and a warning.
    """
    path = Path(os.fspath(path))
    data = _read_bytes(path, MaskError)
    warnings: list[str] = []
    try:
        with _open(io.BytesIO(data), str(path), error=MaskError) as im:
            _check_pixels(im, str(path), max_pixels, MaskError)
            im = _first_frame(im, warnings)
            im = _apply_orientation(im, warnings)
            values, full_scale = _mask_values(im)
    except MaskError:
        raise
    except Exception as exc:
        raise MaskError(f"{path}: cannot decode the mask ({_reason(exc)}); {_HINT}.") from exc
    mask = values * 2 >= full_scale
    if expected_hw is not None and mask.shape != tuple(expected_hw):
        got = f"{mask.shape[1]}x{mask.shape[0]}"
        want = f"{expected_hw[1]}x{expected_hw[0]}"
        if not resize:
            image = f"its image {image_path}" if image_path is not None else "its image"
            raise MaskError(
                f"{path}: mask is {got} px but {image} is {want} px; "
                "give a mask of the image's size, or allow resizing masks."
            )
        resized = cv2.resize(
            mask.astype(np.uint8), (expected_hw[1], expected_hw[0]), interpolation=cv2.INTER_NEAREST
        )
        mask = resized.astype(bool)
        warnings.append(f"mask resized from {got} to {want} px (nearest neighbour)")
    return mask, warnings


def _header(im: Image.Image) -> ImageInfo:
    """What an opened image's header says (no pixel data decoded).

    For a PNG whose pixels are not decoded yet, only an eXIf chunk before them counts:
    Pillow's ``getexif`` would decode the pixels to look past them, and a decode error
    swallowed here as damaged EXIF left the image half decoded, and silently so.
    """
    try:
        if im.format == "PNG" and im.tile and "exif" not in im.info:
            exif = Image.Exif()
        else:
            exif = im.getexif()
        exif_ifd, gps_ifd = exif.get_ifd(_EXIF_IFD), exif.get_ifd(_GPS_IFD)
    except Exception:  # damaged EXIF: the header is still worth reporting
        exif, exif_ifd, gps_ifd = Image.Exif(), {}, {}
    width, height = im.size
    applied = decoder_orientation(im)
    if applied is not None:
        orientation = applied  # the decoder already turned the pixels upright
    else:
        orientation = exif_orientation(exif) or 1
        if orientation >= 5:  # orientations 5-8 swap the axes
            width, height = height, width
    text: dict[str, str] = {}
    for key, tag in _EXIF_TEXT_TAGS.items():
        if exif.get(tag):
            text[key] = str(exif[tag]).strip("\x00 ")
    if exif_ifd.get(_DATETIME_ORIGINAL):
        # The capture time matters more to an analyst than the last-written time.
        text["datetime"] = str(exif_ifd[_DATETIME_ORIGINAL]).strip("\x00 ")
    return ImageInfo(
        format=_format_name(im),
        width=width,
        height=height,
        mode=im.mode,
        n_frames=int(getattr(im, "n_frames", 1)),
        orientation=orientation,
        exif=text,
        has_gps=bool(gps_ifd) or _gps_outside_exif(im),
    )


_GPS_TEXT = re.compile(rb"gps\s*(lat|long|pos|coord)|latitude|longitude", re.I)


def _gps_outside_exif(im: Image.Image) -> bool:
    """A position in the XMP packet (exif:GPSLatitude) or a PNG text chunk, found without
    parsing either (the metadata view lists and hides them)."""
    for key, value in im.info.items():
        if not isinstance(value, (str, bytes)) or key in ("icc_profile", "exif"):
            continue
        raw = value.encode("utf-8", "replace") if isinstance(value, str) else value
        if _GPS_TEXT.search(raw[:1_000_000]) or _GPS_TEXT.search(str(key).encode()):
            return True
    return False


def _check_file(path: Path, error: type[ImageReadError]) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise error(f"{path}: file not found; check the path.") from None
    except OSError as exc:
        raise error(f"{path}: cannot access the file ({_reason(exc)}).") from exc
    if not path.is_file():
        raise error(f"{path}: not a file; choose an image file.")
    if size == 0:
        raise error(f"{path}: the file is empty (0 bytes); {_HINT}.")
    return size


def _read_bytes(path: Path, error: type[ImageReadError]) -> bytes:
    """The whole file, read once: decoding from memory keeps no handle open on evidence."""
    _check_file(path, error)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({_reason(exc)}).") from exc


def _open(fh: BinaryIO, name: str, error: type[ImageReadError] = ImageReadError) -> Image.Image:
    try:
        return Image.open(fh, formats=READABLE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise error(
            f"{name}: refused, the header claims an image too large to decode safely "
            f"({_reason(exc)}); if the file is genuine, downscale it with an image editor first."
        ) from exc
    except UnidentifiedImageError as exc:
        head = _file_head(fh)
        container = _HEIF_BRANDS.get(head[8:12]) if head[4:8] == b"ftyp" else None
        if container is not None:
            # The decoders refuse a damaged HEIF/AVIF file as unidentified: say what it is.
            raise error(
                f"{name}: the {container} data is truncated or damaged (the decoder could not "
                "read its header); re-export or re-copy the original file."
            ) from exc
        if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
            # Pillow gives no reason; a TIFF it cannot identify has a sample layout it lacks
            # (CMYK with alpha, half floats, 12-bit samples) or a damaged directory.
            raise error(
                f"{name}: a TIFF whose sample layout (channels, bits per sample, sample format) "
                "this app cannot decode, or whose directory is damaged; save it as an 8- or "
                "16-bit RGB TIFF or a PNG with an image editor, and analyze the copy."
            ) from exc
        raise error(
            f"{name}: not an image, or a format this app cannot read "
            f"(supported: {_SUPPORTED}); check the file type."
        ) from exc
    except Exception as exc:  # Pillow raises many types on damaged headers
        raise error(
            f"{name}: the image header is truncated or damaged ({_reason(exc)}); "
            "re-export or re-copy the original file."
        ) from exc


def _file_head(fh: BinaryIO) -> bytes:
    """The file's first 12 bytes (enough to tell HEIF brands and TIFFs), or none."""
    try:
        fh.seek(0)
        return fh.read(12)
    except Exception:  # noqa: BLE001 - only a better message is at stake
        return b""


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"iCCP")
# Pillow refuses a PNG whose text or colour-profile chunk decompresses to more than this
# (ImageFile.SAFEBLOCK): the whole image, pixels included, a way to dodge analysis.
PNG_CHUNK_LIMIT = 1024 * 1024


def without_oversized_png_chunks(data: bytes) -> tuple[bytes, list[str]]:
    """``data`` without the PNG text and ICC chunks too large for the decoder, and what was
    dropped (``zTXt 'Comment'``); other files and ordinary PNGs come back as they are.

    The evidence bytes are never changed: this is a copy for decoding, the hash is of the file.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return data, []
    kept = [data[:8]]
    skipped: list[str] = []
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        if kind in _PNG_TEXT_CHUNKS and _chunk_too_large(kind, data[pos + 8 : end - 4]):
            key = data[pos + 8 : pos + 8 + min(length, 80)].split(b"\x00", 1)[0]
            skipped.append(f"{kind.decode('latin-1')} {key.decode('latin-1')!r}")
        else:
            kept.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    if not skipped:
        return data, []
    kept.append(data[pos:])
    return b"".join(kept), skipped


def _chunk_too_large(kind: bytes, body: bytes) -> bool:
    if kind == b"tEXt":
        return len(body) > PNG_CHUNK_LIMIT
    _, _, rest = body.partition(b"\x00")
    if kind == b"iTXt":
        if len(rest) < 2 or rest[0] == 0:  # not compressed
            return len(body) > PNG_CHUNK_LIMIT
        rest = rest[2:].split(b"\x00", 2)[-1]  # language tag, translated keyword
    else:
        rest = rest[1:]  # compression method
    try:
        inflated = zlib.decompressobj().decompress(rest, PNG_CHUNK_LIMIT + 1)
    except zlib.error:
        return False  # damaged, not large: the decoder reports it
    return len(inflated) > PNG_CHUNK_LIMIT


def _skipped_warning(skipped: list[str]) -> str:
    return (
        f"PNG chunk(s) {', '.join(skipped[:3])} over 1 MB decompressed were skipped (their "
        "text or colour profile was not read); the pixels were analyzed"
    )


def _decode(
    data: bytes, name: str, max_pixels: int, check_damage: bool = True
) -> tuple[np.ndarray, list[str], ImageInfo]:
    warnings: list[str] = []
    data, skipped = without_oversized_png_chunks(data)
    if skipped:
        warnings.append(_skipped_warning(skipped))
    with _open(io.BytesIO(data), name) as im:
        fmt = _format_name(im)
        _check_pixels(im, name, max_pixels, ImageReadError)
        _check_extension(name, fmt, warnings)
        wide_bits = _wide_bits(im)
        floating = im.mode == "F"
        try:
            # A PNG's eXIf chunk may follow its pixels: its header is read once they are.
            info = _header(im) if fmt != "PNG" else None
            rgb = _pixels(im, data, warnings)
            info = info or _header(im)
        except ImageReadError:
            raise
        except Exception as exc:
            reason = _reason(exc)
            cut = ("truncat", "outside of file bounds", "end of file")  # Pillow's, libheif's
            what = (
                "is truncated or corrupt"
                if any(word in reason.lower() for word in cut)
                else "cannot be decoded"
            )
            raise ImageReadError(
                f"{name}: the {fmt} data {what} ({reason}); re-export or re-copy the original file."
            ) from exc
    if fmt == "JPEG" and check_damage:
        damage = jpeg_damage(data)
        if damage is not None:
            warnings.append(
                f"the JPEG data is damaged (libjpeg: {damage}): part of the picture may be the "
                "decoder's filling, not the file's, and so may the map there; re-copy the "
                "original file"
            )
    if wide_bits:
        warnings.append(f"{wide_bits}-bit image reduced to 8 bits per channel")
    if floating:
        warnings.append("floating-point image reduced to 8 bits per channel")
    height, width = rgb.shape[:2]
    if min(height, width) < SMALL_SIDE:
        warnings.append(
            f"image is only {width} x {height} px; below {SMALL_SIDE} px a side the model sees "
            "mostly upsampled pixels, and its map says little"
        )
    return rgb, warnings, info


def _pixels(im: Image.Image, data: bytes, warnings: list[str]) -> np.ndarray:
    """The first frame's pixels as upright RGB uint8."""
    if im.format != "TIFF":
        im = _first_frame(im, warnings)
        return _to_rgb(_apply_orientation(im, warnings), warnings)
    # Pillow turns a TIFF upright as it decodes it, and so does libtiff's reader below; the
    # tag is read first, so that the turn is reported as for other formats.
    orientation = decoder_orientation(im)
    # Pillow reads uncompressed strips itself ("raw") and leaves compressed ones to libtiff.
    own_reader = bool(im.tile) and all(tile.codec_name == "raw" for tile in im.tile)
    try:
        rgb = _to_rgb(_first_frame(im, warnings), warnings)
    except Exception:
        # Pillow's own reader lacks some valid layouts (uncompressed YCbCr, for one);
        # libtiff's RGBA reader, as OpenCV calls it, knows them, and refuses a cut file as
        # Pillow does. Where libtiff itself failed for Pillow, the data is damaged: no retry,
        # which would read past the damage.
        rgb = _libtiff_rgb(data, im.size) if own_reader else None
        if rgb is None:
            raise
    if orientation in _TRANSPOSE:
        warnings.append(_ROTATED.format(orientation))
    return rgb


def _libtiff_rgb(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The first page of a TIFF as RGB uint8 by libtiff, or None when it cannot be read."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)  # libtiff's complaints: the caller reports
    try:
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        bgr = None
    finally:
        logging.setLogLevel(level)
    if bgr is None or bgr.shape[1::-1] != size:
        return None
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _wide_bits(im: Image.Image) -> int | None:
    """Bits per channel of an integer image stored wider than 8, from the decoder's raw mode
    (``I;16B``, ``RGB;16N``, ``I;32S``), or None. Packed pixels (``BGR;16``, 5-6-5 bits)
    are not wide."""
    for tile in im.tile:
        raw = tile.args[0] if isinstance(tile.args, tuple) else tile.args
        found = _WIDE_RAWMODE.match(str(raw))
        if found:
            return int(found.group(1) or found.group(2))
    if im.mode.startswith("I;16"):
        return 16
    return 32 if im.mode == "I" else None


def jpeg_damage(data: bytes) -> str | None:
    """libjpeg's complaint about damaged JPEG data that it decodes all the same, or None.

    Pillow decodes past damaged entropy-coded data (flipped bytes, a run of zeros, a file cut
    short and closed with an end marker) without a word, and fills the rest of the picture
    with whatever the damaged data decodes to. libjpeg-turbo warns about it; a strict decode
    turns the warning into an error. The decode is scaled by 8, so the entropy decoding is
    nearly all it costs. Data that libjpeg-turbo cannot decode even leniently is not judged
    here: a colour conversion it lacks, or a header it warns about (an unknown JFIF revision,
    an unknown Adobe transform), which fails the lenient decode as well.
    """
    try:
        colorspace = simplejpeg.decode_jpeg_header(data)[2]
    except ValueError:
        return None
    target = "CMYK" if colorspace in ("CMYK", "YCCK") else "GRAY"
    try:
        simplejpeg.decode_jpeg(data, colorspace=target, min_factor=8, strict=True)
        return None
    except ValueError as exc:
        complaint = str(exc).strip()
    try:
        simplejpeg.decode_jpeg(data, colorspace=target, min_factor=8, strict=False)
    except ValueError:
        return None
    return complaint


def _check_extension(name: str, fmt: str, warnings: list[str]) -> None:
    """Warn when a known image extension promises another format than the content's."""
    suffix = Path(name).suffix.lower()
    promised = _EXTENSION_FORMATS.get(suffix)
    actual = "HEIF" if fmt == "AVIF" else fmt  # one family: HEIC, HEIF and AVIF share a box format
    if promised is not None and promised != actual:
        warnings.append(
            f"the name ends in {suffix} but the content is {fmt}: the file was renamed, or "
            f"saved under another format's name; analyzed as {fmt}"
        )


def _format_name(im: Image.Image) -> str:
    return "JPEG" if im.format == "MPO" else str(im.format)


def _check_pixels(im: Image.Image, name: str, max_pixels: int, error: type[ImageReadError]) -> None:
    width, height = im.size
    if width * height > max_pixels:
        raise error(
            f"{name}: refused, {width}x{height} px = {width * height / 1e6:.0f} MP exceeds the "
            f"limit of {max_pixels / 1e6:.0f} MP (a guard against decompression bombs); "
            "raise the pixel limit if the file is genuine."
        )
    if width == 0 or height == 0:
        raise error(f"{name}: the header gives an empty image ({width}x{height} px); {_HINT}.")


def _first_frame(im: Image.Image, warnings: list[str]) -> Image.Image:
    n_frames = int(getattr(im, "n_frames", 1))
    if n_frames > 1 and im.format == "HEIF":
        # A HEIF file names its primary image (a burst, an edit beside the original); the
        # decoder opened it, and it is what every viewer shows.
        warnings.append(f"file holds {n_frames} images; only the primary one was read")
    elif n_frames > 1:
        kind = "pages" if im.format == "TIFF" else "frames"
        warnings.append(f"file has {n_frames} {kind}; only the first was read")
        im.seek(0)
    im.load()
    bit_depth = im.info.get("bit_depth") if im.format == "HEIF" else None
    if isinstance(bit_depth, int) and bit_depth > 8 and not im.mode.startswith("I"):
        warnings.append(f"{bit_depth}-bit image reduced to 8 bits per channel")
    return im


def decoder_orientation(im: Image.Image) -> int | None:
    """The EXIF orientation a decoder already applied to the pixels, or None.

    libheif turns a HEIF image upright by its container's transforms and the EXIF block then
    reads 1; pillow-heif keeps the stored value as ``original_orientation``. Pillow turns a
    TIFF upright as it loads it: its size is the upright one from the header on, and the tag
    is gone once the pixels are loaded, so ask before.
    """
    if im.format == "TIFF":
        try:
            return exif_orientation(im.getexif()) or 1
        except Exception:  # noqa: BLE001 - a damaged tag block: the decoder decides alone
            return 1
    if im.format != "HEIF":
        return None
    value = im.info.get("original_orientation")
    return value if type(value) is int and 1 <= value <= 8 else 1


def exif_orientation(exif: Image.Exif | dict) -> int | None:
    """The EXIF orientation 1-8, or None when absent or not a valid one.

    The tag is the file's word only: a hostile file can store it as a fraction (6/0 is NaN),
    as text or as a list, and none of that may stop the pixels from being read.
    """
    try:
        value = exif.get(_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - a damaged block reads as no orientation
        return None
    if type(value) is int and 1 <= value <= 8:
        return value
    return None


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _apply_orientation(im: Image.Image, warnings: list[str]) -> Image.Image:
    applied = decoder_orientation(im)
    if applied is not None:
        if applied != 1:
            warnings.append(
                f"image turned upright by its HEIF container (EXIF orientation {applied})"
            )
        return im
    try:
        exif = im.getexif()
    except Exception:  # damaged EXIF must not make the pixels unreadable
        warnings.append("EXIF data is unreadable; orientation not applied")
        return im
    if _ORIENTATION_TAG not in exif:
        return im
    orientation = exif_orientation(exif)
    if orientation is None:
        shown = repr(exif.get(_ORIENTATION_TAG))[:40]
        warnings.append(f"EXIF orientation {shown} is not valid (1-8); ignored, image not rotated")
        return im
    if orientation in _TRANSPOSE:
        warnings.append(_ROTATED.format(orientation))
        return im.transpose(_TRANSPOSE[orientation])
    return im


def _to_rgb(im: Image.Image, warnings: list[str]) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        gray = _high_bit_gray(np.asarray(im))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "CMYK":
        warnings.append("CMYK image converted to RGB (no colour profile applied)")
        return np.asarray(im.convert("RGB"))
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    elif "transparency" in im.info and mode in ("L", "RGB"):
        im = im.convert("RGBA")  # a single transparent colour (tRNS chunk)
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"))
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
        transparent = float((alpha < 1.0).mean())
        if transparent > 0:  # a fully opaque alpha channel changes nothing: no warning
            share = f"{transparent:.1%}"
            share = "<0.1%" if share == "0.0%" else share  # a few pixels of a large image
            warnings.append(f"image has transparency ({share} of pixels); composited on white")
        # Composite on white: what viewers show, and what an analyst compares against.
        rgb = rgba[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def _high_bit_gray(values: np.ndarray) -> np.ndarray:
    """Scale 16/32-bit integer or float grey levels to uint8."""
    if values.dtype.kind == "f":
        top = 1.0 if values.size and float(np.nanmax(values)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(values) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    values = values.astype(np.int64)
    top = 65535 if values.size == 0 or values.max() <= 65535 else int(values.max())
    return np.clip((values * 255 + top // 2) // top, 0, 255).astype(np.uint8)


def _mask_values(im: Image.Image) -> tuple[np.ndarray, float]:
    """Grey levels of a mask and the full-scale value of its bit depth."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im).astype(np.uint8), 1.0
    if mode.startswith("I"):
        values = np.asarray(im).astype(np.int64)
        # Pillow opens 16-bit greyscale as "I" or "I;16"; wider integers are taken at face value.
        wide = values.size and values.max() > 65535
        return values, float(np.iinfo(np.int32).max) if wide else 65535.0
    if mode == "F":
        values = np.asarray(im)
        return values, 1.0 if values.size and float(values.max()) <= 1.0 else 255.0
    # Pillow already reduces 48/64-bit colour to 8 bits per channel on decoding.
    return np.asarray(im.convert("L")).astype(np.int64), 255.0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
