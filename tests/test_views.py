"""Forensic views: each on a case with a known answer, built here from small images."""

from __future__ import annotations

import hashlib
import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from ncl_core.views import (
    MAP_VIEWS,
    VIEWS,
    Evidence,
    clone,
    compute_view,
    compute_views,
    ela,
    jpeg,
    metadata,
    parse_names,
)

from imaging import pattern


def _jpeg(array: np.ndarray, quality: int, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _box(shape: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _textured(height: int, width: int, seed: int) -> np.ndarray:
    """Blobs of colour at several scales plus noise: plenty of keypoints, no repeats."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 6, width // 6, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


# -- ELA -----------------------------------------------------------------------------------------
def test_ela_lights_up_a_region_pasted_without_compression_into_a_compressed_host():
    host = _decode(_jpeg(pattern(192, 256, seed=3, noise=10), 75)).copy()
    host[64:128, 96:160] = pattern(64, 64, seed=9, noise=10)  # never compressed
    pasted = _box(host.shape[:2], 64, 128, 96, 160)

    result = compute_view("ela", Evidence(host))

    assert result.applicable and result.map.shape == host.shape[:2]
    assert result.map[pasted].mean() > 0.6
    assert result.map[~pasted].mean() < 0.2
    # No file: the host's JPEG past (quality 75) is found in its pixels and re-saved at.
    assert result.details["quality"] == 75 and "estimated" in result.summary


def _pixel_auc(values: np.ndarray, truth: np.ndarray) -> float:
    """Pixel AUC: the chance that a pasted pixel outranks an authentic one (ties: half)."""
    pos = truth.ravel()
    _, inverse, counts = np.unique(values.ravel(), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_ela_finds_the_jpeg_past_of_a_lossless_file_and_the_quality_of_a_jpeg():
    # A lossless file whose host was JPEG-compressed at 75, an uncompressed region pasted in:
    # at a fixed 90 the host is re-quantised too; at its own 75 it is left almost unchanged.
    host = _decode(_jpeg(_textured(256, 256, seed=5), 75)).copy()
    host[96:160, 64:160] = _textured(64, 96, seed=6)
    pasted = _box(host.shape[:2], 96, 160, 64, 160)
    png = Evidence(host, _png(host))
    auto = compute_view("ela", png)
    assert auto.details["quality"] == 75 and auto.details["quality_source"] == ela.HOW_HISTORY
    at_90 = compute_view("ela", png, quality=90)
    assert at_90.details["quality_source"] == ela.HOW_CHOSEN
    assert _pixel_auc(auto.map, pasted) >= max(0.95, _pixel_auc(at_90.map, pasted))
    assert ela.jpeg_history(np.full((64, 64, 3), 128, np.uint8))[0] is None  # flat: no past

    # A JPEG file: its own quality, from its quantisation tables.
    data = _jpeg(host, 82)
    from_file = compute_view("ela", Evidence(_decode(data), data))
    assert from_file.details["quality"] == 82 and "quantisation tables" in from_file.summary
    # An image never compressed: the default quality, said so.
    clean = compute_view("ela", Evidence(_textured(128, 128, seed=7)))
    assert clean.details["quality"] == ela.DEFAULT_QUALITY and "no JPEG history" in clean.summary
    with pytest.raises(ValueError, match="1..100"):
        ela.compute(Evidence(host), quality=0)


def test_ela_of_a_compressed_image_left_alone_has_no_bright_region():
    host = _decode(_jpeg(pattern(192, 256, seed=3, noise=10), 90))
    result = compute_view("ela", Evidence(host))
    blocks = result.map.reshape(6, 32, 8, 32).mean(axis=(1, 3))
    assert blocks.max() < 0.3  # the pasted region above averages over 0.6
    assert result.map.mean() < 0.15


def test_ela_says_a_tiny_typical_error_as_such_and_the_level_it_counts_from():
    # Re-saved at its own quality, most blocks of a JPEG come back unchanged.
    data = _jpeg(pattern(128, 128, seed=2, noise=2), 90)
    result = compute_view("ela", Evidence(_decode(data), data))
    assert result.details["median_error"] < 0.05
    assert "typical error under 0.1 grey levels" in result.summary
    assert "typical error 0.0" not in result.summary
    assert "errs by 1 grey level or more" in result.summary  # not "3× the typical level"
    assert "full brightness at 6.0 grey levels" in result.summary


# -- noise ---------------------------------------------------------------------------------------
def test_noise_map_lights_up_a_region_with_added_noise_and_flags_it():
    rng = np.random.default_rng(1)
    image = pattern(256, 256, seed=4, noise=2).astype(np.float32)
    image[96:160, 64:160] += rng.normal(0, 12, (64, 96, 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    noisy = _box(image.shape[:2], 96, 160, 64, 160)

    result = compute_view("noise", Evidence(image), method="level")

    assert result.map[noisy].mean() > 0.9
    assert result.map[~noisy].mean() < 0.3
    assert result.details["n_noisier"] == 6  # exactly the 2 x 3 blocks of 32 px
    assert result.details["n_smoother"] == 0
    assert result.details["outlier_box"] == [64, 96, 160, 160]
    assert "noisier" in result.summary
    # The default map, the windows' distance from the image's own noise features, ranks the
    # noisier region above the rest without being told what noise is.
    features = compute_view("noise", Evidence(image))
    assert features.details["map"] == "features" and "noise features" in features.summary
    assert features.map.shape == image.shape[:2] and _pixel_auc(features.map, noisy) > 0.75


def test_noise_of_evenly_noisy_image_flags_nothing():
    result = compute_view("noise", Evidence(pattern(256, 256, seed=5, noise=6)), method="level")
    assert result.details["n_noisier"] == result.details["n_smoother"] == 0
    # The scale is at least twice the median: an even level sits at about half brightness.
    assert result.map.max() <= 0.6


# -- JPEG ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("quality", [35, 75, 95])
def test_jpeg_tables_of_libjpeg_give_its_exact_quality_and_family(quality):
    data = _jpeg(pattern(64, 64, seed=1), quality)
    result = compute_view("jpeg", Evidence.from_bytes(data, "x.jpg"))
    assert result.details["quality"] == quality
    assert result.details["tables_exact_ijg"] is True
    assert result.details["encoder"].startswith("IJG libjpeg")
    assert result.details["tables"]["0"] == jpeg.ijg_table(quality).tolist()


def test_jpeg_custom_tables_get_a_nearest_quality_and_no_encoder_name():
    luma = (jpeg.ijg_table(80) + np.arange(64).reshape(8, 8) % 3).clip(1, 255)
    tables = [luma.reshape(-1).tolist(), jpeg.ijg_table(80, chroma=True).reshape(-1).tolist()]
    buf = io.BytesIO()
    Image.fromarray(pattern(64, 64, seed=1)).save(buf, "JPEG", qtables=tables)
    data = buf.getvalue()
    result = compute_view("jpeg", Evidence.from_bytes(data, "x.jpg"))
    assert result.details["tables_exact_ijg"] is False
    assert abs(result.details["quality"] - 80) <= 3
    assert result.details["encoder"].startswith("not identified")


def test_jpeg_ghost_shows_a_double_compressed_region():
    base = pattern(256, 256, seed=5, noise=10)
    earlier = _decode(_jpeg(base, 60))  # this region was saved at quality 60 before
    composite = base.copy()
    composite[64:160, 96:192] = earlier[64:160, 96:192]  # on the 8 px grid
    region = _box(base.shape[:2], 64, 160, 96, 192)

    result = compute_view("jpeg", Evidence.from_bytes(_jpeg(composite, 90), "c.jpg"))

    assert result.details["quality"] == 90
    assert result.details["ghost_quality"] == 60
    assert result.map[region].mean() > 0.6
    assert result.map[~region].mean() < 0.1
    single = compute_view("jpeg", Evidence.from_bytes(_jpeg(base, 90), "b.jpg"))
    assert single.map.mean() < 0.1 and single.details["ghost_fraction"] < 0.01


# -- clone ---------------------------------------------------------------------------------------
def test_clone_map_marks_a_copied_textured_block_and_its_source():
    image = _textured(256, 256, seed=1)
    image[150:214, 160:224] = image[30:94, 20:84]
    source = _box(image.shape[:2], 30, 94, 20, 84)
    copy = _box(image.shape[:2], 150, 214, 160, 224)

    result = compute_view("clone", Evidence(image))

    marked = result.map > 0.5
    assert marked[source].mean() > 0.7 and marked[copy].mean() > 0.7
    assert marked[~(source | copy)].mean() < 0.01
    found = result.details["clones"]
    assert found[0]["method"] == "keypoints"
    assert found[0]["shift"] == pytest.approx([140, 120], abs=1.5)


def test_clone_block_matching_finds_a_low_texture_copy_where_keypoints_are_scarce():
    image = pattern(256, 256, seed=4, noise=3)  # a gentle gradient and fine noise
    image[160:220, 150:230] = image[20:80, 30:110]
    source = _box(image.shape[:2], 20, 80, 30, 110)
    copy = _box(image.shape[:2], 160, 220, 150, 230)

    result = compute_view("clone", Evidence(image))

    assert result.details["n_keypoints"] < 20
    assert [c["method"] for c in result.details["clones"]] == ["blocks"]
    assert result.details["clones"][0]["shift"] == [120, 140]
    marked = result.map > 0.5
    assert marked[source].mean() > 0.6 and marked[copy].mean() > 0.6
    assert marked[~(source | copy)].mean() < 0.05


@pytest.mark.parametrize("image", [_textured(256, 256, seed=5), pattern(256, 256, seed=7, noise=3)])
def test_clone_finds_nothing_in_an_image_without_copies(image):
    result = compute_view("clone", Evidence(image))
    assert result.details["n_clones"] == 0
    assert result.map.max() == 0.0
    assert result.summary.startswith("no copied region")


def test_clustering_recovers_the_shift_of_pairs_that_share_one_transform():
    n = clone.MIN_INLIERS + 2
    src = np.array([[5.0 + 3 * i, 1.0 + 5 * (i % 3)] for i in range(n)], np.float32)
    dst = src + np.float32([60, 20])
    groups = clone.cluster_pairs(src, dst, min_distance=10)
    assert len(groups) == 1
    assert groups[0][0][:, 2] == pytest.approx([60, 20], abs=1e-3)
    assert clone.cluster_pairs(src[:3], dst[:3], min_distance=10) == []  # too few to trust


# -- metadata ------------------------------------------------------------------------------------
def _exif_block(software: str, thumbnail: bytes | None = None) -> bytes:
    """A little-endian EXIF block: IFD0 with Software, and IFD1 with a JPEG thumbnail."""
    text = software.encode() + b"\x00"
    ifd1_at = 8 + 2 + 12 + 4
    data_at = ifd1_at + (2 + 24 + 4 if thumbnail else 0)
    thumb_at = data_at + len(text) + len(text) % 2
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x0131, 2, len(text), data_at)
    tiff += struct.pack("<I", ifd1_at if thumbnail else 0)
    if thumbnail:
        tiff += struct.pack("<H", 2)
        tiff += struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
        tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))
        tiff += struct.pack("<I", 0)
    tiff += text + b"\x00" * (len(text) % 2) + (thumbnail or b"")
    return b"Exif\x00\x00" + tiff


def _with_iptc(jpeg_bytes: bytes, datasets: dict[tuple[int, int], bytes]) -> bytes:
    """Insert an APP13 Photoshop block holding IPTC datasets right after the SOI marker."""
    iptc = b"".join(
        b"\x1c" + bytes(key) + struct.pack(">H", len(value)) + value
        for key, value in datasets.items()
    )
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc))
    resource += iptc + b"\x00" * (len(iptc) % 2)
    payload = b"Photoshop 3.0\x00" + resource
    return (
        jpeg_bytes[:2]
        + b"\xff\xed"
        + struct.pack(">H", len(payload) + 2)
        + payload
        + jpeg_bytes[2:]
    )


_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Photoshop 25.0" '
    b'xmp:CreateDate="2021-03-04T10:11:12" xmp:ModifyDate="2022-01-01T08:00:00"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def test_metadata_reads_back_known_exif_xmp_and_iptc_values():
    data = _jpeg(pattern(64, 96, seed=1), 90, exif=_exif_block("TestCam 1.2"), xmp=_XMP)
    data = _with_iptc(data, {(2, 80): b"A. Photographer", (2, 25): b"harbour"})

    result = compute_view("metadata", Evidence.from_bytes(data, "m.jpg"))

    table = {(g, t): v for g, t, v in result.details["table"]}
    assert table[("EXIF", "Software")] == "TestCam 1.2"
    assert table[("XMP", "xmp:CreatorTool")] == "Adobe Photoshop 25.0"
    assert table[("IPTC", "By-line")] == "A. Photographer"
    assert table[("IPTC", "Keywords")] == "harbour"
    assert result.details["software"] == ["TestCam 1.2", "Adobe Photoshop 25.0"]
    assert result.details["editors"] == ["Adobe Photoshop 25.0"]
    assert result.details["dates"]["xmp:CreateDate"] == "2021-03-04T10:11:12"
    assert result.details["modified_after_capture"] is True
    assert result.map is None and "modified after capture" in result.summary


def test_metadata_thumbnail_matches_and_then_differs_after_an_edit():
    image = pattern(120, 160, seed=1, noise=6)
    thumb = _jpeg(np.asarray(Image.fromarray(image).resize((80, 60))), 85)
    same = _jpeg(image, 90, exif=_exif_block("Cam", thumb))
    edited = image.copy()
    edited[30:90, 40:120] = 255 - edited[30:90, 40:120]
    changed = _jpeg(edited, 90, exif=_exif_block("Cam", thumb))

    first = compute_view("metadata", Evidence.from_bytes(same, "a.jpg"))
    second = compute_view("metadata", Evidence.from_bytes(changed, "b.jpg"))

    assert first.details["thumbnail"]["status"] == "matches"
    assert second.details["thumbnail"]["status"] == "differs"
    assert "thumbnail differs" in second.summary


def test_metadata_hides_gps_unless_asked():
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 24.0)
    data = _jpeg(pattern(64, 64, seed=2), 90, exif=exif.tobytes())

    hidden = compute_view("metadata", Evidence.from_bytes(data, "g.jpg"))
    shown = compute_view("metadata", Evidence.from_bytes(data, "g.jpg"), show_gps=True)

    gps_hidden = [v for g, _, v in hidden.details["table"] if g == "GPS"]
    gps_shown = {t: v for g, t, v in shown.details["table"] if g == "GPS"}
    assert gps_hidden and all(v == metadata.GPS_HIDDEN for v in gps_hidden)
    assert gps_shown["GPSLatitudeRef"] == "N"
    assert gps_shown["GPSLatitude"] == "48, 51, 24"
    assert hidden.details["has_gps"] is True and "GPS present" in hidden.summary


def test_xmp_with_a_dtd_is_not_parsed():
    packet = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>'
    entries = metadata.xmp_entries(packet)
    assert [(e.tag, e.value) for e in entries] == [
        ("(not parsed)", "the XMP packet declares a DTD, which XMP never does")
    ]


# -- bad input -----------------------------------------------------------------------------------
def test_inputs_a_view_cannot_judge_give_not_applicable_never_an_error():
    png = Evidence.from_bytes(_png(pattern(96, 96, seed=1)), "p.png")
    results = compute_views(VIEWS, png)
    assert not results["jpeg"].applicable
    assert "not a JPEG file (PNG)" in results["jpeg"].summary
    assert not results["metadata"].applicable
    assert "no EXIF, XMP or IPTC" in results["metadata"].summary
    for name in ("ela", "noise", "clone"):
        assert results[name].applicable

    tiny = Evidence.from_bytes(_jpeg(pattern(12, 12, seed=1), 90), "t.jpg")
    flat = Evidence.from_bytes(_jpeg(np.full((96, 96, 3), 120, np.uint8), 90), "f.jpg")
    for evidence, reason in ((tiny, "too small"), (flat, "flat image")):
        for name, result in compute_views(MAP_VIEWS, evidence).items():
            assert not result.applicable, name
            assert result.map is None
            assert result.summary.startswith("not applicable") and reason in result.summary

    bare = compute_views(("jpeg", "metadata"), Evidence(pattern(64, 64, seed=1)))
    assert all("no file" in r.summary for r in bare.values())


def test_a_view_that_fails_is_reported_and_the_others_still_run(monkeypatch):
    def boom(evidence, **params):
        raise RuntimeError("broken")

    monkeypatch.setitem(
        VIEWS, "ela", VIEWS["ela"].__class__(**{**VIEWS["ela"].__dict__, "compute": boom})
    )
    results = compute_views(("ela", "noise"), Evidence(pattern(96, 96, seed=1)))
    assert not results["ela"].applicable and "RuntimeError: broken" in results["ela"].summary
    assert results["noise"].applicable


@pytest.mark.parametrize("name", MAP_VIEWS)
def test_every_map_is_float32_in_0_1_the_size_of_the_image(name):
    evidence = Evidence.from_bytes(_jpeg(pattern(100, 140, seed=2), 85), "x.jpg")
    result = compute_view(name, evidence)
    assert result.applicable
    assert result.map.dtype == np.float32 and result.map.shape == (100, 140)
    assert float(result.map.min()) >= 0.0 and float(result.map.max()) <= 1.0
    gray = result.map_u8()
    assert gray.dtype == np.uint8 and gray.shape == (100, 140)
    record = result.record()
    assert record["summary"] == result.summary and "outliers" not in record["details"]


def test_parse_names():
    assert parse_names("ela, noise,ela") == ("ela", "noise")
    assert parse_names("all") == tuple(VIEWS)
    with pytest.raises(ValueError, match="unknown view 'x'"):
        parse_names("ela,x")


def test_evidence_from_path_reads_and_hashes_the_file_without_touching_it(tmp_path):
    path = tmp_path / "e.jpg"
    path.write_bytes(_jpeg(pattern(64, 64, seed=3), 90))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    evidence = Evidence.from_path(path)
    assert evidence.sha256 == hashlib.sha256(before[0]).hexdigest()
    assert evidence.image.shape == (64, 64, 3)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jpg"]


def test_noise_is_not_judged_where_most_of_the_image_holds_no_noise():
    image = np.full((256, 256, 3), 120, np.uint8)
    image[:64, :64] = pattern(64, 64, seed=1, noise=8)  # the only noisy part
    result = compute_view("noise", Evidence(image))
    assert result.details["judged"] is False
    assert result.details["n_noisier"] == result.details["n_smoother"] == 0
    assert "not judged" in result.summary
    assert "the map shows the noise level itself" in result.summary  # as it draws
    assert result.map[:64, :64].mean() > 0.9  # the map still shows where the noise is
