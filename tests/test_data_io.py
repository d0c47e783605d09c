"""read_image / read_image_info / read_mask on real small files of every case the readers must handle."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from ncl_core.data.io import (
    _PNG_SIGNATURE,
    ImageReadError,
    MaskError,
    decode_image,
    read_image,
    read_image_bytes,
    read_image_info,
    read_mask,
)

from imaging import encoded, pattern, png_with_header_only, save, write_mask


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp", ".ppm"])
def test_lossless_formats_round_trip_exactly(tmp_path, suffix):
    img = pattern(64, 72)
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    path = save(tmp_path / f"a{suffix}", img, **kwargs)
    out, warnings = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (64, 72, 3)
    np.testing.assert_array_equal(out, img)
    assert warnings == []


def test_jpeg_reads_close_to_original_and_reports_format(tmp_path):
    img = pattern(64, 80, noise=2)
    path = save(tmp_path / "a.jpg", img, quality=95)
    out, warnings = read_image(path)
    assert out.shape == img.shape and warnings == []
    assert np.abs(out.astype(int) - img).mean() < 6
    assert read_image_info(path).format == "JPEG"


def test_unicode_path_and_path_string(tmp_path):
    img = pattern(16, 16)
    path = save(tmp_path / "Ünïcødé 証拠 ✓" / "bild.png", img)
    np.testing.assert_array_equal(read_image(str(path))[0], img)


def test_reading_never_modifies_the_file_or_its_folder(tmp_path):
    path = save(tmp_path / "evidence.jpg", pattern(), quality=90)
    before = (
        path.read_bytes(),
        path.stat().st_mtime_ns,
        sorted(p.name for p in tmp_path.iterdir()),
    )
    read_image(path)
    read_image_info(path)
    after = (path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in tmp_path.iterdir()))
    assert before == after


def test_zero_bytes_names_file_and_reason(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg.*empty \(0 bytes\)"):
        read_image(path)
    with pytest.raises(ImageReadError, match="empty"):
        read_image_bytes(b"", name="clip")


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nothere\.png.*not found"):
        read_image(tmp_path / "nothere.png")


def test_truncated_jpeg(tmp_path):
    data = io.BytesIO()
    Image.fromarray(pattern(64, 64)).save(data, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.jpg.*truncated"):
        read_image(path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[: len(d) // 2] + b"\xff\xd9",  # cut short, closed with an end marker
        lambda d: d[: len(d) // 3] + bytes(400) + d[len(d) // 3 + 400 :],  # a run of zeros
    ],
    ids=["cut_and_closed", "run_of_zeros"],
)
def test_damaged_jpeg_data_that_decodes_anyway_is_reported(tmp_path, damage):
    stored = pattern(120, 160, noise=8)
    data = encoded(stored, "JPEG", quality=90)
    path = tmp_path / "recovered.jpg"
    path.write_bytes(damage(data))
    out, warnings = read_image(path)  # Pillow decodes it without a word
    assert out.shape == (120, 160, 3)
    filled = np.abs(out.astype(int) - read_image_bytes(data)[0].astype(int)).max(axis=2) > 40
    assert filled.mean() > 0.05  # the warning is about pixels that really changed
    assert len(warnings) == 1
    assert warnings[0].startswith("the JPEG data is damaged (libjpeg: Corrupt JPEG data")
    assert "re-copy the original file" in warnings[0]
    # Training and evaluation data drop the warnings, and skip the second decode.
    assert read_image(path, check_damage=False)[1] == []


def test_a_libjpeg_warning_about_the_header_is_not_reported_as_damage(tmp_path):
    data = bytearray(encoded(pattern(80, 90, noise=8), "JPEG", quality=90))
    version = data.find(b"JFIF\x00") + 5
    data[version] = 2  # libjpeg: "Warning: unknown JFIF revision number 2.01"; pixels intact
    path = tmp_path / "odd_header.jpg"
    path.write_bytes(bytes(data))
    assert read_image(path)[1] == []


@pytest.mark.parametrize(
    "options",
    [{}, {"progressive": True}, {"subsampling": 0}],
    ids=["baseline", "progressive", "444"],
)
def test_intact_jpegs_carry_no_damage_warning(tmp_path, options):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encoded(pattern(120, 160, noise=8), "JPEG", quality=90, **options))
    assert read_image(path)[1] == []
    cmyk = tmp_path / "print.jpg"
    Image.fromarray(pattern(80, 80)).convert("CMYK").save(cmyk, **options)
    assert read_image(cmyk)[1] == ["CMYK image converted to RGB (no colour profile applied)"]


def test_damaged_png_pixel_data_is_an_error_not_half_an_image(tmp_path):
    data = bytearray(encoded(pattern(200, 240, noise=10), "PNG"))
    third = len(data) // 3
    data[third : third + 200] = bytes(200)  # inside the IDAT stream
    path = tmp_path / "scan.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"scan\.png: the PNG data cannot be decoded"):
        read_image(path)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, the whole chunk) for each chunk of a PNG."""
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append((data[pos + 4 : pos + 8], data[pos : pos + 12 + length]))
        pos += 12 + length
    return chunks


