"""Hostile text reaching the terminal: file names, EXIF tags and model names carry escape
sequences, carriage returns and bidirectional overrides; the CLI prints them all escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile_files import ASCII, exif_block, hashes, jpeg_with_exif
from tqdm import tqdm

from ncl_core.cli import analyze, batch, main
from ncl_core.cli.common import shown
from ncl_core.models.modelfile import save_model
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import ModelConfig

from imaging import pattern, save
from tiny import NARROW_CONFIG

CLEAR = "\x1b[2J\x1b[H"
FAKE_SCORE = "\x1b[1A\r\x1b[2Kimg: score 0.000, tampered area 0.00 %"
RLO = "\u202e"


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "evil.safetensors"
    save_model(path, NCLNet(ModelConfig(**NARROW_CONFIG)), name=f"{CLEAR}evil{RLO}gpj.exe")
    return path


def _assert_clean(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and RLO not in text, repr(text)
    assert "\x9b" not in text


def test_shown_escapes_controls_overrides_and_raw_bytes() -> None:
    assert shown("a\x1b[2J\rb") == "a\\x1b[2J\\x0db"
    assert shown(f"x{RLO}y\u2066z") == "x\\u202ey\\u2066z"
    assert shown("raw\udcff.png") == "raw\\xff.png"
    assert shown("\x9b31m") == "\\x9b31m"  # the one-byte C1 control sequence introducer
    assert shown("証拠 café.png") == "証拠 café.png"


def test_cli_output_escapes_hostile_names_tags_and_models(
    tmp_path: Path, hostile_model: Path, capsys, monkeypatch
) -> None:
    # The progress bars redraw themselves with carriage returns; nothing else may print one.
    for command in (analyze, batch):
        monkeypatch.setattr(command, "progress", lambda *a, **k: tqdm(disable=True))
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    named = save(evidence / f"a{CLEAR}b\r=1+1{RLO}gnp.png", pattern(24, 32, seed=1))
    tagged = jpeg_with_exif(evidence / "tag.jpg", exif_block([(0x0131, ASCII, FAKE_SCORE)]))
    broken = evidence / f"broken{CLEAR}.jpg"
    broken.write_bytes(b"not a jpeg\x1b[2J")
    before = hashes(evidence)
    model = ["--model", str(hostile_model), "--mode", "resize"]

    main(["analyze", str(named), str(tagged), str(broken), "--views", "metadata", *model])
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)
    text = out.out + out.err
    assert "b\\x0d=1+1\\u202egnp.png: score" in text  # shown, escaped
    assert "software: \\x1b[1A\\x0d\\x1b[2Kimg: score 0.000" in text
    assert "model \\x1b[2J\\x1b[Hevil\\u202egpj.exe" in text

    main(["batch", str(evidence), "--report", str(tmp_path / "report"), *model])
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)

    main(["models", "import", str(hostile_model)])
    main(["models", "list"])
    main(["models", "info", str(hostile_model)])
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)
    assert "evil" in out.out
    # A user error naming a hostile path is one escaped line too.
    assert main(["analyze", str(evidence / f"missing{CLEAR}.png"), *model]) != 0
    out = capsys.readouterr()
    _assert_clean(out.out + out.err)
    assert hashes(evidence) == before


def test_analyze_out_never_overwrites_earlier_outputs(
    tmp_path: Path, hostile_model: Path, capsys
) -> None:
    image = save(tmp_path / "evidence" / "photo.png", pattern(24, 32, seed=2))
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "photo.mask.png"
    earlier.write_bytes(b"an earlier analysis, kept")
    (out / "photo-2.json").write_text("{}")
    before = hashes(tmp_path / "evidence")
    assert main(["analyze", str(image), "--out", str(out), "--model", str(hostile_model)]) == 0
    assert earlier.read_bytes() == b"an earlier analysis, kept"
    assert (out / "photo-2.json").read_text() == "{}"
    assert (out / "photo-3.mask.png").is_file() and (out / "photo-3.json").is_file()
    assert "outputs written as photo-3.*" in capsys.readouterr().out
    assert hashes(tmp_path / "evidence") == before
