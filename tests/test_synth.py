"""Synthetic forgeries: masks exactly where pixels changed, determinism, output layout."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from ncl_core.data.datasets import scan_dataset
from ncl_core.data.io import read_image, read_mask
from ncl_core.data.synth import (
    KINDS,
    SynthConfig,
    SynthDataset,
    SynthError,
    generate_dataset,
    make_forgery,
)

from imaging import pattern, save

NO_POST = {"resize_p": 0.0, "blur_p": 0.0, "noise_p": 0.0, "jpeg_p": 0.0}


def _photo(seed, size=96):
    # Textured enough that a moved or inpainted region differs from what was there.
    return pattern(size, size, seed=seed, noise=25)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("feather_p", [0.0, 1.0])
def test_mask_is_exactly_where_pixels_changed(kind, feather_p):
    config = SynthConfig(size=96, feather_p=feather_p, color_match_p=0.5, **NO_POST)
    photo, donor = _photo(1), _photo(2)[::-1].copy()
    for seed in range(6):
        image, mask, params = make_forgery(photo, donor, kind, np.random.default_rng(seed), config)
        assert image.shape == photo.shape and image.dtype == np.uint8 and mask.dtype == bool
        assert 0.02 <= mask.mean() <= 0.35 and params["area_fraction"] == pytest.approx(
            mask.mean(), abs=1e-6
        )
        changed = np.any(image != photo, axis=2)
        if kind == "removal" or params["feather_sigma"] == 0:
            assert not changed[~mask].any()
        else:
            # A feathered blend changes pixels a little beyond the half-alpha line (about
            # 3 sigma), never a whole region the mask leaves out.
            distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
            outside = changed & ~mask
            assert outside.any()
            assert distance[outside].max() <= 3.5 * params["feather_sigma"] + 1.5
        assert changed[mask].mean() > 0.8
        assert params["kind"] == kind and params["post"] == {}


def test_post_processing_is_global_and_recorded():
    config = SynthConfig(size=96, resize_p=1, blur_p=1, noise_p=1, jpeg_p=1)
    photo = _photo(1)
    image, mask, params = make_forgery(photo, None, "copy_move", np.random.default_rng(0), config)
    assert set(params["post"]) == {"resize", "blur_kernel", "noise_sigma", "jpeg_quality"}
    assert np.any(image != photo, axis=2)[~mask].mean() > 0.5


def test_colour_matching_moves_the_splice_towards_the_target():
    config = SynthConfig(size=96, feather_p=0, transform_p=0, **NO_POST)
    photo = np.full((96, 96, 3), (40, 60, 200), np.uint8)  # blue target
    donor = np.clip(_photo(3).astype(int) // 4 + [180, 120, 0], 0, 255).astype(np.uint8)
    plain = make_forgery(
        photo,
        donor,
        "splice",
        np.random.default_rng(0),
        SynthConfig(**{**config.to_dict(), "color_match_p": 0.0}),
    )
    matched = make_forgery(
        photo,
        donor,
        "splice",
        np.random.default_rng(0),
        SynthConfig(**{**config.to_dict(), "color_match_p": 1.0}),
    )
    assert matched[2]["color_match"] and not plain[2]["color_match"]
    target = np.array([40, 60, 200])
    gap_plain = np.abs(plain[0][plain[1]].mean(0) - target).sum()
    gap_matched = np.abs(matched[0][matched[1]].mean(0) - target).sum()
    assert gap_matched < 0.25 * gap_plain


def _sources(root, n=3):
    for i in range(n):
        save(
            root / ("sub" if i % 2 else "") / f"photo_{i}.png",
            pattern(80 + 8 * i, 120, seed=i, noise=20),
        )
    return root


def test_generate_dataset_layout_determinism_and_record(tmp_path):
    src = _sources(tmp_path / "src")
    before = sorted((p.relative_to(src), p.read_bytes()) for p in src.rglob("*") if p.is_file())
    config = SynthConfig(size=64, seed=7, authentic_fraction=0.25, image_format="jpg")
    summary = generate_dataset(src, tmp_path / "out1", 8, config)
    generate_dataset(src, tmp_path / "out2", 8, config)
    generate_dataset(src, tmp_path / "out3", 8, SynthConfig(**{**config.to_dict(), "seed": 8}))
    assert before == sorted(
        (p.relative_to(src), p.read_bytes()) for p in src.rglob("*") if p.is_file()
    )

    def files(out):
        return {
            p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
        }

    one, two, three = files(tmp_path / "out1"), files(tmp_path / "out2"), files(tmp_path / "out3")
    assert one == two  # same seed: identical bytes, synth.json included
    assert one.keys() == three.keys() and one != three

    assert summary["n_tampered"] == 6 and summary["n_authentic"] == 2
    assert summary["by_type"] == {"splice": 2, "copy_move": 2, "removal": 2}
    tampered = sorted(k for k in one if k.startswith("tampered/"))
    masks = sorted(k for k in one if k.startswith("masks/"))
    assert [k.split("/")[1].rsplit(".", 1)[0] for k in tampered] == [
        k.split("/")[1].rsplit(".", 1)[0] for k in masks
    ]
    assert all(k.endswith(".jpg") for k in tampered) and all(k.endswith(".png") for k in masks)
    for key in masks:
        values = np.unique(cv2.imread(str(tmp_path / "out1" / key), cv2.IMREAD_UNCHANGED))
        assert set(values.tolist()) <= {0, 255}

    record = json.loads(one["synth.json"])
    assert record["config"]["seed"] == 7 and record["count"] == 8 and len(record["items"]) == 8
    assert {item["source"] for item in record["items"]} <= {
        "photo_0.png",
        "sub/photo_1.png",
        "photo_2.png",
    }
    splice = next(item for item in record["items"] if item["kind"] == "splice")
    assert {"donor", "bbox_xywh", "scale", "rotation_deg", "feather_sigma", "post"} <= set(splice)
    for item in record["items"]:
        if item["kind"] != "authentic":
            mask, _ = read_mask(tmp_path / "out1" / item["mask"])
            assert mask.mean() == pytest.approx(item["area_fraction"], abs=1e-6)

    index = scan_dataset(tmp_path / "out1")
    assert (index.n_tampered, index.n_authentic, index.unpaired) == (6, 2, [])


def test_generate_dataset_refuses_unsafe_outputs(tmp_path):
    src = _sources(tmp_path / "src", n=1)
    with pytest.raises(SynthError, match="inside the source folder"):
        generate_dataset(src, src / "out", 1, SynthConfig(size=32))
    with pytest.raises(SynthError, match="inside the source folder"):
        generate_dataset(src, src, 1, SynthConfig(size=32))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(SynthError, match="not an empty folder"):
        generate_dataset(src, busy, 1, SynthConfig(size=32))
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SynthError, match="no image found"):
        generate_dataset(tmp_path / "nothing", tmp_path / "o", 1, SynthConfig(size=32))


def test_unreadable_sources_are_skipped_and_recorded(tmp_path):
    src = _sources(tmp_path / "src", n=2)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    summary = generate_dataset(src, tmp_path / "out", 6, SynthConfig(size=32, types=("removal",)))
    assert summary["count"] == 6 and summary["by_type"] == {"removal": 6}
    if summary["skipped_sources"]:  # drawn at random; when drawn it must be recorded, not fatal
        assert "broken.jpg" in summary["skipped_sources"][0]["source"]
    record = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert all(item["source"] != "broken.jpg" for item in record["items"])


def test_only_unreadable_sources_is_an_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(b"")
    with pytest.raises(SynthError, match="no source photo could be read"):
        generate_dataset(tmp_path / "src", tmp_path / "out", 1, SynthConfig(size=32))


def test_synth_dataset_items_and_reproducibility(tmp_path):
    src = _sources(tmp_path / "src", n=2)
    photos = sorted(src.rglob("*.png"))
    ds = SynthDataset(photos, SynthConfig(size=48, seed=3), length=5)
    assert len(ds) == 5
    item = ds[4]
    assert item["image"].shape == (3, 48, 48) and item["mask"].shape == (1, 48, 48)
    assert item["path"] == str(photos[0])
    assert 0.02 <= item["mask"].mean().item() <= 0.35
    assert set(torch.unique(item["mask"]).tolist()) == {0.0, 1.0}
    again = SynthDataset(photos, SynthConfig(size=48, seed=3), length=5)[4]
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["mask"], again["mask"])
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["mask"], item["mask"])
    authentic = SynthDataset(photos, SynthConfig(size=48, authentic_fraction=1.0))[0]
    assert authentic["mask"].sum() == 0


def test_synth_config_validation_and_json():
    config = SynthConfig(types=("splice",), size=64)
    assert SynthConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="types"):
        SynthConfig(types=("blur",))
    with pytest.raises(ValueError, match="area_range"):
        SynthConfig(area_range=(0.01, 0.5))


def test_sources_with_odd_modes_still_work(tmp_path):
    src = tmp_path / "src"
    grey = pattern(50, 70, seed=5)[..., 0]
    save(src / "grey.png", grey)
    generate_dataset(src, tmp_path / "out", 2, SynthConfig(size=32, types=("splice",)))
    image, _ = read_image(tmp_path / "out" / "tampered" / "000000_splice.png")
    assert image.shape == (32, 32, 3)