@pytest.mark.parametrize("after_pixels", [False, True], ids=["before_idat", "after_idat"])
def test_a_png_exif_chunk_counts_before_or_after_the_pixels(tmp_path, after_pixels):
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    chunks = _png_chunks(encoded(pattern(80, 120, noise=2), "PNG", exif=exif))
    if after_pixels:  # eXIf may sit anywhere before IEND; Pillow writes it before IDAT
        exif_chunk = next(c for c in chunks if c[0] == b"eXIf")
        chunks = [c for c in chunks if c[0] != b"eXIf"]
        chunks.insert(len(chunks) - 1, exif_chunk)
    data = _PNG_SIGNATURE + b"".join(whole for _, whole in chunks)
    pixels, warnings, info = decode_image(data, "phone.png")
    assert pixels.shape == (120, 80, 3)
    assert warnings == ["image was EXIF-rotated (orientation 6)"]
    assert (info.width, info.height, info.orientation, info.exif) == (
        80,
        120,
        6,
        {"make": "TestCam"},
    )


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 10)
    with pytest.raises(ImageReadError, match=r"notes\.jpg.*not an image"):
        read_image(path)


def test_formats_outside_the_allow_list_are_refused(tmp_path):
    # Pillow could open these (EPS would even start Ghostscript); evidence must not reach them.
    path = tmp_path / "pic.ico"
    Image.fromarray(pattern(16, 16)).save(path, format="ICO")
    with pytest.raises(ImageReadError, match=r"pic\.ico.*cannot read"):
        read_image(path)


def test_header_claiming_50000_px_square_is_refused_before_decoding(tmp_path):
    path = png_with_header_only(tmp_path / "bomb.png", 50_000, 50_000)
    with pytest.raises(ImageReadError, match=r"bomb\.png.*refused"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"bomb\.png.*refused"):
        read_image_info(path)


def test_own_pixel_cap_checked_from_header(tmp_path):
    # 144 MP: below Pillow's own bomb limit, above our default 120 MP cap. The file holds no
    # real pixel data, so decoding would have failed with "truncated" instead.
    path = png_with_header_only(tmp_path / "big.png", 12_000, 12_000)
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageReadError, match=r"big\.png.*144 MP exceeds the limit of 120 MP"),
    ):
        read_image(path)
    small = save(tmp_path / "small.png", pattern(100, 100))
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(small, max_pixels=9_999)
    assert read_image(small, max_pixels=10_000)[0].shape == (100, 100, 3)


def test_16_bit_grey_png_is_scaled_to_8_bit(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16).repeat(3, axis=0)
    path = tmp_path / "g16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # the file really is 16-bit
    out, warnings = read_image(path)
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()
    assert any("16-bit" in w for w in warnings)


