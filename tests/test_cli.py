"""The command line: exit codes, outputs, one-line errors."""

import argparse
import json
import shutil
import subprocess
import sys

import pytest

from ncl_core.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

from imaging import pattern, save


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "evidence"
    good = [save(folder / f"img{i}.png", pattern(40, 56, seed=i)) for i in range(2)]
    bad = folder / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return good, bad


def test_analyze_writes_outputs_and_exit_codes(tmp_path, images, tiny_model_path, capsys):
    good, bad = images
    out = tmp_path / "results"
    args = [
        "analyze",
        *map(str, good),
        "--out",
        str(out),
        "--model",
        str(tiny_model_path),
        "--input-size",
        "64",
    ]
    assert main(args) == EXIT_OK
    printed = capsys.readouterr().out
    assert printed.count("  finding: ") == 2 and "uncalibrated model" in printed
    for stem in ("img0", "img1"):
        for suffix in (".mask.png", ".heatmap.png", ".overlay.png", ".json"):
            assert (out / f"{stem}{suffix}").is_file()
    record = json.loads((out / "img0.json").read_text())
    assert (
        record["width"] == 56 and record["height"] == 40 and record["settings"]["input_size"] == 64
    )
    assert (
        main(
            [
                "analyze",
                str(good[0]),
                str(bad),
                "--model",
                str(tiny_model_path),
                "--input-size",
                "64",
            ]
        )
        == EXIT_FAILED
    )
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err


def test_output_inside_the_evidence_folder_is_refused(images, tiny_model_path, capsys):
    good, _ = images
    inside = good[0].parent / "out"
    assert (
        main(["analyze", str(good[0]), "--out", str(inside), "--model", str(tiny_model_path)])
        == EXIT_USAGE
    )
    assert "evidence folder" in capsys.readouterr().err
    assert not inside.exists()


