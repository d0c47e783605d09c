"""Generators of hostile metadata, links and model files for ``tests/test_hostile_*.py``.

Everything is small and built on the fly: EXIF blocks are assembled byte by byte, so a tag can
carry a type no camera writes (an orientation stored as RATIONAL 6/0, or as text), and a
thumbnail can claim any size while the file stays a few kilobytes.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from imaging import pattern

# TIFF field types
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 1, 2, 3, 4, 5, 7
_SIZES = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (links not followed): evidence must not change."""
    return {
        str(p.relative_to(folder)): sha256(p)
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _value_bytes(kind: int, value: object) -> tuple[int, bytes]:
    """(count, packed little-endian bytes) of one field's value."""
    if kind == ASCII:
        raw = str(value).encode("utf-8") + b"\x00"
        return len(raw), raw
    if kind in (BYTE, UNDEFINED):
        raw = bytes(value)  # type: ignore[arg-type]
        return len(raw), raw
    values = value if isinstance(value, (list, tuple)) else [value]
    if kind == RATIONAL:
        if values and not isinstance(values[0], (list, tuple)):
            values = [values]
        return len(values), b"".join(struct.pack("<II", n, d) for n, d in values)
    fmt = "<H" if kind == SHORT else "<I"
    return len(values), b"".join(struct.pack(fmt, v) for v in values)


def exif_block(
    ifd0: list[tuple[int, int, object]],
    ifd1: list[tuple[int, int, object]] | None = None,
    thumbnail: bytes | None = None,
) -> bytes:
    """A raw ``Exif\\0\\0`` block (little-endian TIFF) with the given fields.

    Fields are ``(tag, type, value)``; ``thumbnail`` is appended after the IFDs and IFD1 gets
    its offset and length (tags 0x0201 / 0x0202).
    """
    ifds = [list(ifd0)] + ([list(ifd1 or [])] if ifd1 is not None or thumbnail else [])
    if thumbnail is not None:
        ifds[1] += [(0x0201, LONG, 0), (0x0202, LONG, len(thumbnail))]
    # Layout: header (8) | IFD0 | IFD1 | out-of-line values | thumbnail. Packed twice: the
    # first pass measures the values, the second writes the thumbnail's offset.
    positions, pos = [], 8
    for fields in ifds:
        positions.append(pos)
        pos += 2 + 12 * len(fields) + 4
    thumb_offset = 0
    for _ in range(2):
        extra = b""
        packed = []
        for n, fields in enumerate(ifds):
            body = struct.pack("<H", len(fields))
            for tag, kind, value in sorted(fields, key=lambda f: f[0]):
                if tag == 0x0201 and thumbnail is not None:
                    value = thumb_offset
                count, raw = _value_bytes(kind, value)
                if len(raw) <= 4:
                    body += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\x00")
                else:
                    body += struct.pack("<HHII", tag, kind, count, pos + len(extra))
                    extra += raw + (b"\x00" if len(raw) & 1 else b"")
            next_ifd = positions[n + 1] if n + 1 < len(ifds) else 0
            packed.append(body + struct.pack("<I", next_ifd))
        thumb_offset = pos + len(extra)
    tiff = b"II*\x00" + struct.pack("<I", 8) + b"".join(packed) + extra
    return b"Exif\x00\x00" + tiff + (thumbnail or b"")


def jpeg_bytes(array: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def jpeg_with_exif(path: Path, exif: bytes, array: np.ndarray | None = None) -> Path:
    """A JPEG of ``array`` (a 24 x 32 pattern) carrying the raw EXIF block ``exif``."""
    array = pattern(24, 32, seed=3) if array is None else array
    data = jpeg_bytes(array)
    app1 = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunks(path: Path, chunks: list[bytes], array: np.ndarray | None = None) -> Path:
    """A PNG of ``array`` with extra chunks inserted after IHDR."""
    array = pattern(24, 32, seed=4) if array is None else array
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    data = buf.getvalue()
    ihdr_end = 8 + 8 + 13 + 4
    path.write_bytes(data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:])
    return path


def big_thumbnail_jpeg(width: int, height: int) -> bytes:
    """A valid JPEG whose frame header claims ``width`` x ``height`` (a flat grey image).

    Encoded small by Pillow and then given a larger SOF size, so a few KB claim any size; a
    decoder fills the missing rows (it is only ever decoded if nothing caps it first).
    """
    data = bytearray(jpeg_bytes(np.full((16, 16, 3), 128, np.uint8)))
    i = 2
    while i < len(data):
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", data, i + 5, height, width)
            break
        i += 2 + length
    return bytes(data)


def xmp_packet(body: str) -> bytes:
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{body}</rdf:RDF></x:xmpmeta>"
    ).encode()


def png_itxt(key: str, text: str) -> bytes:
    return png_chunk(b"iTXt", key.encode() + b"\x00\x00\x00\x00\x00" + text.encode())


def png_ztxt(key: str, text: bytes) -> bytes:
    return png_chunk(b"zTXt", key.encode() + b"\x00\x00" + zlib.compress(text, 9))


def jpeg_with_xmp(path: Path, packet: bytes, array: np.ndarray | None = None) -> Path:
    """A JPEG carrying an XMP packet in its APP1 segment."""
    array = pattern(24, 32, seed=6) if array is None else array
    data = jpeg_bytes(array)
    body = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    path.write_bytes(data[:2] + app1 + data[2:])
    return path


def png_text(key: str, text: str) -> bytes:
    return png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + text.encode("latin-1"))


def model_tensors(config: dict) -> dict:
    """The weights of a freshly built network of ``config`` (a dict of ``ModelConfig``)."""
    import torch

    from ncl_core.network.model import NCLNet
    from ncl_core.network.net_config import ModelConfig

    torch.manual_seed(0)
    net = NCLNet(ModelConfig(**config))
    return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}


def write_model(path: Path, tensors: dict, config: dict, **metadata: str) -> Path:
    """A model file written directly with safetensors: any weights, any metadata text."""
    import json

    from safetensors.torch import save_file

    fields = {
        "format": "ncl-forensics-model",
        "format_version": "1",
        "model_config": json.dumps(config),
        "name": path.stem,
        "created": "2026-01-01T00:00:00+00:00",
        "app_version": "test",
        "parent": "",
        "trained_on": "{}",
        "metrics": "{}",
        "train_config": "{}",
        "inference": "{}",
    }
    fields.update(metadata)
    save_file(tensors, str(path), metadata=fields)
    return path