def test_16_bit_rgb_png(tmp_path):
    import cv2

    rgb16 = (pattern(8, 8).astype(np.uint16) * 257) + 3
    path = tmp_path / "c16.png"
    cv2.imwrite(str(path), rgb16[:, :, ::-1])  # Pillow cannot write 48-bit PNG; OpenCV can
    out, warnings = read_image(path)
    np.testing.assert_array_equal(out, (rgb16 >> 8).astype(np.uint8))
    assert any("16-bit" in w for w in warnings)


def _tiff(width: int, height: int, photometric: int, samples: int, extra: int = 0) -> bytes:
    """A minimal uncompressed 8-bit little-endian TIFF, one strip of mid-grey samples."""
    strip = bytes([128]) * (width * height * samples)
    tags = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, 1, 8),  # one value stands for every sample here: Pillow reads it so
        (259, 3, 1, 1),
        (262, 3, 1, photometric),
        (273, 4, 1, 8),  # the strip follows the header
        (277, 3, 1, samples),
        (278, 3, 1, height),
        (279, 4, 1, len(strip)),
        (284, 3, 1, 1),
    ]
    if extra:
        tags.append((338, 3, 1, extra))  # 2: unassociated alpha
    entries = b"".join(struct.pack("<HHII", *tag) for tag in tags)
    directory = struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8 + len(strip)) + strip + directory


def test_a_tiff_in_a_layout_no_decoder_reads_says_so_and_what_to_do(tmp_path):
    (tmp_path / "rgb.tif").write_bytes(_tiff(70, 66, photometric=2, samples=3))
    assert read_image(tmp_path / "rgb.tif")[0].shape == (66, 70, 3)  # the helper is sound
    path = tmp_path / "print.tif"
    path.write_bytes(_tiff(70, 66, photometric=5, samples=5, extra=2))  # CMYK and alpha
    with pytest.raises(ImageReadError, match=r"print\.tif: a TIFF whose sample layout .* RGB TIFF"):
        read_image(path)


def test_a_32_bit_integer_tiff_is_reported_as_32_bit(tmp_path):
    values = np.arange(80 * 90, dtype=np.int32).reshape(80, 90) * 1000
    path = tmp_path / "sensor.tif"
    Image.fromarray(values).save(path)
    out, warnings = read_image(path)
    assert out.shape == (80, 90, 3) and out[..., 0].max() > out[..., 0].min()
    assert warnings == ["32-bit image reduced to 8 bits per channel"]


def _bmp_565(pixels: np.ndarray) -> bytes:
    """A 16-bit BMP (5-6-5 bits packed in each pixel, BI_BITFIELDS), bottom-up rows."""
    height, width = pixels.shape[:2]
    p = pixels.astype(np.uint16)
    packed = ((p[..., 0] >> 3) << 11) | ((p[..., 1] >> 2) << 5) | (p[..., 2] >> 3)
    rows = packed[::-1].astype("<u2").tobytes()  # width is even: rows need no padding
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 3, len(rows), 2835, 2835, 0, 0)
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    offset = 14 + len(header) + len(masks)
    return struct.pack("<2sIHHI", b"BM", offset + len(rows), 0, 0, offset) + header + masks + rows


def test_a_packed_16_bit_bmp_is_not_called_wide(tmp_path):
    stored = pattern(70, 80)
    path = tmp_path / "old.bmp"
    path.write_bytes(_bmp_565(stored))
    out, warnings = read_image(path)
    assert np.abs(out.astype(int) - stored.astype(int)).max() <= 8  # 5 and 6 bits a channel
    assert warnings == []


def test_cmyk_jpeg_converted_with_warning(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:, :8, 1] = 255  # magenta
    cmyk[:, 8:, 0] = 255  # cyan
    path = tmp_path / "print.jpg"
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=100)
    out, warnings = read_image(path)
    assert np.abs(out[4, 2].astype(int) - [255, 0, 255]).max() < 12
    assert np.abs(out[4, 12].astype(int) - [0, 255, 255]).max() < 12
    assert any("CMYK" in w for w in warnings)


