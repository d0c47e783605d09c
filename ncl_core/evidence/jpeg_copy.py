"""A JPEG file's own image, without its metadata: the display copy of a report, where the
evidence is a JPEG shown as it was analyzed.

The compressed image is copied byte for byte (no decoding, no second compression: the pixels
are the file's own, and it costs a millisecond instead of an encode); the segments that carry
metadata (EXIF, XMP, IPTC, comments, colour profiles, makers' data) and anything after the end
of the image (a second picture of an MPO file, trailers) are left out. Only the plain cases
are copied: baseline, extended or progressive Huffman coding, one or three components. No
library does this losslessly without a system libjpeg (jpegtran's ``-copy none``), so the
marker walk is here; the caller decodes nothing, and gets None for anything else.
"""

from __future__ import annotations

import re
import struct

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_SOF_COPIED = {0xC0, 0xC1, 0xC2}  # baseline, extended, progressive; Huffman coded
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # lossless, arithmetic…
_APP0, _APP14, _COM = 0xE0, 0xEE, 0xFE
# A marker inside entropy-coded data: 0xFF followed by neither a stuffed zero, a restart
# marker nor another fill byte.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_without_metadata(data: bytes) -> tuple[bytes, tuple[int, int]] | None:
    """``data``'s JPEG image with only the segments needed to decode it, and its (width,
    height) from the frame header; None when the file is not a JPEG this copies (see the
    module) or its structure is broken."""
    if data[:2] != b"\xff\xd8":
        return None
    out = [data[:2]]
    pos, size, in_scan = 2, None, False
    n = len(data)
    while pos < n:
        if in_scan:
            found = _MARKER_IN_SCAN.search(data, pos)
            if found is None:
                return None  # no end of image
            out.append(data[pos : found.start()])
            pos = found.start()
            in_scan = False
            continue
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out.append(b"\xff\xd9")
            return (b"".join(out), size) if size is not None else None
        if marker == _SOI or 0xD0 <= marker <= 0xD7 or pos + 2 > n:
            return None  # a second start, or a restart marker outside a scan
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > n:
            return None
        segment = data[pos : pos + length]  # the length field and the body
        body = segment[2:]
        pos += length
        if marker in _SOF_OTHER:
            return None
        if marker in _SOF_COPIED:
            if size is not None or len(body) < 6 or body[5] not in (1, 3):
                return None
            height, width = struct.unpack_from(">HH", body, 1)
            if width == 0 or height == 0:
                return None
            size = (width, height)
        elif marker == _COM or (0xE0 <= marker <= 0xEF and marker not in (_APP0, _APP14)):
            continue  # metadata: left out
        elif marker == _APP0 and not body.startswith(b"JFIF\x00"):
            continue  # JFXX thumbnails and the like
        elif marker == _SOS:
            if size is None:
                return None
            in_scan = True
        # APP14 "Adobe" stays: it says how the components are coded.
        out.append(bytes((0xFF, marker)) + segment)
    return None