def test_model_is_a_path_a_registry_name_or_an_id(tmp_path, images, tiny_model_path, capsys):
    from ncl_core.models.modelfile import ModelRegistry

    good, _ = images
    info = ModelRegistry().import_model(tiny_model_path)
    capsys.readouterr()
    for spec in (str(tiny_model_path), info.name, info.id, info.sha256[:8]):
        args = ["analyze", str(good[0]), "--model", spec, "--input-size", "64"]
        assert main(args) == EXIT_OK, spec
        err = capsys.readouterr().err
        assert f"({info.sha256[:12]})" in err, spec  # the same model each time
    assert main(["analyze", str(good[0]), "--model", "no-such-model"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no-such-model: ") and "models list" in err and "\n" not in err


def test_user_errors_are_one_line_with_exit_2(tmp_path, images, capsys):
    good, _ = images
    assert (
        main(["analyze", str(good[0]), "--model", str(tmp_path / "nope.safetensors")]) == EXIT_USAGE
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.safetensors" in err
    with pytest.raises(SystemExit) as exc:
        main(["analyze"])
    assert exc.value.code == EXIT_USAGE
    assert main(["models", "info", "unknown-model"]) == EXIT_USAGE


def test_debug_shows_the_traceback(tmp_path, images):
    good, _ = images
    from ncl_core.models.modelfile import ModelFileError

    with pytest.raises(ModelFileError):
        main(["--debug", "analyze", str(good[0]), "--model", str(tmp_path / "nope.safetensors")])


def test_models_import_list_default(tiny_model_path, capsys):
    assert main(["models", "import", str(tiny_model_path), "--name", "tiny"]) == EXIT_OK
    assert main(["models", "default", "tiny"]) == EXIT_OK
    capsys.readouterr()
    assert main(["models", "list"]) == EXIT_OK
    listing = capsys.readouterr().out
    assert "* " in listing and "tiny" in listing


def test_train_resume_and_eval(tmp_path, tiny_dataset, capsys):
    model = tmp_path / "m.safetensors"
    run = tmp_path / "run"
    common = [
        "--data",
        str(tiny_dataset),
        "--size",
        "64",
        "--patch-cells",
        "2",
        "--batch-size",
        "2",
        "--workers",
        "0",
    ]
    assert (
        main(["train", *common, "--steps", "2", "--out", str(model), "--run-dir", str(run)])
        == EXIT_OK
    )
    assert model.is_file() and (run / "checkpoint.pt").is_file()
    assert main(["train", "--resume", str(run)]) == EXIT_OK  # a finished run resumes to its end
    report = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model",
            str(model),
            "--data",
            str(tiny_dataset),
            "--json",
            str(report),
            "--input-size",
            "64",
            "--robustness",
            "--limit",
            "3",
        ]
    )
    assert code == EXIT_OK
    results = json.loads(report.read_text())["results"]
    assert [r["perturbation"] for r in results][:3] == [None, "resize_0.78", "resize_0.25"]
    assert len(results) == 9
    assert set(results[0]["by_kind"]) <= {"splice", "copy_move", "removal", "authentic"}
    out = capsys.readouterr().out
    assert "jpeg_50" in out and "clean" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "list"],
        # `--debug` is global, so it may come before the subcommand (that opened the GUI).
        ["--debug", "models", "list"],
    ],
)
def test_subcommands_do_not_import_qt(argv):
    code = (
        "import sys\n"
        "from app.main import main\n"
        f"rc = main({argv!r})\n"
        "sys.exit(3 if any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules) else rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ncl-starter" in result.stdout


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "ncl_core", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("ncl-forensics ")


def test_eval_skips_an_unreadable_image_names_it_and_measures_the_rest(
    tmp_path, tiny_dataset, tiny_model_path, capsys
):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    victim = sorted((data / "tampered").iterdir())[0]
    victim.write_bytes(b"\x89PNG broken")
    report = tmp_path / "eval.json"
    code = main(
        ["eval", "--model", str(tiny_model_path), "--data", str(data), "--json", str(report)]
    )
    assert code == EXIT_FAILED
    captured = capsys.readouterr()
    # The progress bar is closed first, so each message starts its own line.
    lines = captured.err.splitlines()
    assert any(line.startswith("error: ") and victim.name in line for line in lines)
    assert "1 of 10 image(s) could not be read" in captured.err
    assert "clean" in captured.out  # the table of the other nine
    result = json.loads(report.read_text())["results"][0]
    assert result["n"] == 9 and [s["image"] for s in result["skipped"]] == [str(victim)]


def test_eval_reports_the_floor_and_counts_authentic_images(
    tmp_path, tiny_dataset, tiny_model_path, capsys
):
    # The fixture holds forgeries and authentic images: every subset row counts all of its
    # images, the floor sits beside F1 in the table and in the JSON, and the image-level AUC
    # is measured because authentic images are present.
    report = tmp_path / "eval.json"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_model_path),
            "--data",
            str(tiny_dataset),
            "--json",
            str(report),
        ]
    )
    assert code == EXIT_OK
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("condition"))
    assert "floor" in header and "bestF1" in header and "imgAUC" in header
    authentic_row = next(line for line in out.splitlines() if line.split()[1:2] == ["authentic"])
    assert authentic_row.split()[2] == "2"  # not "0": both authentic images are scored
    overall = json.loads(report.read_text())["results"][0]["overall"]
    assert 0 < overall["floor_f1"] < 1 and overall["image_auc"] is not None
    assert overall["n_all"] == 10 and overall["n_tampered"] == 8
    # Beside every pixel figure, what authentic images cost: the flagged share and the share
    # of them the finding would call manipulated (the tiny model is uncalibrated: at 0.5).
    assert "authFlag" in header and "falseAl" in header
    assert 0 <= overall["authentic_flagged_median"] <= 1 and overall["alarm_threshold"] == 0.5
    assert overall["authentic_false_alarm"] in (0.0, 0.5, 1.0)


def test_flag_defaults_are_the_librarys():
    """The parser's choices and defaults are the library's: the inference ones and the forgery
    kinds from their one torch-free home (ncl_core.settings), the training ones from the
    recipes and ``TrainConfig``: bare flags give the recipe's run and nothing of the CLI's own."""
    from ncl_core.cli import SUBCOMMANDS, build_parser
    from ncl_core.cli.common import MODES as CLI_MODES
    from ncl_core.cli.synth import KINDS as CLI_KINDS
    from ncl_core.cli.train import train_config
    from ncl_core.data.synth import KINDS, SynthConfig
    from ncl_core.inference.predictor import MODES, InferenceSettings
    from ncl_core.network.net_config import ModelConfig
    from ncl_core.settings import DEFAULT_THRESHOLD
    from ncl_core.training import TrainConfig
    from ncl_core.training.recipes import SCRATCH

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert tuple(commands.choices) == SUBCOMMANDS
    assert CLI_MODES is MODES and CLI_KINDS is KINDS
    inference = InferenceSettings()
    for argv in (["analyze", "x.png"], ["batch", "x", "--report", "r"], ["eval", "--data", "d"]):
        args = parser.parse_args(argv)
        assert (args.mode, args.threshold) == (inference.mode, DEFAULT_THRESHOLD)
    assert parser.parse_args(["calibrate", "--data", "d", "--out", "o"]).mode == inference.mode
    synth = parser.parse_args(["synth", "a", "b"])
    config = SynthConfig()
    assert (synth.size, synth.seed, tuple(synth.types)) == (config.size, config.seed, config.types)
    built = train_config(parser.parse_args(["train", "--synthetic", "photos"]), finetune=False)
    expected = TrainConfig(
        synthetic="photos",
        register=True,  # no --out: the model's home is the registry
        model=ModelConfig(backbone=SCRATCH.backbone, output_stride=SCRATCH.output_stride),
        **SCRATCH.settings(),
    )
    assert built.to_dict() == expected.to_dict()
    # The one derived setting: a run whose loss needs no pivot branches builds none.
    args = parser.parse_args(["train", "--synthetic", "p", "--contour-mode", "drop"])
    assert train_config(args, finetune=False).model.pivot is False