def test_palette_png_with_transparency_composited_on_white(tmp_path):
    index = np.zeros((10, 10), np.uint8)
    index[:, 5:] = 1
    im = Image.fromarray(index, mode="P")
    im.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    path = tmp_path / "pal.png"
    im.save(path, transparency=0)
    out, warnings = read_image(path)
    assert (out[:, :5] == 255).all()  # transparent black became white
    assert (out[:, 5:] == [200, 10, 20]).all()
    assert any("transparency (50.0% of pixels)" in w for w in warnings)


def test_transparency_is_named_only_where_a_pixel_is_transparent(tmp_path):
    rgba = np.zeros((1000, 1000, 4), np.uint8)
    rgba[..., 3] = 255  # an alpha channel, fully opaque: nothing to say
    _, warnings = read_image(save(tmp_path / "opaque.png", rgba))
    assert not any("transparency" in w for w in warnings)
    rgba[0, 0, 3] = 0  # one pixel in a million: not "0.0%"
    _, warnings = read_image(save(tmp_path / "one.png", rgba))
    assert any("transparency (<0.1% of pixels)" in w for w in warnings)
    rgba[:1, :, 3] = 0  # 0.1 %
    _, warnings = read_image(save(tmp_path / "row.png", rgba))
    assert any("transparency (0.1% of pixels)" in w for w in warnings)


def test_rgba_partial_alpha_composited(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 100
    rgba[..., 3] = 128
    out, _ = read_image(save(tmp_path / "a.png", rgba))
    expected = round(100 * 128 / 255 + 255 * (1 - 128 / 255))
    assert (out[..., 0] == expected).all() and (out[..., 1] == round(255 * (1 - 128 / 255))).all()


def test_opaque_alpha_channel_is_dropped_silently(tmp_path):
    rgba = np.dstack([pattern(64, 64), np.full((64, 64), 255, np.uint8)])
    out, warnings = read_image(save(tmp_path / "a.png", rgba))
    np.testing.assert_array_equal(out, rgba[..., :3])
    assert warnings == []


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("a.jpg", "PNG", "ends in .jpg but the content is PNG"),
        ("a.PNG", "JPEG", "ends in .png but the content is JPEG"),
        ("a.tif", "BMP", "ends in .tif but the content is BMP"),
        ("a.jpeg", "JPEG", None),
        ("a.tiff", "TIFF", None),
        ("evidence", "PNG", None),  # no extension promises nothing
        ("a.dat", "PNG", None),  # nor does one that is not an image's
    ],
)
def test_a_name_that_promises_another_format_is_reported(tmp_path, name, fmt, expected):
    img = pattern(64, 64)
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, fmt)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    out, warnings = read_image(path)
    assert out.shape == img.shape  # decoded by its content, whatever the name says
    if expected is None:
        assert warnings == []
    else:
        assert (
            len(warnings) == 1 and expected in warnings[0] and f"analyzed as {fmt}" in warnings[0]
        )


@pytest.mark.parametrize(("height", "width"), [(63, 200), (200, 40), (1, 1)])
def test_an_image_under_64_px_a_side_is_reported_with_its_size(tmp_path, height, width):
    _, warnings = read_image(save(tmp_path / "small.png", pattern(height, width)))
    assert len(warnings) == 1 and warnings[0].startswith(f"image is only {width} x {height} px")


def test_a_floating_point_image_is_reported(tmp_path):
    values = np.linspace(0.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    out, warnings = read_image(tmp_path / "f.tif")
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert warnings == ["floating-point image reduced to 8 bits per channel"]


def test_grey_and_bilevel_images_become_rgb(tmp_path):
    grey = pattern(8, 8)[..., 0]
    out, _ = read_image(save(tmp_path / "g.png", grey))
    np.testing.assert_array_equal(out, np.dstack([grey] * 3))
    bilevel = Image.fromarray(grey > 128).convert("1")
    bilevel.save(tmp_path / "b.png")
    out, _ = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out[..., 1], np.where(grey > 128, 255, 0))


