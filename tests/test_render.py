"""Colour maps, heatmaps, overlays and image files (ncl_core.inference.render)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from ncl_core.inference.render import (
    COLORMAPS,
    colorbar_rgb,
    colormap_lut,
    encode_png,
    fit_within,
    heatmap_rgb,
    mask_outline,
    mask_png,
    overlay_rgb,
    save_heatmap_png,
    save_jpeg,
    save_png,
)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize("name", COLORMAPS)
def test_colormap_tables(name: str) -> None:
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    lut[:] = 0  # a copy: the shared table must not change
    assert colormap_lut(name).any()


def test_perceptual_maps_have_known_ends_and_rising_lightness() -> None:
    # Reference values of matplotlib's tables (within OpenCV's rounding).
    np.testing.assert_allclose(
        colormap_lut("inferno")[[0, 255]], [[0, 0, 4], [252, 255, 164]], atol=3
    )
    np.testing.assert_allclose(
        colormap_lut("viridis")[[0, 255]], [[68, 1, 84], [253, 231, 37]], atol=3
    )
    for name in ("inferno", "viridis", "magma", "cividis"):
        luma = _luma(colormap_lut(name))
        assert np.all(np.diff(luma) > -1.5), name  # lightness never drops visibly
        assert luma[-1] - luma[0] > 150, name
    with pytest.raises(ValueError, match="unknown colour map"):
        colormap_lut("rainbow-ish")


def test_heatmap_maps_probabilities_through_the_table() -> None:
    prob = np.array([[0.0, 1.0, 0.5], [np.nan, 2.0, -1.0]], dtype=np.float32)
    out = heatmap_rgb(prob, "viridis")
    lut = colormap_lut("viridis")
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], lut[[0, 255, 128]])
    np.testing.assert_array_equal(out[1], lut[[0, 255, 0]])  # NaN -> 0, clipped both ways
    with pytest.raises(ValueError, match="2-D"):
        heatmap_rgb(np.zeros((2, 2, 1), np.float32))


def _scene() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((40, 50, 3), 100, np.uint8)
    prob = np.zeros((40, 50), np.float32)
    prob[10:30, 15:35] = 0.9
    return image, prob


def test_overlay_heatmap_blends_by_alpha() -> None:
    image, prob = _scene()
    np.testing.assert_array_equal(overlay_rgb(image, prob, alpha=0.0), image)
    np.testing.assert_array_equal(overlay_rgb(image, prob, alpha=1.0), heatmap_rgb(prob))
    half = overlay_rgb(image, prob, alpha=0.5).astype(int)
    expected = (image.astype(int) + heatmap_rgb(prob).astype(int)) / 2
    assert np.abs(half - expected).max() <= 1


def test_overlay_mask_and_outline_follow_the_threshold() -> None:
    image, prob = _scene()
    red = np.array([255, 0, 0])
    masked = overlay_rgb(image, prob, threshold=0.5, alpha=0.5, mode="mask", thickness=2)
    inside, outside = prob >= 0.5, prob < 0.5
    np.testing.assert_array_equal(masked[outside], image[outside])
    np.testing.assert_array_equal(masked[20, 25], [178, 50, 50])  # tinted halfway to red
    np.testing.assert_array_equal(masked[10, 20], red)  # opaque edge
    outlined = overlay_rgb(image, prob, threshold=0.5, mode="outline", thickness=2)
    band = mask_outline(inside, 2)
    np.testing.assert_array_equal(outlined[band], np.broadcast_to(red, (band.sum(), 3)))
    np.testing.assert_array_equal(outlined[~band], image[~band])
    # Above every probability: nothing drawn.
    np.testing.assert_array_equal(overlay_rgb(image, prob, threshold=0.95, mode="mask"), image)
    with pytest.raises(ValueError, match="does not match"):
        overlay_rgb(image, prob[:-1])
    with pytest.raises(ValueError, match="overlay mode"):
        overlay_rgb(image, prob, mode="glow")


def test_mask_helpers() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    png = mask_png(mask)
    assert png.dtype == np.uint8 and set(np.unique(png)) == {0, 255}
    assert mask_outline(mask, 1).sum() == 100 - 64  # 10x10 square minus its 8x8 inside
    assert mask_outline(mask, 2).sum() == 100 - 36
    assert not (mask_outline(mask, 2) & ~mask).any()
    full = np.ones((6, 6), bool)
    assert mask_outline(full, 1).sum() == 36 - 16  # the image edge counts as outside


def test_colorbar_orientation() -> None:
    lut = colormap_lut("magma")
    vertical = colorbar_rgb(256, 10, "magma")
    assert vertical.shape == (256, 10, 3)
    np.testing.assert_array_equal(vertical[0, 0], lut[255])  # high values on top
    np.testing.assert_array_equal(vertical[-1, -1], lut[0])
    horizontal = colorbar_rgb(8, 100, "magma")
    np.testing.assert_array_equal(horizontal[0, 0], lut[0])
    np.testing.assert_array_equal(horizontal[0, -1], lut[255])


def test_fit_within_only_shrinks() -> None:
    image = np.zeros((100, 40, 3), np.uint8)
    assert fit_within(image, 200) is image
    assert fit_within(image, 50).shape == (50, 20, 3)


def test_saved_images_round_trip_and_replace_atomically(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    png = tmp_path / "x.png"
    save_png(png, rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(png)), rgb)  # RGB order kept
    save_png(png, mask_png(rgb[:, :, 0] > 128))
    assert Image.open(png).mode == "L"  # replaced in place
    jpg = tmp_path / "x.jpg"
    smooth = np.full((24, 32, 3), (200, 40, 10), np.uint8)
    save_jpeg(jpg, smooth, quality=95)
    assert np.abs(np.asarray(Image.open(jpg)).astype(int) - smooth).max() <= 4
    with pytest.raises(ValueError, match="mask_png"):
        save_png(png, rgb[:, :, 0] > 128)
    assert Image.open(png).mode == "L"  # a failed write leaves the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg", "x.png"]  # no temp files
    assert encode_png(rgb).startswith(b"\x89PNG")


def test_heatmap_png_holds_colours_and_probabilities(tmp_path) -> None:
    prob = np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(30, 40)
    path = tmp_path / "heat.png"
    save_heatmap_png(path, prob, "viridis")
    with Image.open(path) as im:
        assert im.mode == "P" and im.size == (40, 30)
        np.testing.assert_array_equal(np.asarray(im), np.round(prob * 255).astype(np.uint8))
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), heatmap_rgb(prob, "viridis"))


def test_large_heatmap_and_mask_pngs_round_trip() -> None:
    """Maps big enough for several data chunks; the palette PNG is made from a grey one."""
    import io

    from ncl_core.inference.render import encode_heatmap_png, encode_mask_png

    rng = np.random.default_rng(3)
    prob = cv2.resize(rng.random((60, 80)).astype(np.float32), (1600, 1200))
    with Image.open(io.BytesIO(encode_heatmap_png(prob, "magma"))) as im:
        assert im.mode == "P" and im.size == (1600, 1200)
        np.testing.assert_array_equal(np.asarray(im), np.round(prob * 255).astype(np.uint8))
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), heatmap_rgb(prob, "magma"))
    with Image.open(io.BytesIO(encode_mask_png(prob > 0.5))) as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), np.where(prob > 0.5, 255, 0))
