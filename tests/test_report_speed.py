"""The report's fast pictures (ncl_core.report.pictures) draw what ncl_core.inference.render draws, and a
report made with them verifies itself. No timings: what is checked is that speed changed no
pixel that matters."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ncl_core.analysis import Analysis
from ncl_core.evidence.image import Evidence
from ncl_core.inference.predictor import Predictor
from ncl_core.inference.render import (
    colormap_lut,
    encode_heatmap_png,
    fit_within,
    heatmap_rgb,
    mask_png,
    overlay_rgb,
)
from ncl_core.report import ReportOptions, artefacts, pictures, run_batch
from ncl_core.report.verification import verify_report

from imaging import pattern, save


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 6, 2)
    return (0.5 + 0.5 * np.sin(xx / 13 + phase[0]) * np.cos(yy / 17 + phase[1])).astype(np.float32)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_pixels(data: bytes) -> tuple[np.ndarray, str, list[int] | None]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im), im.mode, im.getpalette()


def test_levels_and_colours_are_renders() -> None:
    m = _smooth(37, 53) * 1.4 - 0.2  # below 0 and above 1
    m[0, 0], m[1, 1], m[2, 2] = np.nan, np.inf, -np.inf
    for prob in (m, np.clip(m, 0, 1)):
        assert np.array_equal(
            pictures.colour(pictures.levels(prob), "magma"), heatmap_rgb(prob, "magma")
        )
    assert pictures.levels(np.zeros((0, 5), np.float32)).shape == (0, 5)
    with pytest.raises(ValueError):
        pictures.levels(np.zeros((2, 2, 2), np.float32))


@pytest.mark.parametrize("shape", [(64, 80), (1, 1), (300, 7)])
def test_the_pngs_hold_the_pixels_and_the_palette(shape) -> None:
    prob = _smooth(*shape, seed=2)
    level = pictures.levels(prob)
    pixels, mode, palette = _png_pixels(pictures.palette_png(level, "viridis"))
    assert mode == "P" and np.array_equal(pixels, level)
    assert palette[: 256 * 3] == colormap_lut("viridis").reshape(-1).tolist()
    # The same file content as render's heatmap PNG, read back.
    theirs, their_mode, their_palette = _png_pixels(encode_heatmap_png(prob, "viridis"))
    assert np.array_equal(pixels, theirs) and palette == their_palette and mode == their_mode
    mask = mask_png(prob >= 0.5)
    pixels, mode, _ = _png_pixels(pictures.grey_png(mask))
    assert mode == "L" and np.array_equal(pixels, mask)


@pytest.mark.parametrize(
    "case", ["blob", "empty", "full", "border", "speckle", "large"], ids=lambda c: c
)
def test_the_mask_overlay_is_renders(case: str) -> None:
    h, w = (1200, 900) if case == "large" else (90, 120)
    image = _image(h, w, seed=3)
    prob = _smooth(h, w, seed=4)
    if case == "empty":
        prob[:] = 0.1
    elif case == "full":
        prob[:] = 0.9
    elif case == "border":
        prob[:] = 0.0
        prob[:10, :] = 1.0
        prob[:, -3:] = 1.0
    elif case == "speckle":
        prob = np.random.default_rng(5).random((h, w), dtype=np.float32)
    ours = pictures.mask_overlay(image, mask_png(prob >= 0.5), 0.45)
    theirs = overlay_rgb(image, prob, 0.5, 0.45, "inferno", mode="mask")
    assert np.array_equal(ours, theirs)


def test_scaling_keeps_renders_sizes() -> None:
    image = _image(1000, 700, seed=6)
    for side in (2048, 480, 160, 999, 1):
        size = pictures.fitted_size(1000, 700, side)
        assert fit_within(image, side).shape[1::-1] == size
        assert pictures.preview_to(image, size).shape[1::-1] == size
    # Within a few levels of area interpolation on a smooth picture, by a whole factor and
    # more (2.08) and by a fraction alone (1.46, 1.02).
    smooth = (np.dstack([_smooth(1000, 700, seed=s) for s in range(3)]) * 255).astype(np.uint8)
    for side in (480, 683, 980):
        size = pictures.fitted_size(1000, 700, side)
        diff = np.abs(pictures.preview_to(smooth, size).astype(int) - fit_within(smooth, side))
        assert diff.mean() < 1.0 and diff.max() <= 8, side


@pytest.mark.parametrize("period", [2, 3])
def test_scaling_by_a_fraction_does_not_alias(period: int) -> None:
    # Stripes one or two pixels apart, scaled by 1.46: their mean level is all that can be
    # shown, so every departure from it is a beat (moiré). Bilinear sampling alone beats about
    # twice as hard as area interpolation; the blur before it brings it to area's.
    stripes = np.zeros((1000, 1000, 3), np.uint8)
    stripes[:, ::period] = 255
    size = pictures.fitted_size(1000, 1000, 683)

    def beats(picture: np.ndarray) -> float:
        return float(np.abs(picture.astype(float) - stripes.mean()).mean())

    plain = beats(cv2.resize(stripes, size, interpolation=cv2.INTER_LINEAR))
    area = beats(fit_within(stripes, 683))
    ours = beats(pictures.preview_to(stripes, size))
    assert ours <= 1.1 * area and ours <= 0.75 * plain, (ours, area, plain)


def _analysis(prob: np.ndarray, mode: str, input_size: int = 256) -> Analysis:
    h, w = prob.shape
    settings = {"mode": mode, "input_size": input_size, "threshold": 0.5}
    return Analysis(None, None, w, h, prob, 0.5, 0.5, "m", "s", settings, "cpu", 0.0, "now")


@pytest.mark.parametrize(
    ("shape", "mode", "heatmap_side"),
    [
        ((1000, 1500), "resize", 512),
        ((3000, 2200), "resize", 512),
        ((600, 400), "resize", 512),
        ((1000, 1500), "tiled", 1500),
        ((3000, 2200), "tiled", 2048),
    ],
)
def test_a_rows_pictures(tmp_path: Path, monkeypatch, shape, mode, heatmap_side) -> None:
    encoded: list[np.ndarray] = []  # the pictures handed to the JPEG encoder, in order
    real_encode = artefacts.encode_jpeg
    monkeypatch.setattr(
        artefacts, "encode_jpeg", lambda a, q: encoded.append(a.copy()) or real_encode(a, q)
    )
    h, w = shape
    image = (np.dstack([_smooth(h, w, seed=s) for s in (1, 2, 3)]) * 255).astype(np.uint8)
    prob = _smooth(h, w, seed=8)
    if mode == "resize":  # the model's 256 px map, scaled up to the image
        small = pictures.fitted_size(h, w, 256)
        prob = cv2.resize(
            _smooth(small[1], small[0], seed=8), (w, h), interpolation=cv2.INTER_LINEAR
        )
    analysis = _analysis(prob, mode)
    paths = artefacts._write_pictures(Evidence(image=image), analysis, tmp_path, "00001", 160, [])

    def read(field: str) -> np.ndarray:
        with Image.open(tmp_path / paths[field]) as im:
            return np.asarray(im)

    assert np.array_equal(read("mask_path"), mask_png(prob >= 0.5))  # full resolution
    shown = fit_within(image, artefacts.DISPLAY_MAX_PX)
    assert read("image_path").shape == shown.shape
    prob_shown = fit_within(prob, artefacts.DISPLAY_MAX_PX)
    over = overlay_rgb(shown, prob_shown, 0.5, artefacts.OVERLAY_ALPHA, mode="mask")
    assert read("overlay_path").shape == over.shape
    # The display copy within a few levels of render's; unscaled, the very same pixels.
    diff = np.abs(encoded[0].astype(int) - shown)
    assert diff.mean() < 1.0 and diff.max() <= 8
    assert np.array_equal(encoded[0], shown) == (max(h, w) <= artefacts.DISPLAY_MAX_PX)
    # The overlay: render's where the two agree on the mask (they may differ on its edge).
    ours_mask = np.any(encoded[1] != encoded[0], axis=2)
    theirs_mask = np.any(over != shown, axis=2)
    assert np.mean(ours_mask != theirs_mask) < 0.01
    # The heatmap: the display map, or for a map made at the model's input size and scaled
    # up, that size (at least 512 px), its pixel values the probability levels.
    heat = read("heatmap_path")
    expected = pictures.levels(fit_within(prob_shown, heatmap_side)).astype(int)
    assert max(heat.shape) == min(heatmap_side, max(h, w))
    assert heat.shape == expected.shape and np.abs(heat - expected).mean() < 1.5, np.abs(
        heat - expected
    ).mean()
    assert max(read("thumbnail_path").shape[:2]) == 160
    pane_w, pane_h = pictures.fitted_size(*shown.shape[:2], artefacts.PANEL_PANE_PX)
    assert read("panel_path").shape[0] == pane_h


def test_a_report_with_the_fast_pictures_verifies(tiny_model_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    for i in range(3):
        save(folder / f"img{i}.jpg", pattern(48, 64, seed=i), quality=90)
    predictor = Predictor.load(tiny_model_path, device="cpu")
    summary = run_batch([folder], predictor, tmp_path / "report", ReportOptions())
    assert summary.n_ok == 3
    result = verify_report(tmp_path / "report")
    assert result.intact and result.n_files > 0, result.problems
    for row in summary.rows:
        with Image.open(tmp_path / "report" / row["heatmap_path"]) as im:
            assert im.mode == "P"
        with Image.open(tmp_path / "report" / row["mask_path"]) as im:
            assert im.size == (64, 48) and set(np.unique(np.asarray(im))) <= {0, 255}
