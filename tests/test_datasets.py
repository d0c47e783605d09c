"""scan_dataset on every accepted layout, pairing by stem, split, and SegmentationDataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ncl_core.data.augment_config import AugmentConfig
from ncl_core.data.datasets import (
    DatasetError,
    Sample,
    SegmentationDataset,
    scan_dataset,
    split_samples,
)
from ncl_core.data.io import ImageReadError, MaskError, read_image, read_mask
from ncl_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD

from imaging import pattern, save, write_mask


def _img(path, seed=0, hw=(24, 32)):
    return save(path, pattern(*hw, seed=seed))


def _mask(path, hw=(24, 32), rows=None):
    mask = np.zeros(hw, bool)
    mask[: rows if rows is not None else hw[0] // 2] = True
    return write_mask(path, mask)


def _pairs(index):
    return {s.image.name: (s.mask.name if s.mask else None) for s in index.samples}


def test_casia_tp_gt_au_pairs_by_stem_not_by_sort_order(tmp_path):
    # Sorted, the masks would line up with the wrong images: "b" has no mask, "zz" no image.
    for stem in ("a", "b", "c"):
        _img(tmp_path / "Tp" / f"Tp_{stem}.jpg")
    _mask(tmp_path / "Gt" / "Tp_a_gt.png")
    _mask(tmp_path / "Gt" / "Tp_c_gt.png")
    _mask(tmp_path / "Gt" / "Tp_zz_gt.png")
    _img(tmp_path / "Au" / "Au_1.jpg")
    index = scan_dataset(tmp_path)
    assert _pairs(index) == {
        "Tp_a.jpg": "Tp_a_gt.png",
        "Tp_c.jpg": "Tp_c_gt.png",
        "Au_1.jpg": None,
    }
    summary = index.summary()
    assert (summary["n_tampered"], summary["n_authentic"], summary["n_unpaired"]) == (2, 1, 2)
    assert sorted(p.split("/")[-1] for p in summary["unpaired"]) == ["Tp_b.jpg", "Tp_zz_gt.png"]
    assert "Tp" in summary["layout"] and "Gt" in summary["layout"] and "Au" in summary["layout"]


@pytest.mark.parametrize(
    ("image_dir", "mask_dir", "authentic_dir"),
    [("images", "masks", None), ("tampered", "masks", "authentic"), ("IMAGES", "Masks", "AU")],
)
def test_plain_same_stem_folder_layouts(tmp_path, image_dir, mask_dir, authentic_dir):
    _img(tmp_path / image_dir / "x1.jpg")
    _img(tmp_path / image_dir / "x2.webp")
    _mask(tmp_path / mask_dir / "x2.png")
    _mask(tmp_path / mask_dir / "x1.bmp")
    if authentic_dir:
        _img(tmp_path / authentic_dir / "real.png")
    index = scan_dataset(tmp_path)
    expected = {"x1.jpg": "x1.bmp", "x2.webp": "x2.png"}
    if authentic_dir:
        expected["real.png"] = None
    assert _pairs(index) == expected and index.unpaired == []


def test_authentic_folder_alone_is_a_dataset(tmp_path):
    _img(tmp_path / "authentic" / "a.jpg")
    index = scan_dataset(tmp_path)
    assert index.n_authentic == 1 and index.n_tampered == 0


@pytest.mark.parametrize("flat", [False, True])
def test_coverage_layout(tmp_path, flat):
    image_dir, mask_dir = (tmp_path, tmp_path) if flat else (tmp_path / "image", tmp_path / "mask")
    for n in (1, 2, 10):
        _img(image_dir / f"{n}t.tif", seed=n)
        _img(image_dir / f"{n}.tif", seed=100 + n)
        _mask(mask_dir / f"{n}forged.tif")
        _mask(mask_dir / f"{n}copy.tif")
        _mask(mask_dir / f"{n}paste.tif")
    index = scan_dataset(tmp_path)
    pairs = _pairs(index)
    assert pairs["1t.tif"] == "1forged.tif" and pairs["10t.tif"] == "10forged.tif"
    assert pairs["2.tif"] is None and pairs["10.tif"] is None  # originals are authentic
    assert (index.n_tampered, index.n_authentic, index.unpaired) == (3, 3, [])
    assert any("copy/paste" in note for note in index.notes)


def test_columbia_layout(tmp_path):
    _img(tmp_path / "4cam_splc" / "canong3_canonxt_sub_01.tif")
    _img(tmp_path / "4cam_splc" / "nikond70_kodakdcs330_sub_22.tif")
    _mask(tmp_path / "4cam_splc" / "edgemask" / "canong3_canonxt_sub_01_edgemask.jpg")
    _mask(tmp_path / "4cam_splc" / "edgemask" / "nikond70_kodakdcs330_sub_22_edgemask.jpg")
    _img(tmp_path / "4cam_auth" / "canong3_02_sub_01.tif")
    index = scan_dataset(tmp_path)
    assert _pairs(index) == {
        "canong3_canonxt_sub_01.tif": "canong3_canonxt_sub_01_edgemask.jpg",
        "nikond70_kodakdcs330_sub_22.tif": "nikond70_kodakdcs330_sub_22_edgemask.jpg",
        "canong3_02_sub_01.tif": None,
    }


def test_flat_folder_with_nist_and_casia_suffixes_recursive(tmp_path):
    _img(tmp_path / "NC2016_0001.jpg")
    _mask(tmp_path / "NC2016_0001_mask.png")
    _img(tmp_path / "sub" / "c1.jpg")  # IMD2020 keeps each pair in its own folder
    _mask(tmp_path / "sub" / "c1_gt.png")
    _img(tmp_path / "lonely.jpg")
    index = scan_dataset(tmp_path)
    assert _pairs(index) == {"NC2016_0001.jpg": "NC2016_0001_mask.png", "c1.jpg": "c1_gt.png"}
    assert [p.name for p in index.unpaired] == ["lonely.jpg"]
    assert index.layout.startswith("flat")


def test_ambiguous_stems_are_not_guessed(tmp_path):
    _img(tmp_path / "images" / "a.jpg")
    _img(tmp_path / "images" / "a.png")
    _mask(tmp_path / "masks" / "a.png")
    _img(tmp_path / "images" / "b.jpg")
    _mask(tmp_path / "masks" / "b.png")
    index = scan_dataset(tmp_path)
    assert _pairs(index) == {"b.jpg": "b.png"}
    assert len(index.unpaired) == 3 and any("ambiguous" in n for n in index.notes)


def test_imdl_benco_json(tmp_path):
    _img(tmp_path / "data" / "t1.jpg")
    _mask(tmp_path / "data" / "t1_m.png")
    _img(tmp_path / "data" / "au.jpg")
    absolute = _img(tmp_path / "elsewhere" / "t2.png")
    _mask(tmp_path / "elsewhere" / "t2_m.png")
    listing = [
        ["data/t1.jpg", "data/t1_m.png"],
        ["data/au.jpg", "Negative"],
        [str(absolute), str(tmp_path / "elsewhere" / "t2_m.png")],
    ]
    (tmp_path / "lists").mkdir()
    json_path = tmp_path / "lists" / "train.json"
    json_path.write_text(json.dumps(listing).replace("data/", "../data/"))
    index = scan_dataset(json_path)
    assert [(s.image.name, s.mask.name if s.mask else None) for s in index.samples] == [
        ("t1.jpg", "t1_m.png"),
        ("au.jpg", None),
        ("t2.png", "t2_m.png"),
    ]
    assert index.samples[0].image.resolve() == (tmp_path / "data" / "t1.jpg").resolve()
    assert index.layout == "imdl-benco json"


def test_imdl_benco_json_errors(tmp_path):
    missing = tmp_path / "m.json"
    missing.write_text(json.dumps([["nope.jpg", "Negative"]]))
    with pytest.raises(DatasetError, match=r"(?s)do not exist.*nope\.jpg"):
        scan_dataset(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(DatasetError, match="IMDL-BenCo"):
        scan_dataset(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("[[")
    with pytest.raises(DatasetError, match="cannot read the JSON"):
        scan_dataset(broken)


def test_unusable_folders_list_the_expected_layouts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"(?s)no image.*Expected one of these layouts.*Tp/"):
        scan_dataset(tmp_path / "empty")
    _img(tmp_path / "photos" / "a.jpg")
    with pytest.raises(DatasetError, match=r"(?s)1 image\(s\) but no mask.*IMDL-BenCo"):
        scan_dataset(tmp_path / "photos")
    _img(tmp_path / "half" / "Tp" / "a.jpg")
    with pytest.raises(DatasetError, match=r"(?s)Tp/ but no mask folder.*Expected"):
        scan_dataset(tmp_path / "half")
    with pytest.raises(DatasetError, match="not found"):
        scan_dataset(tmp_path / "nowhere")


def test_split_is_deterministic_order_free_and_stable(tmp_path):
    samples = [Sample(tmp_path / f"img_{i:04d}.jpg") for i in range(400)]
    train, val = split_samples(samples, val_fraction=0.2)
    assert len(train) + len(val) == 400 and 50 < len(val) < 110
    assert not {s.image for s in train} & {s.image for s in val}
    train2, val2 = split_samples(list(reversed(samples)), val_fraction=0.2)
    assert {s.image for s in val2} == {s.image for s in val}
    # Adding files never moves an existing file to the other side.
    more = samples + [Sample(tmp_path / f"new_{i}.jpg") for i in range(50)]
    assert {s.image for s in val} <= {s.image for s in split_samples(more, 0.2)[1]}
    other_salt = split_samples(samples, 0.2, salt="other")[1]
    assert {s.image for s in other_salt} != {s.image for s in val}
    assert split_samples(samples, 0.0)[1] == []


def _dataset_folder(tmp_path, n=3):
    for i in range(n):
        _img(tmp_path / "images" / f"s{i}.png", seed=i, hw=(40, 60))
        _mask(tmp_path / "masks" / f"s{i}.png", hw=(40, 60), rows=20)
    _img(tmp_path / "authentic" / "a.png", seed=9, hw=(30, 30))
    return scan_dataset(tmp_path).samples


def test_segmentation_dataset_eval_items(tmp_path):
    samples = _dataset_folder(tmp_path)
    ds = SegmentationDataset(samples, size=32, train=False)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 32, 32) and item["mask"].dtype == torch.float32
    assert item["path"] == str(samples[0].image)
    # Top half tampered in the 40x60 mask -> top 16 of 32 rows after the plain resize.
    assert item["mask"][0, :16].eq(1).all() and item["mask"][0, 16:].eq(0).all()
    authentic = next(ds[i] for i, s in enumerate(samples) if s.mask is None)
    assert authentic["mask"].sum() == 0
    # ImageNet normalisation: undoing it gives pixel values in [0, 1].
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = item["image"] * std + mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5 and pixels.std() > 0.05


def test_segmentation_dataset_augmentation_is_reproducible(tmp_path):
    samples = _dataset_folder(tmp_path)
    cfg = AugmentConfig(blur_p=0.5, jpeg_p=0.5, noise_p=0.5)
    a = SegmentationDataset(samples, size=32, augment=cfg, seed=3)
    b = SegmentationDataset(samples, size=32, augment=cfg, seed=3)
    assert torch.equal(a[1]["image"], b[1]["image"]) and torch.equal(a[1]["mask"], b[1]["mask"])
    first = a[1]["image"]
    a.set_epoch(1)
    assert not torch.equal(a[1]["image"], first)
    c = SegmentationDataset(samples, size=32, augment=cfg, seed=4)
    assert not torch.equal(c[1]["image"], first)


def test_loader_workers_give_the_same_batches(tmp_path):
    samples = _dataset_folder(tmp_path, n=4)
    ds = SegmentationDataset(samples, size=32, seed=1)
    ds.set_epoch(2)
    single = [b["image"] for b in DataLoader(ds, batch_size=2, num_workers=0)]
    multi = [b["image"] for b in DataLoader(ds, batch_size=2, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(single, multi))


def test_dataset_errors_name_the_file(tmp_path):
    bad = tmp_path / "images" / "bad.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"bad\.png"):
        SegmentationDataset([Sample(bad)], size=16)[0]
    img = _img(tmp_path / "images" / "ok.png", hw=(20, 20))
    mask = _mask(tmp_path / "masks" / "ok.png", hw=(10, 10))
    with pytest.raises(MaskError, match=r"masks/ok\.png.*images/ok\.png"):
        SegmentationDataset([Sample(img, mask)], size=16, train=False)[0]
    item = SegmentationDataset([Sample(img, mask)], size=16, train=False, resize_masks=True)[0]
    assert item["mask"][0, :8].eq(1).all() and item["mask"][0, 8:].eq(0).all()


def test_bundled_samples_form_a_dataset():
    samples_dir = Path(__file__).resolve().parents[1] / "resources" / "samples"
    index = scan_dataset(samples_dir)
    assert index.n_tampered >= 3 and index.n_authentic >= 1 and index.unpaired == []
    kinds = {s.image.stem.split("_", 1)[1] for s in index.samples if s.mask is not None}
    assert {"splice", "copy_move", "removal"} <= kinds
    for sample in index.samples:
        if sample.mask is not None:
            image, _ = read_image(sample.image)
            mask, _ = read_mask(sample.mask, image.shape[:2], image_path=sample.image)
            assert 0.02 <= mask.mean() <= 0.35


def test_the_validation_id_names_the_images_and_how_they_are_shown(tmp_path, tiny_dataset):
    """Two models' figures are comparable only on the same validation images: the id in each
    model file says which, whatever folder holds them."""
    import shutil

    from ncl_core.data.datasets import SegmentationDataset, scan_dataset
    from ncl_core.training.run_data import validation_id

    samples = scan_dataset(tiny_dataset).samples

    def vid(found, size=64, native=False):
        return validation_id([SegmentationDataset(found, size, train=False, native=native)])

    assert vid(samples) == vid(list(reversed(samples)))  # order does not matter
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    assert vid(scan_dataset(copy).samples) == vid(samples)  # nor the folder
    assert vid(samples[:-1]) != vid(samples)  # one image fewer
    assert vid(samples, size=128) != vid(samples)  # shown at another size
    assert vid(samples, native=True) != vid(samples)
