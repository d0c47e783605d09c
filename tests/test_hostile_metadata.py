"""Hostile metadata: bad tags never block the pixels, embedded images are capped before they
are decoded, GPS stays hidden in every form, and damaged blocks hide nothing else."""

from __future__ import annotations

import json
import tracemalloc
import zlib
from pathlib import Path

from hostile_files import (
    ASCII,
    RATIONAL,
    big_thumbnail_jpeg,
    exif_block,
    hashes,
    jpeg_bytes,
    jpeg_with_exif,
    jpeg_with_xmp,
    png_chunk,
    png_itxt,
    png_text,
    png_with_chunks,
    png_ztxt,
    xmp_packet,
)

from ncl_core.cli import EXIT_OK, main
from ncl_core.data.io import read_image, read_image_info
from ncl_core.evidence.image import load_evidence
from ncl_core.views import metadata

from imaging import pattern, save

SOFTWARE = (0x0131, ASCII, "Adobe Photoshop 25.0")


def _bad_orientations(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        jpeg_with_exif(folder / "rational.jpg", exif_block([(0x0112, RATIONAL, (6, 0)), SOFTWARE])),
        jpeg_with_exif(folder / "text.jpg", exif_block([(0x0112, ASCII, "six")])),
    ]


def test_a_bad_orientation_tag_never_blocks_the_pixels(
    tmp_path: Path, narrow_model: Path, capsys
) -> None:
    evidence = tmp_path / "evidence"
    bad = _bad_orientations(evidence)
    save(evidence / "good.png", pattern(24, 32, seed=1))
    before = hashes(evidence)
    for path in bad:
        image, warnings = read_image(path)
        assert image.shape == (24, 32, 3)
        assert any("orientation" in w and "ignored" in w for w in warnings)
        assert read_image_info(path).orientation == 1
    assert "Photoshop" in metadata.compute(load_evidence(bad[0])).summary

    model = ["--model", str(narrow_model), "--mode", "resize"]
    assert main(["analyze", *map(str, bad), *model]) == EXIT_OK
    report = tmp_path / "report"
    assert main(["batch", str(evidence), "--report", str(report), *model]) == EXIT_OK
    header = json.loads((report / "report.json").read_text("utf-8"))
    assert header["status"] == "complete" and header["n_ok"] == 3
    # A resume over the finished report reads the same files again without stopping.
    assert main(["batch", str(evidence), "--report", str(report), "--resume", *model]) == EXIT_OK
    assert "Traceback" not in capsys.readouterr().err
    assert hashes(evidence) == before


def test_a_thumbnail_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    # A 384 x 256 PNG carrying an EXIF thumbnail whose header claims 15 900 x 10 600 px.
    bomb = big_thumbnail_jpeg(15_900, 10_600)
    raw = exif_block([SOFTWARE], [], thumbnail=bomb)
    path = png_with_chunks(tmp_path / "bomb.png", [png_chunk(b"eXIf", raw[6:])], pattern(256, 384))
    before = hashes(tmp_path)
    assert path.stat().st_size < 400_000
    evidence = load_evidence(path)
    tracemalloc.start()
    try:
        result = metadata.compute(evidence)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.details["thumbnail"]["status"] == "refused"
    assert "15900 × 10600" in result.details["thumbnail"]["text"]
    assert "thumbnail refused" in result.summary and "Photoshop" in result.summary
    assert peak < 20_000_000  # decoding and upsampling to it would take gigabytes
    assert hashes(tmp_path) == before


def test_a_normal_thumbnail_is_still_compared(tmp_path: Path) -> None:
    image = pattern(96, 128, seed=5)
    thumb = jpeg_bytes(image[::8, ::8].copy())
    path = jpeg_with_exif(tmp_path / "t.jpg", exif_block([SOFTWARE], [], thumb), image)
    result = metadata.compute(load_evidence(path))
    assert result.details["thumbnail"]["status"] == "matches"


LATITUDE, LONGITUDE = "48,51.4N", "2,21.1E"


def _gps_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ns = 'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    element = xmp_packet(
        f'<rdf:Description {ns} xmp:CreatorTool="GIMP 2.10">'
        f"<exif:GPSLatitude>{LATITUDE}</exif:GPSLatitude></rdf:Description>"
    )
    attribute = xmp_packet(f'<rdf:Description {ns} exif:GPSLongitude="{LONGITUDE}"/>')
    return [
        jpeg_with_xmp(folder / "xmp_element.jpg", element),
        jpeg_with_xmp(folder / "xmp_attribute.jpg", attribute),
        png_with_chunks(folder / "png_text.png", [png_text("GPSLatitude", LATITUDE)]),
        png_with_chunks(folder / "png_comment.png", [png_text("Comment", f"GPS lat {LATITUDE}")]),
        png_with_chunks(
            folder / "png_itxt_xmp.png", [png_itxt("XML:com.adobe.xmp", attribute.decode())]
        ),
    ]


