"""``ncl-forensics analyze --views``: one 8-bit map per view beside the model's outputs."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from ncl_core.cli import EXIT_OK, EXIT_USAGE, main

from imaging import pattern, save


def test_analyze_with_views_writes_grey_maps_and_records_each_summary(
    tmp_path, tiny_model_path, capsys
):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    # A JPEG host (quality 75) with a region pasted in afterwards without compression.
    buf = io.BytesIO()
    Image.fromarray(pattern(96, 128, seed=3, noise=10)).save(buf, "JPEG", quality=75)
    host = np.asarray(Image.open(buf)).copy()
    host[32:64, 48:80] = pattern(32, 32, seed=9, noise=10)
    exif = Image.Exif()
    exif[0x0131] = "Editor 9"
    jpg = save(evidence / "forged.jpg", host, quality=95, exif=exif.tobytes())
    png = save(evidence / "plain.png", pattern(96, 128, seed=4, noise=6))
    before = {p.name: p.read_bytes() for p in evidence.iterdir()}
    out = tmp_path / "out"

    code = main(
        [
            "analyze",
            str(jpg),
            str(png),
            "--views",
            "ela,noise,jpeg,clone,metadata",
            "--out",
            str(out),
            "--model",
            str(tiny_model_path),
            "--input-size",
            "64",
        ]
    )

    assert code == EXIT_OK
    for name in ("ela", "noise", "jpeg", "clone"):
        with Image.open(out / f"forged.{name}.png") as im:
            assert im.mode == "L" and im.size == (128, 96)
    with Image.open(out / "forged.ela.png") as im:
        ela = np.asarray(im).astype(float)
    assert ela[32:64, 48:80].mean() > 2 * ela.mean()  # the pasted square is the bright part
    record = json.loads((out / "forged.json").read_text())
    views = record["views"]
    assert set(views) == {"ela", "noise", "jpeg", "clone", "metadata"}
    assert views["jpeg"]["details"]["quality"] == 95
    assert views["ela"]["output"] == str(out / "forged.ela.png")
    assert "Editor 9" in views["metadata"]["summary"]
    assert "metadata" not in record["outputs"]  # a table, not a map

    plain = json.loads((out / "plain.json").read_text())["views"]
    assert plain["jpeg"]["applicable"] is False
    assert plain["jpeg"]["summary"].startswith("not applicable: not a JPEG file")
    assert plain["metadata"]["applicable"] is False
    assert not (out / "plain.jpeg.png").exists()
    assert (out / "plain.ela.png").is_file()
    printed = capsys.readouterr().out
    # ELA re-saves a JPEG at its own quality, a never-compressed PNG at the default.
    assert "ela: re-saved at quality 95 (the file's own quality" in printed
    assert "ela: re-saved at quality 90 (no JPEG history found" in printed
    assert {p.name: p.read_bytes() for p in evidence.iterdir()} == before


def test_unknown_view_is_a_usage_error(tmp_path, tiny_model_path, capsys):
    image = save(tmp_path / "a.png", pattern(40, 56, seed=1))
    args = ["analyze", str(image), "--views", "ela,magic", "--model", str(tiny_model_path)]
    assert main(args) == EXIT_USAGE
    assert "unknown view 'magic'" in capsys.readouterr().err


def test_ela_quality_is_chosen_or_a_usage_error(tmp_path, tiny_model_path, capsys):
    image = save(tmp_path / "a.png", pattern(40, 56, seed=1))
    args = ["analyze", str(image), "--views", "ela", "--model", str(tiny_model_path)]
    assert main([*args, "--ela-quality", "70"]) == EXIT_OK
    assert "ela: re-saved at quality 70 (chosen)" in capsys.readouterr().out
    assert main([*args, "--ela-quality", "101"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ela-quality must be a JPEG quality from 1 to 100" in err
