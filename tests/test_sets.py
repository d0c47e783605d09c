"""Labeled sets: copies of images with their masks in the user's data folder, the CLI's
``sets`` and ``finetune --set``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ncl_core.cli import EXIT_OK, EXIT_USAGE, main
from ncl_core.data.datasets import scan_dataset
from ncl_core.errors import MaskError
from ncl_core.training.labeled_sets import LabeledSets, SetError, sets_dir


def _image(path, seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _mask(path, box=(10, 10, 30, 30), size=(48, 40)):
    mask = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)
    return path


def test_an_image_is_copied_with_its_hash_and_source_and_the_evidence_is_untouched(tmp_path):
    evidence = _image(tmp_path / "case" / "photo.png")
    before = (evidence.read_bytes(), evidence.stat().st_mtime_ns, sorted(evidence.parent.iterdir()))
    mask = _mask(tmp_path / "masks" / "photo-mask.png")
    sets = LabeledSets()
    item = sets.add("cases", evidence, mask)
    assert sets.root == sets_dir()
    labeled = sets.get("cases")
    assert (labeled.path / item.image).read_bytes() == evidence.read_bytes()
    import hashlib

    assert item.sha256 == hashlib.sha256(evidence.read_bytes()).hexdigest()
    assert item.source == str(evidence.resolve())
    assert item.marked == pytest.approx(400 / (48 * 40))
    stored = np.asarray(Image.open(labeled.path / item.mask))
    assert stored.shape == (40, 48) and set(np.unique(stored)) == {0, 255}
    assert (evidence.read_bytes(), evidence.stat().st_mtime_ns) == before[:2]
    assert sorted(evidence.parent.iterdir()) == before[2]  # nothing written beside it

    # The set is a dataset training reads as it is.
    index = scan_dataset(labeled.path)
    assert index.n_tampered == 1 and not index.unpaired


def test_the_same_image_again_corrects_its_mask_and_an_empty_mask_is_authentic(tmp_path):
    evidence = _image(tmp_path / "a.png")
    sets = LabeledSets()
    sets.add("s", evidence, _mask(tmp_path / "m1.png"))
    corrected = np.zeros((40, 48), bool)
    corrected[0:5, 0:5] = True
    item = sets.add("s", evidence, corrected)
    labeled = sets.get("s")
    assert len(labeled.items) == 1 and item.marked == pytest.approx(25 / (48 * 40))
    authentic = sets.add("s", _image(tmp_path / "b.png", seed=1), np.zeros((40, 48), bool))
    assert authentic.mask is None and authentic.image.startswith("authentic/")
    labeled = sets.get("s")
    assert (labeled.n_tampered, labeled.n_authentic) == (1, 1)
    index = scan_dataset(labeled.path)
    assert (index.n_tampered, index.n_authentic) == (1, 1)


def test_user_errors_name_the_file_and_what_to_do(tmp_path):
    sets = LabeledSets()
    evidence = _image(tmp_path / "photo.png")
    wrong = _mask(tmp_path / "small.png", size=(20, 20), box=(0, 0, 5, 5))
    with pytest.raises(MaskError, match="small.png.*photo.png"):
        sets.add("s", evidence, wrong)
    with pytest.raises(SetError, match="image's size"):
        sets.add("s", evidence, np.zeros((3, 3), bool))
    for bad in ("", "../up", ".hidden", "a/b", "x" * 65):
        with pytest.raises(SetError, match="cannot name a set"):
            sets.add(bad, evidence, np.zeros((40, 48), bool))
    with pytest.raises(SetError, match="no labeled set named 'nope'"):
        sets.get("nope")
    assert sets.list() == []  # nothing half-made by the refusals


def test_remove_and_export(tmp_path):
    sets = LabeledSets()
    first = sets.add("s", _image(tmp_path / "a.png"), _mask(tmp_path / "ma.png"))
    sets.add("s", _image(tmp_path / "b.png", seed=2), _mask(tmp_path / "mb.png"))
    out = sets.export("s", tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["masks", "set.json", "tampered"]
    assert scan_dataset(out).n_tampered == 2
    with pytest.raises(SetError, match="not an empty folder"):
        sets.export("s", out)
    sets.remove("s", first.id[:8])
    assert len(sets.get("s").items) == 1
    assert not (sets.get("s").path / first.image).exists()
    assert (tmp_path / "a.png").is_file()  # the original stays
    sets.remove("s")
    assert sets.names() == []


def test_the_sets_command(tmp_path, capsys):
    image, mask = _image(tmp_path / "case" / "p.png"), _mask(tmp_path / "p-mask.png")
    assert main(["sets", "add", "mine", str(image), str(mask)]) == EXIT_OK
    assert "holds 1 image" in capsys.readouterr().out
    assert main(["sets", "list"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("mine\t1 image(s)")
    assert main(["sets", "list", "mine"]) == EXIT_OK
    assert str(image.resolve()) in capsys.readouterr().out
    assert main(["sets", "export", "mine", str(tmp_path / "out")]) == EXIT_OK
    assert (tmp_path / "out" / "masks").is_dir()
    assert main(["sets", "add", "mine", str(image), str(tmp_path / "missing.png")]) == EXIT_USAGE
    assert "missing.png" in capsys.readouterr().err
    assert main(["sets", "remove", "mine"]) == EXIT_OK
    assert main(["sets", "list", "mine"]) == EXIT_USAGE


def test_finetune_on_a_set_holds_part_of_it_out_and_records_the_set(
    tmp_path, tiny_dataset, tiny_model_path, capsys
):
    from ncl_core.models.modelfile import read_model_info

    sets = LabeledSets()
    index = scan_dataset(tiny_dataset)
    for sample in index.samples:
        mask = sample.mask if sample.mask else np.zeros(Image.open(sample.image).size[::-1], bool)
        sets.add("tiny", sample.image, mask)
    out = tmp_path / "ft.safetensors"
    args = ["finetune", "--set", "tiny", "--model", str(tiny_model_path), "--steps", "1"]
    args += ["--size", "64", "--batch-size", "2", "--workers", "0", "--time-limit", "0"]
    args += ["--contour-mode", "drop", "--device", "cpu", "--out", str(out)]
    assert main(args) == EXIT_OK
    info = read_model_info(out)
    assert info.trained_on["set"] == {"name": "tiny", "images": 10, "held_out": 3}
    assert info.trained_on["n_val"] == 3 and info.trained_on["n_train"] == 7
    assert "held out of the set tiny: 3 of 10" in json.dumps(info.trained_on)
    # The base model was measured on the held-out images first: the before beside the after.
    assert {"f1", "auc", "floor_f1"} <= set(info.trained_on["baseline"])
    printed = capsys.readouterr()
    assert "before fine-tuning, the base model on the validation images" in printed.out
    # ... and the run ends with the table of both and the held-out images drawn by both.
    table = printed.out[printed.out.index("before and after fine-tuning on 3 validation") :]
    assert "F1 at 0.5" in table and "pixel AUC" in table and "the floor" in table
    pictures = sorted(Path(table.split("side by side: ")[1].split()[0]).glob("*.png"))
    assert 1 <= len(pictures) <= 3
    strip = np.asarray(Image.open(pictures[0]))
    assert strip.shape[1] > 3 * strip.shape[0]  # four panels side by side
    assert main(["finetune", "--set", "absent"]) == EXIT_USAGE
    assert "no labeled set named 'absent'" in capsys.readouterr().err
