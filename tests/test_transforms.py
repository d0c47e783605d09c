"""Training transforms, tensor conversion and the robustness presets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ncl_core.data.perturb import PERTURBATIONS, apply_perturbation
from ncl_core.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    resize_mask,
    to_tensor,
    train_transform,
)

from imaging import pattern


def _blocky_mask(h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    cells = rng.random((-(-h // 10), -(-w // 10))) < 0.4
    return np.kron(cells, np.ones((10, 10), bool))[:h, :w]


def test_geometry_moves_image_and_mask_together():
    # The image *is* the mask, so after any geometric step the two must still agree.
    mask = _blocky_mask()
    image = np.repeat((mask * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    cfg = AugmentConfig(blur_p=0, jpeg_p=0, noise_p=0)
    agreement = []
    for seed in range(40):
        out_img, out_mask = train_transform(image, mask, 48, cfg, np.random.default_rng(seed))
        assert out_img.shape == (48, 48, 3) and out_img.dtype == np.uint8
        assert out_mask.shape == (48, 48) and out_mask.dtype == bool
        again = train_transform(image, mask, 48, cfg, np.random.default_rng(seed))
        assert np.array_equal(out_img, again[0]) and np.array_equal(out_mask, again[1])
        agreement.append(((out_img[..., 0] >= 128) == out_mask).mean())
    # Only resampling at block edges may disagree (bilinear image vs nearest mask); a step
    # applied to one of the two (e.g. a flip) drops the mean agreement to about 0.6.
    assert min(agreement) > 0.9 and np.mean(agreement) > 0.96


def test_flip_and_no_scale_are_exact():
    image, mask = pattern(32, 32), _blocky_mask(32, 32)
    cfg = AugmentConfig(hflip_p=1.0, scale_p=0, blur_p=0, jpeg_p=0, noise_p=0)
    out_img, out_mask = train_transform(image, mask, 32, cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(out_img, image[:, ::-1])
    np.testing.assert_array_equal(out_mask, mask[:, ::-1])


def test_zoom_out_pads_with_mean_colour_and_untampered_mask():
    image, mask = pattern(40, 40), np.ones((40, 40), bool)
    cfg = AugmentConfig(hflip_p=0, scale_p=1, scale_range=(0.5, 0.5), blur_p=0, jpeg_p=0, noise_p=0)
    out_img, out_mask = train_transform(image, mask, 40, cfg, np.random.default_rng(1))
    assert out_mask.sum() == 20 * 20
    pad = ~out_mask
    assert (out_img[pad] == [round(255 * m) for m in IMAGENET_MEAN]).all()


def test_small_image_is_padded_not_stretched():
    image, mask = pattern(20, 30), np.ones((20, 30), bool)
    out_img, out_mask = train_transform(
        image, mask, 48, AugmentConfig.off(), np.random.default_rng(2)
    )
    assert out_img.shape == (48, 48, 3) and out_mask.sum() == 20 * 30
    ys, xs = np.nonzero(out_mask)
    np.testing.assert_array_equal(out_img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], image)


def test_photometric_steps_touch_only_the_image():
    image, mask = pattern(32, 32), _blocky_mask(32, 32)
    cfg = AugmentConfig(hflip_p=0, scale_p=0, blur_p=1, jpeg_p=1, noise_p=1)
    out_img, out_mask = train_transform(image, mask, 32, cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(out_mask, mask)
    assert np.abs(out_img.astype(int) - image).mean() > 2


def test_off_is_a_native_crop_never_a_squash():
    # Forensic traces live at the pixel scale: without augmentation the training input is a
    # crop of the image at its own scale, pixel for pixel.
    image, mask = pattern(64, 96), _blocky_mask(64, 96)
    for seed in range(10):
        out_img, out_mask = train_transform(
            image, mask, 32, AugmentConfig.off(), np.random.default_rng(seed)
        )
        found = [
            (y, x)
            for y in range(64 - 31)
            for x in range(96 - 31)
            if np.array_equal(image[y : y + 32, x : x + 32], out_img)
        ]
        assert len(found) == 1
        y, x = found[0]
        np.testing.assert_array_equal(out_mask, mask[y : y + 32, x : x + 32])


def test_crops_favour_the_tampered_region_when_asked():
    image = pattern(256, 256)
    mask = np.zeros((256, 256), bool)
    mask[200:220, 10:30] = True  # 0.6 % of the image
    hits = {}
    for p in (0.0, 1.0):
        cfg = AugmentConfig(**{**AugmentConfig.off().to_dict(), "tampered_crop_p": p})
        hits[p] = sum(
            train_transform(image, mask, 64, cfg, np.random.default_rng(s))[1].any()
            for s in range(40)
        )
    assert hits[1.0] == 40 and hits[0.0] < 20


def test_resize_mask_area_rule_when_shrinking():
    mask = np.zeros((4, 4), bool)
    mask[0, 0:2] = True  # top-left 2x2 cell is half tampered -> kept
    mask[2, 2] = True  # bottom-right cell a quarter tampered -> dropped
    assert resize_mask(mask, 2, 2).tolist() == [[True, False], [False, False]]


def test_to_tensor_normalises_like_imagenet():
    image = np.array([[[255, 0, 128]]], np.uint8)
    out = to_tensor(image)
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), IMAGENET_MEAN, IMAGENET_STD)]
    assert out.shape == (3, 1, 1) and out.dtype == torch.float32
    assert torch.allclose(out.flatten(), torch.tensor(expected), atol=1e-6)


def test_augment_config_json_round_trip_and_validation():
    cfg = AugmentConfig(jpeg_quality=(60, 90), blur_kernels=(3,))
    assert AugmentConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="blur_kernels"):
        AugmentConfig(blur_kernels=(4,))
    with pytest.raises(ValueError, match="hflip_p"):
        AugmentConfig(hflip_p=1.5)


# --- robustness presets ------------------------------------------------------------------------


def test_preset_names_match_the_paper_table():
    assert set(PERTURBATIONS) == {
        "resize_0.78",
        "resize_0.25",
        "blur_3",
        "blur_5",
        "noise_3",
        "noise_5",
        "jpeg_100",
        "jpeg_50",
    }
    with pytest.raises(ValueError, match="choose from"):
        apply_perturbation("blur_9", pattern())


def test_resize_presets_change_the_size():
    image = pattern(60, 100)
    assert PERTURBATIONS["resize_0.78"](image).shape == (47, 78, 3)
    assert PERTURBATIONS["resize_0.25"](image).shape == (15, 25, 3)


def _sharpness(image):
    return cv2.Laplacian(image[..., 1], cv2.CV_64F).var()


def test_blur_presets_are_ordered_and_keep_brightness():
    image = pattern(64, 64)
    b3, b5 = PERTURBATIONS["blur_3"](image), PERTURBATIONS["blur_5"](image)
    assert _sharpness(image) > _sharpness(b3) > _sharpness(b5)
    assert abs(float(b5.mean()) - float(image.mean())) < 1.0


@pytest.mark.parametrize(("name", "sigma"), [("noise_3", 3.0), ("noise_5", 5.0)])
def test_noise_presets_have_their_sigma_and_are_deterministic(name, sigma):
    image = np.full((128, 128, 3), 128, np.uint8)
    out = PERTURBATIONS[name](image)
    assert abs((out.astype(float) - image).std() - sigma) < 0.15 * sigma
    np.testing.assert_array_equal(out, PERTURBATIONS[name](image))
    np.testing.assert_array_equal(out, apply_perturbation(name, image, seed=0))
    assert not np.array_equal(out, apply_perturbation(name, image, seed=1))


def test_jpeg_presets_keep_colours_and_quality_order():
    image = pattern(64, 64, noise=0)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    assert np.abs(PERTURBATIONS["jpeg_100"](red).astype(int) - red).max() <= 3  # no channel swap
    err100 = np.abs(PERTURBATIONS["jpeg_100"](image).astype(int) - image).mean()
    err50 = np.abs(PERTURBATIONS["jpeg_50"](image).astype(int) - image).mean()
    assert 0 < err100 < 0.5 * err50
