"""The double-quantisation view: a region compressed once in a doubly compressed JPEG."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from ncl_core.evidence.image import Evidence
from ncl_core.views import compute_view
from ncl_core.views.dq import ZIGZAG, block_dct


def _textured(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 255, (height // 8, width // 8, 3)), (width, height))
    return np.clip(base + rng.normal(0, 14, (height, width, 3)), 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()


def _forged(orientation: int = 1) -> tuple[bytes, np.ndarray]:
    original = _textured(256, 320, seed=4)
    host = _decode(_jpeg(original, 60))  # saved once at 60 ...
    host[64:160, 96:224] = original[64:160, 96:224]  # ... a region pasted in uncompressed ...
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    return _jpeg(host, 85, exif=exif.tobytes()), host  # ... and all saved again at 85


def test_zigzag_starts_like_the_standard():
    assert ZIGZAG[:6] == [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2)]


def test_coefficients_from_the_decoded_luma_are_the_stored_integers():
    data = _jpeg(_textured(64, 64, seed=1), 75)
    with Image.open(io.BytesIO(data)) as im:
        im.draft("L", im.size)
        luma = np.asarray(im.convert("L"), np.float32)
        table = np.asarray(im.quantization[0]).reshape(8, 8)  # Pillow: natural order
    ratio = block_dct(luma) / table
    assert float(np.abs(ratio - np.rint(ratio)).max()) < 0.3


def test_dq_lights_up_a_region_compressed_once_and_says_the_first_step():
    data, _ = _forged()
    result = compute_view("dq", Evidence.from_bytes(data, "f.jpg"))
    assert result.applicable and result.details["double_compressed"]
    m = result.map
    inside, outside = (
        m[72:152, 104:216].mean(),
        np.concatenate([m[:48].ravel(), m[176:].ravel()]).mean(),
    )
    assert inside > 0.7 and outside < 0.3, (inside, outside)
    assert "aligned double JPEG compression" in result.summary


def test_dq_turns_with_the_exif_orientation():
    data, _ = _forged(orientation=6)  # shown turned 90 degrees clockwise
    evidence = Evidence.from_bytes(data, "f.jpg")
    result = compute_view("dq", evidence)
    assert result.map.shape == evidence.image.shape[:2] == (320, 256)
    turned = np.rot90(result.map, 1)  # back to the file's rows and columns
    assert turned[72:152, 104:216].mean() > 0.7


def test_dq_of_a_jpeg_compressed_once_is_blank_and_a_png_is_not_judged():
    single = compute_view(
        "dq", Evidence.from_bytes(_jpeg(_textured(256, 320, seed=4), 85), "s.jpg")
    )
    assert single.applicable and float(single.map.max()) < 0.5
    buf = io.BytesIO()
    Image.fromarray(_textured(96, 96, seed=2)).save(buf, "PNG")
    png = compute_view("dq", Evidence.from_bytes(buf.getvalue(), "p.png"))
    assert not png.applicable and "not a JPEG file" in png.summary


def test_dq_of_a_large_file_is_computed_on_a_bounded_window(monkeypatch):
    import ncl_core.views.dq as dq

    data, _ = _forged()
    full = compute_view("dq", Evidence.from_bytes(data, "f.jpg"))
    monkeypatch.setattr(dq, "MAX_PIXELS", 160 * 200)  # the file is 256 x 320
    bounded = compute_view("dq", Evidence.from_bytes(data, "f.jpg"))
    x, y, w, h = bounded.details["window_xywh"]
    assert w * h <= 160 * 200 and x % 8 == y % 8 == 0
    assert "computed on the centred" in bounded.summary
    m = bounded.map
    assert m[:y].max() == 0 and m[y + h :].max() == 0  # outside the window: blank
    inner = m[y : y + h, x : x + w]
    assert inner.mean() > 0 and full.map.shape == m.shape
