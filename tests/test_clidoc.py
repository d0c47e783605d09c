from pathlib import Path

from ncl_core.clidoc import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "CLI.md"


def test_cli_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/CLI.md is out of date: run `python -m ncl_core.clidoc > docs/CLI.md`"
    )


def test_cli_doc_names_every_subcommand():
    text = DOC.read_text(encoding="utf-8")
    for name in ("analyze", "batch", "train", "finetune", "eval", "synth", "models"):
        assert f"## `ncl-forensics {name}`" in text