def test_finetune_flags_for_the_decoder_and_batch_norms_reach_the_config(tiny_model_path):
    from ncl_core.cli import build_parser
    from ncl_core.cli.train import train_config

    parser = build_parser()
    argv = ["finetune", "--model", str(tiny_model_path), "--synthetic", "p"]
    plain = train_config(parser.parse_args(argv), finetune=True)
    assert (plain.head_lr_mult, plain.revive_dead, plain.freeze_bn) == (10.0, False, False)
    asked = train_config(
        parser.parse_args([*argv, "--head-lr-mult", "2", "--revive-dead", "--freeze-bn"]),
        finetune=True,
    )
    assert (asked.head_lr_mult, asked.revive_dead, asked.freeze_bn) == (2.0, True, True)
    # What a resumed run reads back from its folder.
    assert type(asked).from_json(asked.to_json()).freeze_bn
    with pytest.raises(ValueError, match="head_lr_mult"):
        train_config(parser.parse_args([*argv, "--head-lr-mult", "nan"]), finetune=True)


def test_building_the_parser_loads_no_torch():
    code = (
        "import sys\n"
        "from ncl_core.cli import build_parser\n"
        "build_parser()\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tile_and_precision_reach_every_analysis(tmp_path, images, tiny_model_path, monkeypatch):
    """The flags are used, not only accepted: analyze and batch run with them and record them."""
    from ncl_core.inference.predictor import Predictor

    good, _ = images
    asked = []
    stream = Predictor.analyze_stream

    def spy(self, sources, settings=None, **kwargs):
        asked.append(settings)
        return stream(self, sources, settings, **kwargs)

    monkeypatch.setattr(Predictor, "analyze_stream", spy)
    out = tmp_path / "single"
    args = ["analyze", str(good[0]), "--out", str(out), "--model", str(tiny_model_path)]
    assert main([*args, "--precision", "fp32", "--mode", "tiled", "--tile", "64"]) == EXIT_OK
    settings = json.loads((out / "img0.json").read_text())["settings"]
    assert (settings["precision"], settings["mode"], settings["tile"]) == ("fp32", "tiled", 64)
    report = tmp_path / "report"
    batch = ["batch", str(good[0].parent), "--report", str(report), "--model", str(tiny_model_path)]
    assert main([*batch, "--mode", "tiled", "--tile", "64", "--precision", "fp32"]) in (0, 1)
    header = json.loads((report / "results.jsonl").read_text().splitlines()[0])
    assert (header["mode"], header["tile"], header["precision"]) == ("tiled", 64, "fp32")
    assert len(asked) == 2 and all((s.tile, s.precision) == (64, "fp32") for s in asked)


def test_eval_measures_at_the_threshold_asked(tmp_path, tiny_dataset, tiny_model_path):
    # F1 at 0 is the all-manipulated floor (every pixel marked), and at 1 nothing is marked.
    args = ["eval", "--model", str(tiny_model_path), "--data", str(tiny_dataset)]
    found = {}
    for t in ("0", "1"):
        report = tmp_path / f"eval{t}.json"
        assert main([*args, "--threshold", t, "--json", str(report)]) == EXIT_OK
        found[t] = json.loads(report.read_text())["results"][0]["overall"]
    assert found["0"]["f1"] == pytest.approx(found["0"]["floor_f1"], abs=1e-6)
    assert found["1"]["f1"] == 0.0


def test_batch_pictures_flag_reaches_the_report(tmp_path, images, tiny_model_path, capsys):
    good, _ = images
    report = tmp_path / "report"
    batch = ["batch", str(good[0].parent), "--report", str(report), "--model", str(tiny_model_path)]
    assert main([*batch, "--pictures", "indicated"]) in (0, 1)
    header = json.loads((report / "results.jsonl").read_text().splitlines()[0])
    assert header["pictures"] == "indicated"
    rows = [json.loads(line) for line in (report / "results.jsonl").read_text().splitlines()[1:]]
    analyzed = [r for r in rows if r.get("status") == "ok"]
    # The untrained model finds nothing: every analyzed image has its thumbnail only.
    assert analyzed and all(r["thumbnail_path"] and not r["image_path"] for r in analyzed)
    with pytest.raises(SystemExit) as usage:
        main([*batch[:2], "--report", str(tmp_path / "r2"), "--pictures", "some"])
    assert usage.value.code == 2 and "invalid choice" in capsys.readouterr().err