def test_gps_outside_the_exif_block_is_hidden_unless_asked(
    tmp_path: Path, narrow_model: Path, capsys
) -> None:
    evidence = tmp_path / "evidence"
    files = _gps_files(evidence)
    before = hashes(evidence)
    for path in files:
        hidden = metadata.compute(load_evidence(path))
        text = json.dumps(hidden.details)
        assert LATITUDE not in text and LONGITUDE not in text, path.name
        assert "GPS present" in hidden.summary, path.name
        assert read_image_info(path).has_gps, path.name
        shown = json.dumps(metadata.compute(load_evidence(path), show_gps=True).details)
        assert LATITUDE in shown or LONGITUDE in shown, path.name
    # The CLI's JSON and the batch report carry no position either.
    out = tmp_path / "out"
    model = ["--model", str(narrow_model), "--mode", "resize"]
    args = ["analyze", *map(str, files), "--out", str(out), "--views", "metadata"]
    assert main([*args, *model]) == EXIT_OK
    report = tmp_path / "report"
    assert main(["batch", str(evidence), "--report", str(report), *model]) == EXIT_OK
    written = [
        p
        for d in (out, report)
        for p in d.rglob("*")
        if p.suffix in (".json", ".jsonl", ".csv", ".html")
    ]
    assert written
    for path in written:
        text = path.read_text("utf-8")
        assert LATITUDE not in text and LONGITUDE not in text, path
    rows = [json.loads(line) for line in (report / "results.jsonl").read_text("utf-8").splitlines()]
    assert all(r["exif_has_gps"] for r in rows if r.get("record") == "row")
    assert LATITUDE not in capsys.readouterr().out
    assert hashes(evidence) == before


def _oversized_chunks(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    big = b"A" * (2 * 1024 * 1024)  # 2 MB decompressed, a few KB in the file
    return [
        png_with_chunks(
            folder / "ztxt.png", [png_ztxt("Comment", big), png_text("Software", "GIMP")]
        ),
        png_with_chunks(
            folder / "iccp.png", [png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(big, 9))]
        ),
        png_with_chunks(
            folder / "itxt.png",
            [png_chunk(b"iTXt", b"Note\x00\x01\x00\x00\x00" + zlib.compress(big, 9))],
        ),
    ]


def test_an_oversized_png_text_or_icc_chunk_is_skipped_and_the_pixels_analyzed(
    tmp_path: Path, narrow_model: Path, capsys
) -> None:
    evidence = tmp_path / "evidence"
    files = _oversized_chunks(evidence)
    before = hashes(evidence)
    for path in files:
        assert path.stat().st_size < 50_000
        image, warnings = read_image(path)
        assert image.shape == (24, 32, 3), path.name
        assert any("over 1 MB decompressed were skipped" in w for w in warnings), path.name
        assert read_image_info(path).width == 32
        result = metadata.compute(load_evidence(path))
        assert any(row[1] == "(skipped)" for row in result.details["table"]), path.name
    assert "GIMP" in metadata.compute(load_evidence(files[0])).summary
    report = tmp_path / "report"
    model = ["--model", str(narrow_model), "--mode", "resize"]
    assert main(["batch", str(evidence), "--report", str(report), *model]) == EXIT_OK
    header = json.loads((report / "report.json").read_text("utf-8"))
    assert header["n_ok"] == len(files) and header["n_errors"] == 0
    assert hashes(evidence) == before  # the chunks are left out of a copy, never the file


def test_xmp_nested_8000_deep_still_shows_what_can_be_read(tmp_path: Path) -> None:
    ns = 'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    deep = "<dc:subject>" * 8000 + "x" + "</dc:subject>" * 8000
    packet = xmp_packet(
        f'<rdf:Description {ns} xmp:CreatorTool="Adobe Photoshop 25.0">{deep}</rdf:Description>'
    )
    # In a PNG's iTXt chunk: a JPEG segment (64 KB) cannot hold 8 000 levels.
    path = png_with_chunks(tmp_path / "deep.png", [png_itxt("XML:com.adobe.xmp", packet.decode())])
    before = hashes(tmp_path)
    result = metadata.compute(load_evidence(path))
    tags = {(row[0], row[1]) for row in result.details["table"]}
    assert ("XMP", "xmp:CreatorTool") in tags and ("XMP", "(truncated)") in tags
    assert "Photoshop" in result.summary and "editor" in result.summary
    assert hashes(tmp_path) == before
