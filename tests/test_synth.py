"""Synthetic forgeries: native-scale hosts, donors with a history of their own, masks exactly
where pixels changed, balance, recipes, determinism, output layout and bad photo folders."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from ncl_core.data.datasets import scan_dataset
from ncl_core.data.io import read_image, read_mask
from ncl_core.data.synth import (
    KINDS,
    SHAPES,
    SynthConfig,
    SynthDataset,
    SynthError,
    content_segment,
    donor_canvas,
    generate_dataset,
    make_item,
    scan_photos,
)
from ncl_core.data.synth.regions import membrane_blend

from imaging import pattern, save


def _photo(seed, height=160, width=200):
    # Textured enough that a moved or inpainted region differs from what was there.
    return pattern(height, width, seed=seed, noise=25)


def _band(recipe) -> int:
    """How far beyond the mask (alpha >= 0.5) a feathered blend may change pixels."""
    return int(math.ceil(3 * recipe.get("feather_px", 0.0) / 2)) + 1


def _sources(root, n=3):
    for i in range(n):
        save(
            root / ("sub" if i % 2 else "") / f"photo_{i}.png",
            pattern(120 + 8 * i, 150, seed=i, noise=20),
        )
    return root


@pytest.mark.parametrize("membrane", (0.0, 1.0))
@pytest.mark.parametrize("kind", KINDS)
def test_outside_the_region_an_item_is_its_native_crop_bit_for_bit(kind, membrane):
    config = SynthConfig.plain(size=96, types=(kind,), membrane_blend_p=membrane)
    host_photo, donor_photo = _photo(1), _photo(2)
    for seed in range(8):
        image, mask, recipe = make_item(
            host_photo, donor_photo, kind, np.random.default_rng(seed), config
        )
        x, y, w, h = recipe["host"]["crop_xywh"]
        crop = host_photo[y : y + h, x : x + w]
        assert (w, h) == (96, 96) and "rescale" not in recipe["host"] and recipe["post"] == {}
        band = cv2.dilate(
            mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=_band(recipe)
        )
        outside = band == 0
        np.testing.assert_array_equal(image[outside], crop[outside])


@pytest.mark.parametrize("membrane", (0.0, 1.0))
@pytest.mark.parametrize("kind", KINDS)
def test_mask_marks_exactly_the_changed_pixels(kind, membrane):
    config = SynthConfig.plain(size=96, membrane_blend_p=membrane)
    host_photo, donor_photo = _photo(3), _photo(4)
    for seed in range(8):
        image, mask, recipe = make_item(
            host_photo, donor_photo, kind, np.random.default_rng(seed), config
        )
        x, y, w, h = recipe["host"]["crop_xywh"]
        changed = np.any(image != host_photo[y : y + h, x : x + w], axis=2)
        assert 0.005 <= mask.mean() <= 0.5
        assert recipe["area_fraction"] == pytest.approx(mask.mean(), abs=1e-6)
        # Every changed pixel lies inside the mask or its feather band ...
        distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        assert distance[changed & ~mask].max(initial=0) <= _band(recipe) + 0.5
        # ... and the mask marks pixels that did change, not a region left as it was.
        assert changed[mask].mean() > 0.8


def test_splice_donor_history_differs_from_the_host():
    config = SynthConfig.plain(size=96, types=("splice",))
    seen_steps = set()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        donor = None if seed % 3 == 0 else _photo(5)  # every third: a self-splice
        _, mask, recipe = make_item(_photo(6), donor, "splice", rng, config)
        host_steps = [k for k in recipe["host"] if k not in ("crop_xywh", "source")]
        donor_steps = recipe["donor"]["processing"]
        assert donor_steps and [s["step"] for s in donor_steps] != host_steps
        assert recipe["donor"]["self_splice"] == (seed % 3 == 0)
        seen_steps.update(s["step"] for s in donor_steps)
        dx, dy = recipe["offset_xy"]
        assert dx % 8 and dy % 8  # pasted off the 8x8 grid
    assert seen_steps == {"resample", "jpeg", "noise", "blur", "gamma", "colour"}


def test_donor_canvas_without_drawn_steps_still_gets_one():
    never = SynthConfig(donor_step_p=(0.0, 0.0, 0.0, 0.0, 0.0, 1e-9))
    canvas, record = donor_canvas(_photo(7), (64, 80), np.random.default_rng(0), never)
    assert canvas.shape == (64, 80, 3) and len(record["processing"]) == 1


def test_regions_follow_content_and_cover_all_shapes():
    image = np.zeros((128, 128, 3), np.uint8)
    image[:] = (30, 90, 160)
    cv2.circle(image, (70, 60), 30, (220, 200, 40), -1)
    region = None
    rng = np.random.default_rng(0)
    for _ in range(10):
        region = content_segment(image, math.pi * 30**2, rng)
        if region is not None and region[60, 70]:
            break
    assert region is not None and region[60, 70]
    disc = np.zeros((128, 128), np.uint8)
    cv2.circle(disc, (70, 60), 30, 1, -1)
    iou = (region & (disc > 0)).sum() / (region | (disc > 0)).sum()
    assert iou > 0.85  # the segment is the object, not a shape laid over it

    config = SynthConfig.plain(size=96)
    shapes = {
        make_item(_photo(8), _photo(9), "splice", np.random.default_rng(s), config)[2]["shape"]
        for s in range(40)
    }
    assert shapes == set(SHAPES)


def test_copy_move_and_removal_draw_their_variants():
    config = SynthConfig.plain(size=96, transform_p=1.0, flip_p=0.5, copy_jpeg_p=0.5)
    flips, jpegs, methods = set(), set(), set()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        recipe = make_item(_photo(10), None, "copy_move", rng, config)[2]
        flips.add(recipe["flip"])
        jpegs.add("copy_jpeg_quality" in recipe)
        assert recipe["scale"] != 1.0 or recipe["rotation_deg"] != 0.0
        methods.add(make_item(_photo(11), None, "removal", rng, config)[2]["method"])
    assert flips == {True, False} and jpegs == {True, False}
    assert methods == {"telea", "ns", "patch"}


def test_host_rescale_and_final_post_processing_are_recorded():
    config = SynthConfig(size=64, host_rescale_p=1.0, resize_p=1, blur_p=1, noise_p=1, jpeg_p=1)
    image, mask, recipe = make_item(_photo(12), None, "copy_move", np.random.default_rng(0), config)
    assert 0.5 <= recipe["host"]["rescale"] <= 1.5
    assert set(recipe["post"]) == {
        "resize",
        "blur_kernel",
        "noise_sigma",
        "jpeg_quality",
        "jpeg_chroma",
    }
    assert image.shape[:2] == mask.shape


def test_publication_edits_a_larger_crop_then_downscales_it_to_the_size():
    config = SynthConfig.plain(size=64, publish_scale_p=1.0, publish_scale_range=(0.4, 0.5))
    for seed, kind in enumerate(("authentic", *KINDS)):
        image, mask, recipe = make_item(
            _photo(20 + seed, 400, 400),
            _photo(30, 400, 400),
            kind,
            np.random.default_rng(seed),
            config,
        )
        assert image.shape == (64, 64, 3) and mask.shape == (64, 64)
        sx, sy = recipe["publish"]["publish_scale_xy"]
        # Each axis by its own factor, both within the range widened by the aspect jitter.
        assert 0.4 / 1.2 <= sx < 0.6 and 0.4 / 1.2 <= sy < 0.6
        x, y, w, h = recipe["host"]["crop_xywh"]
        assert (w, h) == (round(64 / sx), round(64 / sy))
        if kind != "authentic":
            assert 0 < mask.mean() < 1


def test_regions_cover_the_border_almost_as_often_as_the_centre():
    """Regions kept wholly inside the frame cover its centre far more often than its border,
    and a network learns that prior; placed by their centre, the coverage is nearly flat."""

    def coverage(config):
        total = np.zeros((64, 64))
        for i in range(90):
            rng = np.random.default_rng([7, i])
            kind = KINDS[i % 3]
            total += make_item(_photo(i % 6, 96, 96), _photo(9, 96, 96), kind, rng, config)[1]
        border = np.concatenate([total[:6].ravel(), total[-6:].ravel()])
        return border.mean() / total[24:40, 24:40].mean()

    assert coverage(SynthConfig.plain(size=64)) > 0.3  # measured 0.38
    assert coverage(SynthConfig.plain(size=64, region_inside_p=1.0)) < 0.15  # measured 0.05


def test_jpeg_chroma_subsampling_is_drawn_and_changes_the_pixels():
    from ncl_core.data.perturb import jpeg_compress

    image = _photo(3, 64, 64)
    assert not np.array_equal(jpeg_compress(image, 90, "420"), jpeg_compress(image, 90, "444"))
    config = SynthConfig.plain(size=64, jpeg_p=1.0, jpeg_444_p=0.5, jpeg_twice_p=0.5)
    chroma, twice = set(), set()
    for seed in range(24):
        post = make_item(_photo(4), None, "authentic", np.random.default_rng(seed), config)[2][
            "post"
        ]
        chroma.add(post["jpeg_chroma"])
        twice.add(isinstance(post["jpeg_quality"], list))
    assert chroma == {"420", "444"} and twice == {True, False}


def test_colour_matching_moves_the_splice_towards_the_target():
    host = np.full((96, 96, 3), (40, 60, 200), np.uint8)  # blue target
    donor = np.clip(_photo(3, 96, 96).astype(int) // 4 + [180, 120, 0], 0, 255).astype(np.uint8)
    base = {
        "feather_px": (0.0, 0.0),
        "donor_step_p": (0, 0, 0, 0, 1, 0),
        "donor_gamma_range": (1.0, 1.0),
    }
    plain = make_item(
        host,
        donor,
        "splice",
        np.random.default_rng(0),
        SynthConfig.plain(size=96, color_match_p=0.0, **base),
    )
    matched = make_item(
        host,
        donor,
        "splice",
        np.random.default_rng(0),
        SynthConfig.plain(size=96, color_match_p=1.0, **base),
    )
    assert matched[2]["color_match"] and not plain[2]["color_match"]
    target = np.array([40, 60, 200])
    gap_plain = np.abs(plain[0][plain[1]].mean(0) - target).sum()
    gap_matched = np.abs(matched[0][matched[1]].mean(0) - target).sum()
    assert gap_matched < 0.25 * gap_plain


@pytest.mark.parametrize("centre", ((60, 48), (92, 20)))  # inside; cut by the frame
def test_membrane_blend_leaves_no_step_at_the_edge_and_keeps_the_detail(centre):
    rng = np.random.default_rng(0)
    host = np.clip(rng.normal((40, 60, 200), 6, (96, 120, 3)), 0, 255).astype(np.uint8)
    moved = np.clip(rng.normal((220, 140, 30), 6, (96, 120, 3)), 0, 255).astype(np.uint8)
    region = np.zeros((96, 120), np.uint8)
    cv2.circle(region, centre, 22, 1, -1)
    region = region.astype(bool)
    out = membrane_blend(host, moved, region)
    np.testing.assert_array_equal(out[~region], host[~region])
    kernel = np.ones((3, 3), np.uint8)
    ring = cv2.dilate(region.astype(np.uint8), kernel).astype(bool) & ~region
    edge = region & ~cv2.erode(region.astype(np.uint8), kernel, borderValue=1).astype(bool)
    step = np.abs(out[edge].mean(0) - host[ring].mean(0)).max()
    pasted_step = np.abs(moved[edge].mean(0) - host[ring].mean(0)).max()
    assert pasted_step > 100 and step < 3
    assert abs(out[region].std(0).mean() - moved[region].std(0).mean()) < 1.0
    # In a plain configuration every paste (splice, copy-move, patch) is blended when asked.
    config = SynthConfig.plain(size=96, membrane_blend_p=1.0, removal_patch_p=1.0)
    host_photo, donor_photo = _photo(5), _photo(6)
    kinds = set()
    for seed in range(12):
        kind = KINDS[seed % 3]
        rng = np.random.default_rng(seed)
        _, _, recipe = make_item(host_photo, donor_photo, kind, rng, config)
        assert recipe["blend"] == "membrane" and recipe["feather_px"] == 0.0
        kinds.add(recipe["kind"])
    assert kinds == set(KINDS)


def test_generate_dataset_balance_layout_determinism_and_recipes(tmp_path):
    src = _sources(tmp_path / "src")
    before = sorted((p.relative_to(src), p.read_bytes()) for p in src.rglob("*") if p.is_file())
    config = SynthConfig(size=64, seed=7, image_format="jpg")
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

    # A quarter each: authentic, splice, copy-move, removal.
    assert summary["n_tampered"] == 6 and summary["n_authentic"] == 2
    assert summary["by_type"] == {"splice": 2, "copy_move": 2, "removal": 2}
    masks = sorted(k for k in one if k.startswith("masks/"))
    for key in masks:
        values = np.unique(cv2.imread(str(tmp_path / "out1" / key), cv2.IMREAD_UNCHANGED))
        assert set(values.tolist()) <= {0, 255}

    record = json.loads(one["synth.json"])
    assert record["config"]["seed"] == 7 and len(record["items"]) == 8
    sources = {"photo_0.png", "sub/photo_1.png", "photo_2.png"}
    for item in record["items"]:
        assert item["host"]["source"] in sources and "post" in item
        if item["kind"] == "splice":
            assert item["donor"]["source"] in sources and item["donor"]["processing"]
            assert {"shape", "offset_xy", "feather_px", "color_match"} <= set(item)
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
    with pytest.raises(SynthError, match="no usable photo"):
        generate_dataset(tmp_path / "nothing", tmp_path / "o", 1, SynthConfig(size=32))


def test_a_messy_photo_folder_gets_one_line_per_bad_file_and_the_rest_is_used(tmp_path):
    src = _sources(tmp_path / "src", n=2)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    (src / "notes.md").write_text("a readme, not a photo")
    save(src / "tiny.png", pattern(20, 30))
    photos, problems = scan_photos(src)
    assert sorted(p.name for p in photos) == ["photo_0.png", "photo_1.png"]
    assert len(problems) == 3
    assert any("broken.jpg" in line and "cannot be read" in line for line in problems)
    assert any("notes.md" in line and "not an image" in line for line in problems)
    assert any("tiny.png" in line and "too small" in line for line in problems)
    summary = generate_dataset(src, tmp_path / "out", 4, SynthConfig(size=32, types=("removal",)))
    assert summary["count"] == 4 and len(summary["skipped_sources"]) == 3
    record = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert {item["host"]["source"] for item in record["items"]} <= {
        "photo_0.png",
        "sub/photo_1.png",
    }


def test_synth_dataset_items_and_reproducibility(tmp_path):
    src = _sources(tmp_path / "src", n=2)
    photos = sorted(src.rglob("*.png"))
    ds = SynthDataset(photos, SynthConfig(size=48, seed=3, authentic_fraction=0.0), length=5)
    assert len(ds) == 5
    item = ds[4]
    assert item["image"].shape == (3, 48, 48) and item["mask"].shape == (1, 48, 48)
    assert item["path"] == str(photos[0])
    assert 0.005 <= item["mask"].mean().item() <= 0.5
    assert set(torch.unique(item["mask"]).tolist()) == {0.0, 1.0}
    again = SynthDataset(photos, SynthConfig(size=48, seed=3, authentic_fraction=0.0), length=5)[4]
    assert torch.equal(item["image"], again["image"]) and torch.equal(item["mask"], again["mask"])
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["mask"], item["mask"])
    authentic = SynthDataset(photos, SynthConfig(size=48, authentic_fraction=1.0))[0]
    assert authentic["mask"].sum() == 0


def test_synth_dataset_pads_photos_smaller_than_the_crop(tmp_path):
    save(tmp_path / "a.png", pattern(70, 90, seed=1))
    save(tmp_path / "b.png", pattern(80, 66, seed=2))
    ds = SynthDataset(sorted(tmp_path.glob("*.png")), SynthConfig(size=128, seed=0), length=4)
    for i in range(4):
        assert ds[i]["image"].shape == (3, 128, 128)


def test_synth_config_validation_and_json():
    config = SynthConfig(types=("splice",), size=64)
    assert SynthConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="types"):
        SynthConfig(types=("blur",))
    with pytest.raises(ValueError, match="area_range"):
        SynthConfig(area_range=(0.0, 0.5))
    with pytest.raises(ValueError, match="shape_weights"):
        SynthConfig(shape_weights=(1.0,))
    with pytest.raises(ValueError, match="membrane_blend_p"):
        SynthConfig(membrane_blend_p=1.5)


def test_sources_with_odd_modes_still_work(tmp_path):
    src = tmp_path / "src"
    grey = pattern(70, 90, seed=5)[..., 0]
    save(src / "grey.png", grey)
    generate_dataset(src, tmp_path / "out", 2, SynthConfig(size=32, types=("splice",)))
    image, _ = read_image(tmp_path / "out" / "tampered" / "000000_splice.png")
    assert image.shape == (32, 32, 3)


def test_regions_prefer_textured_content_as_pasted_objects_are():
    """On an image that is half flat and half textured, regions fall mostly on the texture;
    with ``texture_power`` 0 they fall on either half alike."""
    from ncl_core.data.synth.regions import draw_region

    image = np.full((96, 96, 3), 128, np.uint8)
    image[:, 48:] = _photo(5, 96, 48)
    shares = {}
    for power in (0.0, 4.0):
        config = SynthConfig.plain(size=96, texture_power=power, shape_weights=(1, 1, 1, 0))
        inside = [
            draw_region(image, (0.02, 0.1), np.random.default_rng(seed), config)[0]
            for seed in range(60)
        ]
        shares[power] = np.mean([r[:, 48:].sum() / r.sum() for r in inside])
    assert shares[4.0] > 0.75 and 0.3 < shares[0.0] < 0.7