def test_animated_gif_first_frame_with_warning(tmp_path):
    frames = [Image.new("RGB", (12, 10), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    out, warnings = read_image(path)
    assert out.shape == (10, 12, 3) and (out == [255, 0, 0]).all()
    assert any("3 frames" in w and "first" in w for w in warnings)


def test_multipage_tiff_first_page_with_warning(tmp_path):
    first, second = pattern(20, 30, seed=1), pattern(20, 30, seed=2)
    path = tmp_path / "scan.tif"
    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(second)])
    out, warnings = read_image(path)
    np.testing.assert_array_equal(out, first)
    assert any("2 pages" in w for w in warnings)
    assert read_image_info(path).n_frames == 2


def _ycbcr_tiff(path, pixels: np.ndarray, orientation: int | None = None) -> None:
    """An uncompressed YCbCr TIFF: valid (libtiff reads it), and Pillow cannot decode it."""
    tags = {0x0112: orientation} if orientation else {}
    Image.fromarray(pixels).convert("YCbCr").save(path, compression="raw", tiffinfo=tags)
    with Image.open(path) as im, pytest.raises(OSError):
        im.load()  # the case the fallback is for; if Pillow learns it, this test says so


def test_a_tiff_pillow_cannot_decode_is_read_by_libtiff(tmp_path):
    stored = pattern(80, 100, noise=2)
    path = tmp_path / "scan.tif"
    _ycbcr_tiff(path, stored)
    out, warnings = read_image(path)
    assert out.shape == (80, 100, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - stored.astype(int)).mean() < 3  # YCbCr rounding only
    assert warnings == []


def test_a_damaged_compressed_tiff_is_not_read_past_its_damage(tmp_path):
    # Pillow decodes LZW with libtiff and fails on the damage; libtiff's RGBA reader would
    # read on past it, so it is only asked where Pillow's own reader failed.
    data = bytearray(encoded(pattern(200, 240, noise=10), "TIFF", compression="tiff_lzw"))
    third = len(data) // 3
    data[third : third + 200] = bytes(200)
    path = tmp_path / "scan.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"scan\.tif: the TIFF data cannot be decoded"):
        read_image(path)


@pytest.mark.parametrize("decodable", [True, False], ids=["pillow", "libtiff"])
def test_a_rotated_tiff_is_turned_upright_once_and_reported(tmp_path, decodable):
    stored = pattern(80, 120, noise=2)
    path = tmp_path / "scan.tif"
    if decodable:
        Image.fromarray(stored).save(path, tiffinfo={0x0112: 6})
    else:
        _ycbcr_tiff(path, stored, orientation=6)
    out, warnings = read_image(path)
    assert out.shape == (120, 80, 3)
    clockwise, anticlockwise = np.rot90(stored, -1).astype(int), np.rot90(stored, 1).astype(int)
    assert np.abs(out - clockwise).mean() < 6 < np.abs(out - anticlockwise).mean()
    assert warnings == ["image was EXIF-rotated (orientation 6)"]
    info = read_image_info(path)  # the header's account of the same pixels
    assert (info.width, info.height, info.orientation) == (80, 120, 6)


def test_a_cut_tiff_that_pillow_cannot_decode_stays_an_error(tmp_path):
    path = tmp_path / "scan.tif"
    _ycbcr_tiff(path, pattern(40, 60, noise=2))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageReadError, match=r"scan\.tif: the TIFF data is truncated or corrupt"):
        read_image(path)


def test_exif_rotated_jpeg_is_turned_upright(tmp_path):
    stored = pattern(30, 50, noise=2)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"
    exif[0x0110] = "Model 1"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    out, warnings = read_image(path)
    assert out.shape == (50, 30, 3)
    clockwise, anticlockwise = np.rot90(stored, -1).astype(int), np.rot90(stored, 1).astype(int)
    assert np.abs(out - clockwise).mean() < 6 < np.abs(out - anticlockwise).mean()
    assert any("EXIF-rotated (orientation 6)" in w for w in warnings)
    info = read_image_info(path)
    assert (info.width, info.height, info.orientation) == (30, 50, 6)
    assert info.exif == {"make": "TestCam", "model": "Model 1"} and info.has_gps is False


