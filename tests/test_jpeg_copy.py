"""A report's display copy of a JPEG is the file's own image without its metadata
(ncl_core.evidence.jpeg_copy), and only where that is exactly what was analyzed."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ncl_core.analysis import Analysis
from ncl_core.evidence.image import load_evidence
from ncl_core.evidence.jpeg_copy import jpeg_without_metadata
from ncl_core.report import artefacts

from imaging import pattern

_ICC = b"\x00" * 128 + b"acsp-not-a-real-profile"


def _exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS
    return exif.tobytes()


def _jpeg(image: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=88, **kwargs)
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def _metadata(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as im:
        return {k: im.info.get(k) for k in ("exif", "icc_profile", "comment", "xmp")}


@pytest.mark.parametrize("progressive", [False, True])
def test_the_image_is_copied_bit_for_bit_and_the_metadata_left_out(progressive: bool) -> None:
    image = pattern(61, 83, seed=3)
    data = _jpeg(
        image,
        progressive=progressive,
        exif=_exif(),
        icc_profile=_ICC,
        comment=b"edited by hand",
        xmp=b"<x:xmpmeta>secret</x:xmpmeta>",
    )
    assert all(_metadata(data).values())  # the file really carries all four
    copied = jpeg_without_metadata(data)
    assert copied is not None
    out, size = copied
    assert size == (83, 61)
    assert len(out) < len(data)
    assert np.array_equal(_pixels(out), _pixels(data))
    assert not any(_metadata(out).values())
    assert b"SecretCam" not in out and b"secret" not in out


def test_restart_markers_and_a_trailing_second_image() -> None:
    image = pattern(64, 96, seed=5)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    assert ok
    first = encoded.tobytes()
    second = _jpeg(pattern(32, 32, seed=9))
    data = first + second  # what an MPO file or a trailer looks like after the first image
    copied = jpeg_without_metadata(data)
    assert copied is not None
    out, size = copied
    assert size == (96, 64)
    assert out.endswith(b"\xff\xd9") and len(out) <= len(first)
    assert np.array_equal(_pixels(out), _pixels(first))


def test_what_is_not_copied() -> None:
    good = _jpeg(pattern(40, 40))
    sof = good.index(b"\xff\xc0")
    cmyk = io.BytesIO()
    Image.fromarray(pattern(40, 40)).convert("CMYK").save(cmyk, "JPEG")
    png = io.BytesIO()
    Image.fromarray(pattern(40, 40)).save(png, "PNG")
    refused = {
        "empty": b"",
        "png": png.getvalue(),
        "truncated": good[: len(good) // 2],
        "no end of image": good[:-2],
        "arithmetic coding": good[:sof] + b"\xff\xc9" + good[sof + 2 :],
        "four components": cmyk.getvalue(),
        "two starts": good[:2] + good,
        "a segment running past the end": good[:sof] + b"\xff\xc0\xff\xff",
    }
    for name, data in refused.items():
        assert jpeg_without_metadata(data) is None, name


def _write(tmp_path: Path, data: bytes) -> tuple[dict, Path]:
    path = tmp_path / "evidence" / "photo.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    evidence = load_evidence(path)
    h, w = evidence.image.shape[:2]
    prob = np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w)
    settings = {"mode": "tiled", "threshold": 0.5}
    analysis = Analysis(None, None, w, h, prob, 0.5, 0.5, "m", "s", settings, "cpu", 0.0, "now")
    out = tmp_path / "report"
    return artefacts._write_pictures(evidence, analysis, out, "00001", 160, []), out


def test_a_report_shows_the_jpeg_as_analyzed(tmp_path: Path) -> None:
    image = pattern(70, 90, seed=1)
    data = _jpeg(image, exif=_exif(), icc_profile=_ICC)
    paths, out = _write(tmp_path, data)
    shown = (out / paths["image_path"]).read_bytes()
    assert shown == jpeg_without_metadata(data)[0]
    analyzed = load_evidence(tmp_path / "evidence" / "photo.jpg").image
    assert np.array_equal(_pixels(shown)[..., ::-1], analyzed)
    assert not any(_metadata(shown).values())
    assert (tmp_path / "evidence" / "photo.jpg").read_bytes() == data  # evidence untouched


def test_a_rotated_jpeg_is_encoded_as_analyzed(tmp_path: Path) -> None:
    image = pattern(40, 90, seed=2)
    data = _jpeg(image, exif=_exif(orientation=6))  # shown rotated: 90 wide becomes 90 high
    paths, out = _write(tmp_path, data)
    shown = (out / paths["image_path"]).read_bytes()
    assert shown != jpeg_without_metadata(data)[0]
    assert _pixels(shown).shape == (90, 40, 3)
    assert not any(_metadata(shown).values())
