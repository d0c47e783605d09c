"""HEIC/HEIF and AVIF: phone photos read like JPEGs, in every layer, with their metadata.

The files are made here with pillow-heif (HEIC) and Pillow (AVIF), a few KB each.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ncl_core.cli import EXIT_OK, main
from ncl_core.data.io import decode_image, is_image_file, read_image, read_image_info
from ncl_core.errors import ImageReadError
from ncl_core.evidence.image import load_evidence
from ncl_core.views import metadata

from imaging import pattern

FORMATS = ("HEIF", "AVIF")
SUFFIX = {"HEIF": ".heic", "AVIF": ".avif", "JPEG": ".jpg"}
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="GIMP 2.10" '
    b'xmp:CreateDate="2024-01-02T03:04:05"/></rdf:RDF></x:xmpmeta>'
)


def phone_exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro"
    exif[0x0131] = "Adobe Photoshop 25.0"
    exif[0x0132] = "2024:02:03 04:05:06"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 30.0)})
    return exif.tobytes()


def encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, quality=95, **kwargs)
    return buffer.getvalue()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_rotated_phone_photo_reads_upright_like_the_jpeg(fmt):
    stored = pattern(64, 96, seed=1, noise=0)
    jpeg, jpeg_warnings, jpeg_info = decode_image(
        encode(stored, "JPEG", exif=phone_exif()), "x.jpg"
    )
    image, warnings, info = decode_image(encode(stored, fmt, exif=phone_exif()), f"x{fmt}")
    assert image.shape == jpeg.shape == (96, 64, 3)  # orientation 6: turned upright
    assert np.abs(image.astype(int) - jpeg.astype(int)).mean() < 4
    assert (info.width, info.height, info.orientation) == (64, 96, 6)
    assert info.format == fmt and info.has_gps
    assert (
        info.exif
        == jpeg_info.exif
        == {
            "make": "Apple",
            "model": "iPhone 15 Pro",
            "software": "Adobe Photoshop 25.0",
            "datetime": "2024:01:02 03:04:05",
        }
    )
    assert len(warnings) == 1 and "orientation 6" in warnings[0]


@pytest.mark.parametrize("suffix", [".heic", ".HEIC", ".heif", ".hif", ".avif", ".AVIF"])
def test_heic_and_avif_names_are_images(suffix):
    assert is_image_file(f"IMG_0001{suffix}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_reads_like_a_jpegs(fmt):
    stored = pattern(40, 56, seed=2)
    kwargs = {"exif": phone_exif(), "xmp": XMP}
    jpeg = metadata.compute(load_evidence_bytes(encode(stored, "JPEG", **kwargs)))
    result = metadata.compute(load_evidence_bytes(encode(stored, fmt, **kwargs)))
    tags = lambda r: [row for row in r.details["table"] if row[0] != "File"]  # noqa: E731
    assert tags(result) == tags(jpeg)  # every EXIF, GPS and XMP tag, the stored orientation too
    assert ["EXIF", "Orientation", "6"] in tags(result)
    assert ["GPS", "GPSLatitude", metadata.GPS_HIDDEN] in tags(result)
    assert result.details["format"] == fmt
    assert ["File", "Brand", "heic" if fmt == "HEIF" else "avif"] in result.details["table"]
    for key in ("software", "editors", "dates", "modified_after_capture", "has_gps"):
        assert result.details[key] == jpeg.details[key], key
    assert "written by an editor" in result.summary and "GPS present" in result.summary
    shown = metadata.compute(load_evidence_bytes(encode(stored, fmt, **kwargs)), show_gps=True)
    assert ["GPS", "GPSLatitude", "48, 51, 30"] in shown.details["table"]


def load_evidence_bytes(data: bytes):
    from ncl_core.evidence.image import Evidence

    return Evidence.from_bytes(data, "photo")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_damaged_file_is_one_line_naming_it(tmp_path, fmt):
    data = encode(pattern(64, 64, seed=3), fmt)
    path = tmp_path / f"cut{SUFFIX[fmt]}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    kind = "HEI[CF]" if fmt == "HEIF" else "AVIF"
    assert re.search(f"the {kind} data is truncated or (corrupt|damaged)", message)
    assert "re-copy the original file" in message


def test_a_text_file_named_heic_lists_the_formats_read(tmp_path):
    path = tmp_path / "notes.heic"
    path.write_text("not a photo\n")
    with pytest.raises(ImageReadError, match=r"supported: .*HEIC/HEIF, AVIF"):
        read_image(path)


def test_a_burst_reads_its_primary_image(tmp_path):
    first, primary = pattern(24, 32, seed=4), np.full((30, 40, 3), 200, np.uint8)
    path = tmp_path / "burst.heic"
    path.write_bytes(
        encode(first, "HEIF", save_all=True, append_images=[Image.fromarray(primary)],
               primary_index=1)
    )  # fmt: skip
    image, warnings = read_image(path)
    assert image.shape == (30, 40, 3)
    assert "file holds 2 images; only the primary one was read" in warnings
    entries = metadata.read_metadata(load_evidence(path).data)["entries"]
    assert metadata.Entry("File", "Images", "2 images (the primary one is analyzed)") in entries


def test_a_10_bit_heic_is_reduced_with_a_warning(tmp_path):
    import pillow_heif

    deep = (pattern(32, 48, seed=5).astype(np.uint16) * 257).tobytes()
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(48, 32), data=deep)
    buffer = io.BytesIO()
    heif.save(buffer, quality=95)
    path = tmp_path / "deep.heic"
    path.write_bytes(buffer.getvalue())
    image, warnings = read_image(path)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8
    assert "10-bit image reduced to 8 bits per channel" in warnings
    assert read_image_info(path).format == "HEIF"


@pytest.fixture()
def phone_folder(tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    for fmt in ("HEIF", "AVIF", "JPEG"):
        data = encode(pattern(40, 56, seed=6), fmt, exif=phone_exif(orientation=1))
        (folder / f"IMG_0001{SUFFIX[fmt]}").write_bytes(data)
    return folder


def test_the_cli_analyses_and_reports_heic_and_avif(tmp_path, phone_folder, tiny_model_path):
    before = {p.name: sha(p) for p in phone_folder.iterdir()}
    model = ["--model", str(tiny_model_path)]
    heic = phone_folder / "IMG_0001.heic"
    out = tmp_path / "out"
    args = ["analyze", str(heic), str(phone_folder / "IMG_0001.avif"), "--out", str(out)]
    assert main([*args, "--views", "metadata", *model, "--input-size", "64"]) == EXIT_OK
    record = json.loads((out / "IMG_0001.json").read_text())
    assert (record["width"], record["height"]) == (56, 40)
    assert record["views"]["metadata"]["details"]["format"] == "HEIF"
    assert {p.name for p in out.iterdir()} >= {
        f"IMG_0001{s}" for s in (".json", ".mask.png", ".heatmap.png", ".overlay.png")
    }

    report = tmp_path / "report"
    assert main(["batch", str(phone_folder), "--report", str(report), *model]) == EXIT_OK
    rows = [json.loads(line) for line in (report / "results.jsonl").read_text().splitlines()][1:]
    by_name = {r["name"]: r for r in rows}
    for name, fmt in (("IMG_0001.heic", "HEIF"), ("IMG_0001.avif", "AVIF")):
        row = by_name[name]
        assert (row["status"], row["format"], row["width"], row["height"]) == ("ok", fmt, 56, 40)
        assert (row["exif_make"], row["exif_model"]) == ("Apple", "iPhone 15 Pro")
        assert row["exif_has_gps"] is True and row["hash_check"] == "match"
        assert row["sha256_start"] == before[name]
    assert {p.name: sha(p) for p in phone_folder.iterdir()} == before  # evidence untouched
    assert sorted(p.name for p in phone_folder.iterdir()) == sorted(before)


def test_a_damaged_heic_in_the_cli_is_one_error_line(tmp_path, tiny_model_path, capsys):
    data = encode(pattern(64, 64, seed=3), "HEIF")
    path = tmp_path / "evidence" / "cut.heic"
    path.parent.mkdir()
    path.write_bytes(data[:100])
    code = main(["analyze", str(path), "--model", str(tiny_model_path), "--input-size", "64"])
    err = capsys.readouterr().err
    assert code != EXIT_OK
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "cut.heic" in lines[0] and "HEIC data is truncated" in lines[0]
    assert "Traceback" not in err