def test_image_info_reads_gps_presence_and_capture_time(tmp_path):
    exif = Image.Exif()
    exif[0x0132] = "2020:01:01 00:00:00"
    exif.get_ifd(0x8769)[0x9003] = "2019:05:06 07:08:09"
    exif.get_ifd(0x8825)[1] = "N"
    path = tmp_path / "gps.jpg"
    Image.fromarray(pattern(8, 8)).save(path, exif=exif)
    info = read_image_info(path)
    assert info.has_gps is True
    assert info.exif["datetime"] == "2019:05:06 07:08:09"


def test_read_image_bytes_matches_file(tmp_path):
    path = save(tmp_path / "a.png", pattern(12, 12))
    np.testing.assert_array_equal(read_image_bytes(path.read_bytes())[0], read_image(path)[0])


# --- masks -------------------------------------------------------------------------------------


def test_mask_binarised_at_half_range_8_bit(tmp_path):
    values = np.array([[0, 127, 128, 255]], np.uint8)
    mask, warnings = read_mask(save(tmp_path / "m.png", values))
    assert mask.dtype == bool and mask.tolist() == [[False, False, True, True]]
    assert warnings == []


def test_mask_16_bit(tmp_path):
    values = np.array([[0, 32767, 32768, 65535, 255]], np.uint16)
    path = tmp_path / "m16.png"
    Image.fromarray(values).save(path)
    # 255 is dark in a 16-bit mask: the threshold follows the bit depth.
    assert read_mask(path)[0].tolist() == [[False, False, True, True, False]]


def test_mask_bilevel_rgb_and_rgba(tmp_path):
    gt = np.zeros((6, 6), bool)
    gt[1:4, 2:5] = True
    Image.fromarray(gt).convert("1").save(tmp_path / "b.png")
    assert (read_mask(tmp_path / "b.png")[0] == gt).all()
    rgb = np.dstack([gt * 255] * 3).astype(np.uint8)
    assert (read_mask(save(tmp_path / "c.png", rgb))[0] == gt).all()
    rgba = np.dstack([rgb, np.full((6, 6), 255, np.uint8)])
    assert (read_mask(save(tmp_path / "d.png", rgba))[0] == gt).all()


def test_columbia_edge_mask_green_region_is_tampered(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = [255, 0, 0]  # Columbia: red = region from the first camera
    rgb[:, 4:] = [0, 255, 0]  # green = spliced region
    mask, _ = read_mask(save(tmp_path / "x_edgemask.png", rgb))
    assert not mask[:, :4].any() and mask[:, 4:].all()


def test_mask_size_mismatch_names_both_files(tmp_path):
    path = write_mask(tmp_path / "m_gt.png", np.ones((10, 20), bool))
    with pytest.raises(MaskError, match=r"m_gt\.png.*20x10.*img\.jpg is 40x30"):
        read_mask(path, expected_hw=(30, 40), image_path=tmp_path / "img.jpg")
    assert issubclass(MaskError, ImageReadError)


def test_mask_resize_by_option(tmp_path):
    gt = np.zeros((10, 20), bool)
    gt[:, 10:] = True
    mask, warnings = read_mask(write_mask(tmp_path / "m.png", gt), (30, 40), resize=True)
    assert mask.shape == (30, 40) and not mask[:, :20].any() and mask[:, 20:].all()
    assert any("resized from 20x10 to 40x30" in w for w in warnings)


def test_mask_unreadable_is_mask_error(tmp_path):
    path = tmp_path / "m.png"
    path.write_text("nope")
    with pytest.raises(MaskError, match=r"m\.png"):
        read_mask(path)
