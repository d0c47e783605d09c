"""Metadata: EXIF, XMP and IPTC in full, and the facts an analyst checks first.

A table, not a map: every tag as (group, tag, value), plus findings: the software that wrote
the file, the creation and modification dates (and whether they differ), and whether the
embedded EXIF thumbnail still shows the same picture as the image. GPS positions are
withheld unless asked for (``show_gps=True``): they are personal data, and rarely the point.

Nothing here trusts the file: every value is length-limited, XMP with a DTD is not parsed, and
damaged blocks are reported as such instead of failing the view.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, IptcImagePlugin

from ncl_core.data.io import READABLE_FORMATS, decoder_orientation, without_oversized_png_chunks
from ncl_core.views.base import Evidence, NotApplicable, ViewResult, as_evidence

MAX_VALUE_CHARS = 300
MAX_XMP_DEPTH = 64  # real packets nest under 10 levels
# An EXIF thumbnail is at most 160 x 120 px by the standard; some writers store larger
# previews. Anything over these is refused from its header, never decoded.
THUMBNAIL_MAX_SIDE = 2048
THUMBNAIL_MAX_PIXELS = 1_000_000
_REFUSED_THUMBNAIL = (
    "the embedded thumbnail claims {size}, far larger than a thumbnail; not decoded "
    "(a sign of a crafted file)"
)
GPS_HIDDEN = "(hidden; show GPS to reveal)"
# Software names that mean the file went through an editor, not only a camera.
EDITORS = (
    "photoshop",
    "lightroom",
    "gimp",
    "affinity",
    "pixelmator",
    "snapseed",
    "paint.net",
    "paintshop",
    "corel",
    "capture one",
    "darktable",
    "rawtherapee",
    "luminar",
    "picsart",
    "facetune",
    "canva",
    "photopea",
    "acdsee",
    "faceapp",
    "imagemagick",
)
_IPTC_NAMES = {
    (1, 90): "CodedCharacterSet",
    (2, 5): "ObjectName",
    (2, 15): "Category",
    (2, 25): "Keywords",
    (2, 40): "SpecialInstructions",
    (2, 55): "DateCreated",
    (2, 60): "TimeCreated",
    (2, 62): "DigitalCreationDate",
    (2, 63): "DigitalCreationTime",
    (2, 65): "OriginatingProgram",
    (2, 70): "ProgramVersion",
    (2, 80): "By-line",
    (2, 85): "By-lineTitle",
    (2, 90): "City",
    (2, 92): "Sub-location",
    (2, 95): "Province-State",
    (2, 101): "Country",
    (2, 103): "OriginalTransmissionReference",
    (2, 105): "Headline",
    (2, 110): "Credit",
    (2, 115): "Source",
    (2, 116): "CopyrightNotice",
    (2, 120): "Caption-Abstract",
    (2, 122): "Writer-Editor",
}
_XMP_PREFIXES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "adobe:ns:meta/": "x",
}
_DATE_TAGS = {
    "EXIF DateTimeOriginal": "captured",
    "EXIF DateTimeDigitized": "digitised",
    "EXIF DateTime": "modified",
    "XMP xmp:CreateDate": "created",
    "XMP xmp:ModifyDate": "modified",
    "XMP xmp:MetadataDate": "metadata changed",
    "XMP photoshop:DateCreated": "created",
    "IPTC DateCreated": "created",
}
_SOFTWARE_TAGS = ("EXIF Software", "XMP xmp:CreatorTool", "IPTC OriginatingProgram")
_HISTORY_AGENT = "XMP stEvt:softwareAgent"


# Tags that hold a position outside the EXIF GPS block: XMP's exif:GPSLatitude, a PNG text
# chunk "GPSLongitude", a camera maker's own "geo" field. Their values are hidden like GPS.
_GPS_TAG = re.compile(r"gps|latitude|longitude|geotag|geoloc|\blat\b|\blon\b|\blng\b", re.I)
_GPS_VALUE = re.compile(r"gps\s*(lat|long|pos|coord)|\bgps\b|latitude|longitude", re.I)


@dataclass
class Entry:
    group: str  # EXIF | GPS | XMP | IPTC | PNG | File
    tag: str
    value: str


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        stripped = value.rstrip(b"\x00 ")
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>"
        if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
            return f"<{len(value)} bytes>"
        value = text
    elif isinstance(value, tuple):
        value = ", ".join(_text(v) for v in value)
    elif isinstance(value, float) or hasattr(value, "numerator"):
        try:
            value = f"{float(value):.6g}"
        except (ZeroDivisionError, ValueError):
            value = str(value)
    text = str(value).strip("\x00 ")
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _exif_entries(im: Image.Image, show_gps: bool) -> tuple[list[Entry], bool]:
    entries: list[Entry] = []
    try:
        exif = im.getexif()
    except Exception:
        return [Entry("EXIF", "(damaged)", "the EXIF block could not be read")], False
    stored_orientation = decoder_orientation(im)
    for tag, value in exif.items():
        if tag in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop):
            continue
        if tag == ExifTags.Base.Orientation and stored_orientation is not None:
            # The HEIF decoder rewrites the tag to 1 once it has turned the pixels upright;
            # the file says otherwise, and the table shows what the file says.
            value = stored_orientation
        entries.append(Entry("EXIF", ExifTags.TAGS.get(tag, f"0x{tag:04X}"), _text(value)))
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.Interop):
        try:
            sub = exif.get_ifd(ifd)
        except Exception:  # absent (Pillow raises for a missing Interop block) or damaged
            continue
        for tag, value in sub.items():
            name = ExifTags.TAGS.get(tag, f"0x{tag:04X}")
            shown = f"<{len(value)} bytes>" if name == "MakerNote" else _text(value)
            entries.append(Entry("EXIF", name, shown))
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        gps = {}
    for tag, value in gps.items():
        name = ExifTags.GPSTAGS.get(tag, f"0x{tag:04X}")
        entries.append(Entry("GPS", name, _text(value) if show_gps else GPS_HIDDEN))
    return entries, bool(gps)


def _xmp_packet(im: Image.Image) -> bytes | None:
    packet = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if packet is None and hasattr(im, "tag_v2"):
        packet = im.tag_v2.get(700)  # TIFF's XMP tag
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return bytes(packet) if packet else None


def _xmp_name(tag: str) -> str:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return f"{_XMP_PREFIXES.get(ns, ns)}:{local}"
    return tag


def xmp_entries(packet: bytes) -> list[Entry]:
    """Every XMP property with a value, flattened (lists and structures by their leaf names)."""
    if re.search(rb"<!(DOCTYPE|ENTITY)", packet):
        return [Entry("XMP", "(not parsed)", "the XMP packet declares a DTD, which XMP never does")]
    try:
        root = ET.fromstring(packet.strip(b"\x00 \r\n\t"))
    except ET.ParseError as exc:
        return [Entry("XMP", "(damaged)", f"the XMP packet is not valid XML ({exc})")]
    entries: list[Entry] = []
    skip = {"rdf:RDF", "rdf:Description", "rdf:Seq", "rdf:Bag", "rdf:Alt", "rdf:li", "x:xmpmeta"}

    # Walked with a stack of its own, not recursion: a packet nested 8 000 deep is valid XML,
    # and recursion would fail the whole view (hiding even the software that wrote the file).
    stack: list[tuple[ET.Element, str | None, int]] = [(root, None, 0)]
    too_deep = False
    while stack:
        node, owner, depth = stack.pop()
        name = _xmp_name(node.tag)
        for key, value in node.attrib.items():
            key_name = _xmp_name(key)
            if not key_name.startswith(("rdf:", "x:", "xml:")):
                entries.append(Entry("XMP", key_name, _text(value)))
        label = owner if name in skip else name
        if len(node) == 0 and (node.text or "").strip() and label:
            entries.append(Entry("XMP", label, _text(node.text)))
        if depth >= MAX_XMP_DEPTH:
            too_deep = too_deep or len(node) > 0
            continue
        stack.extend((child, label, depth + 1) for child in reversed(node))
    if too_deep:
        entries.append(
            Entry("XMP", "(truncated)", f"nested deeper than {MAX_XMP_DEPTH} levels; not read")
        )
    return entries


def iptc_entries(im: Image.Image) -> list[Entry]:
    try:
        info = IptcImagePlugin.getiptcinfo(im) or {}
    except Exception:
        return [Entry("IPTC", "(damaged)", "the IPTC block could not be read")]
    entries = []
    for key, value in sorted(info.items()):
        name = _IPTC_NAMES.get(tuple(key), f"{key[0]}:{key[1]}")
        values = value if isinstance(value, list) else [value]
        entries.append(Entry("IPTC", name, "; ".join(_text(v) for v in values)))
    return entries


def _png_text(im: Image.Image) -> list[Entry]:
    if im.format != "PNG":
        return []
    text = getattr(im, "text", None) or {}
    return [Entry("PNG", str(k), _text(v)) for k, v in text.items() if k != "XML:com.adobe.xmp"]


def _is_gps_entry(entry: Entry) -> bool:
    """A position outside the EXIF GPS block: an XMP property or a PNG text chunk."""
    if entry.group == "GPS":
        return True
    if entry.group not in ("XMP", "PNG"):
        return False
    if _GPS_TAG.search(entry.tag):
        return True
    if entry.group == "PNG" and entry.tag.lower().startswith("raw profile type"):
        # A hex dump of an EXIF block (ImageMagick); GPS IFD tag 0x8825 in either byte order.
        compact = re.sub(r"\s", "", entry.value.lower())
        return "8825" in compact or "2588" in compact
    return entry.group == "PNG" and bool(_GPS_VALUE.search(entry.value))


def _hide_gps(entries: list[Entry], show_gps: bool) -> bool:
    """Hide every position (unless ``show_gps``); True when any was found."""
    found = False
    for entry in entries:
        if entry.group != "GPS" and _is_gps_entry(entry):
            found = True
            if not show_gps:
                entry.value = GPS_HIDDEN
    return found


def _ifd1_thumbnail(exif_block: bytes) -> bytes | None:
    """The JPEG thumbnail in IFD1 of a raw EXIF block (``Exif\\0\\0`` + TIFF), if any."""
    tiff = exif_block[6:] if exif_block.startswith(b"Exif\x00\x00") else exif_block
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    e = "<" if tiff[:2] == b"II" else ">"
    try:
        ifd0 = struct.unpack_from(e + "I", tiff, 4)[0]
        n0 = struct.unpack_from(e + "H", tiff, ifd0)[0]
        ifd1 = struct.unpack_from(e + "I", tiff, ifd0 + 2 + 12 * n0)[0]
        if ifd1 == 0:
            return None
        n1 = struct.unpack_from(e + "H", tiff, ifd1)[0]
        fields = {}
        for i in range(min(n1, 64)):
            tag, kind, _, value = struct.unpack_from(e + "HHII", tiff, ifd1 + 2 + 12 * i)
            if kind == 3:  # SHORT, stored in the first two bytes of the value field
                value = struct.unpack_from(e + "H", tiff, ifd1 + 2 + 12 * i + 8)[0]
            fields[tag] = value
    except struct.error:
        return None
    offset, length = fields.get(0x0201), fields.get(0x0202)
    if not offset or not length or offset + length > len(tiff):
        return None
    data = tiff[offset : offset + length]
    return data if data[:2] == b"\xff\xd8" else None


def compare_thumbnail(thumb_bytes: bytes, im: Image.Image) -> dict[str, Any]:
    """Does the embedded thumbnail show the image? Mean grey-level difference after fitting.

    The thumbnail is of the stored pixels (before EXIF rotation), so it is compared with them;
    black bars that some cameras add to keep the aspect ratio are cropped first.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            t = Image.open(io.BytesIO(thumb_bytes), formats=("JPEG",))
    except Image.DecompressionBombError:
        return {"status": "refused", "text": _REFUSED_THUMBNAIL.format(size="a size")}
    except Exception:
        return {"status": "unreadable", "text": "the embedded thumbnail cannot be decoded"}
    try:
        with t:
            tw, th = t.size
            if tw * th > THUMBNAIL_MAX_PIXELS or max(tw, th) > THUMBNAIL_MAX_SIDE:
                # Checked from its header, before a pixel is decoded: a few KB can claim any
                # size (a thumbnail bomb), and the image would be resized to it.
                size = f"{tw} × {th} px"
                return {"status": "refused", "text": _REFUSED_THUMBNAIL.format(size=size)}
            thumb = np.asarray(t.convert("L"), dtype=np.float32)
    except Exception:
        return {"status": "unreadable", "text": "the embedded thumbnail cannot be decoded"}
    rows = np.flatnonzero(thumb.max(axis=1) > 16)
    cols = np.flatnonzero(thumb.max(axis=0) > 16)
    if rows.size < 4 or cols.size < 4:
        return {"status": "blank", "text": "the embedded thumbnail is blank"}
    thumb = thumb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    th, tw = thumb.shape
    width, height = im.size
    image_ratio, thumb_ratio = width / height, tw / th
    if abs(image_ratio / thumb_ratio - 1) > 0.1:
        return {
            "status": "differs",
            "text": f"the thumbnail's shape ({tw} × {th}) is not the image's ({width} × {height})",
        }
    im.draft("L", (tw * 2, th * 2))  # JPEG: decode at a reduced scale, fast
    # Shrunk as 8-bit grey, then compared in float at the thumbnail's (capped) size.
    full = np.asarray(im.convert("L"))
    small = cv2.resize(full, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    # Compare structure, not brightness: an exposure tweak is not a different picture.
    a, b = small - small.mean(), thumb - thumb.mean()
    mad = float(np.abs(a - b).mean())
    worst = float(cv2.blur(np.abs(a - b), (max(3, tw // 10), max(3, th // 10))).max())
    corr = float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-6))
    same = corr > 0.9 and mad < 12 and worst < 40
    text = (
        "matches the image"
        if same
        else "DIFFERS from the image: the picture was changed after the thumbnail was written"
    )
    return {
        "status": "matches" if same else "differs",
        "text": f"{text} (correlation {corr:.2f}, mean difference {mad:.1f}, "
        f"largest local difference {worst:.0f} grey levels)",
        "correlation": round(corr, 4),
        "mean_difference": round(mad, 3),
    }


def _container_entries(im: Image.Image, data: bytes) -> list[Entry]:
    """HEIF and AVIF: the brand of the file's ftyp box, and what the decoder says of it."""
    if im.format not in ("HEIF", "AVIF") or data[4:8] != b"ftyp":
        return []
    entries = [Entry("File", "Brand", _text(data[8:12]))]
    bit_depth = im.info.get("bit_depth")
    if isinstance(bit_depth, int):
        entries.append(Entry("File", "Bit depth", str(bit_depth)))
    n_images = int(getattr(im, "n_frames", 1))
    if n_images > 1:
        kind = "images (the primary one is analyzed)" if im.format == "HEIF" else "frames"
        entries.append(Entry("File", "Images", f"{n_images} {kind}"))
    return entries


def read_metadata(data: bytes, show_gps: bool = False) -> dict[str, Any]:
    """All metadata of an image file's bytes: entries and findings (plain values)."""
    data, skipped = without_oversized_png_chunks(data)
    try:
        im = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except Exception as exc:
        raise NotApplicable(f"not an image file this app reads ({type(exc).__name__})") from exc
    with im:
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
        entries = [Entry("File", "Format", fmt), Entry("File", "Mode", im.mode)]
        entries += [
            Entry("PNG", "(skipped)", f"{chunk}: over 1 MB decompressed, not read")
            for chunk in skipped
        ]
        if im.info.get("icc_profile"):
            entries.append(Entry("File", "ICC profile", f"{len(im.info['icc_profile'])} bytes"))
        if "jfif_version" in im.info:
            entries.append(Entry("File", "JFIF", ".".join(map(str, im.info["jfif_version"]))))
        entries += _container_entries(im, data)
        exif_entries, has_gps = _exif_entries(im, show_gps)
        entries += exif_entries
        packet = _xmp_packet(im)
        if packet:
            entries += xmp_entries(packet)
        entries += iptc_entries(im)
        entries += _png_text(im)
        has_gps = _hide_gps(entries, show_gps) or has_gps
        thumbnail = None
        raw_exif = im.info.get("exif")
        thumb_bytes = _ifd1_thumbnail(raw_exif) if isinstance(raw_exif, bytes) else None
        if thumb_bytes:
            thumbnail = compare_thumbnail(thumb_bytes, im)
    return {"format": fmt, "entries": entries, "has_gps": has_gps, "thumbnail": thumbnail}


def findings(meta: dict[str, Any]) -> dict[str, Any]:
    """Software, dates and the thumbnail check, from ``read_metadata``'s entries."""
    by_key: dict[str, str] = {}
    agents: list[str] = []
    for e in meta["entries"]:
        key = f"{e.group} {e.tag}"
        if key == _HISTORY_AGENT:
            agents.append(e.value)
        by_key.setdefault(key, e.value)
    software = [by_key[k] for k in _SOFTWARE_TAGS if by_key.get(k)]
    software += [a for a in agents if a not in software]
    png_software = [e.value for e in meta["entries"] if e.group == "PNG" and e.tag == "Software"]
    software += [s for s in png_software if s not in software]
    editors = sorted({s for s in software if any(name in s.lower() for name in EDITORS)})
    dates = {k.split(" ", 1)[1]: by_key[k] for k in _DATE_TAGS if by_key.get(k)}
    captured = by_key.get("EXIF DateTimeOriginal") or by_key.get("XMP xmp:CreateDate")
    modified = by_key.get("EXIF DateTime") or by_key.get("XMP xmp:ModifyDate")
    out: dict[str, Any] = {
        "software": software,
        "editors": editors,
        "dates": dates,
        "modified_after_capture": bool(
            captured and modified and _date_key(modified) > _date_key(captured)
        ),
        "thumbnail": meta.get("thumbnail"),
        "has_gps": meta["has_gps"],
    }
    return out


def _date_key(text: str) -> str:
    """Dates of EXIF (2021:03:04 10:11:12) and XMP (2021-03-04T10:11:12) compare as digits."""
    return "".join(ch for ch in text if ch.isdigit())[:14]


def summary_text(found: dict[str, Any], n_entries: int) -> str:
    parts = []
    if found["software"]:
        parts.append("software: " + ", ".join(found["software"][:3]))
    if found["editors"]:
        parts.append("written by an editor (" + ", ".join(found["editors"]) + ")")
    dates = found["dates"]
    if dates:
        shown = [f"{k} {v}" for k, v in list(dates.items())[:3]]
        parts.append("dates: " + "; ".join(shown))
    if found["modified_after_capture"]:
        parts.append("modified after capture")
    thumb = found.get("thumbnail")
    if thumb:
        parts.append(f"EXIF thumbnail {thumb['status']}")
    parts.append("GPS present" if found["has_gps"] else "no GPS")
    return f"{n_entries} tags; " + "; ".join(parts)


def compute(source: Evidence | np.ndarray, show_gps: bool = False) -> ViewResult:
    ev = as_evidence(source)
    if ev.data is None:
        raise NotApplicable("no file: metadata is read from the file itself")
    meta = read_metadata(ev.data, show_gps=show_gps)
    tags = [e for e in meta["entries"] if e.group != "File"]
    if not tags:
        raise NotApplicable(f"no EXIF, XMP or IPTC metadata in this {meta['format']} file")
    found = findings(meta)
    details = {
        "format": meta["format"],
        "table": [[e.group, e.tag, e.value] for e in meta["entries"]],
        **found,
    }
    return ViewResult("metadata", None, summary_text(found, len(tags)), True, details)
