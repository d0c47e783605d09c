"""Generator settings for the training forgeries (``--synthetic-config``): they reach the
training items and the run's record, validation forgeries keep the defaults, and a bad file or
field is refused before anything runs."""

from __future__ import annotations

import json

import pytest

from ncl_core.data.synth import SynthConfig, SynthDataset
from ncl_core.errors import UsageError
from ncl_core.training.run_data import build_datasets, leaf_datasets, scan_sources
from ncl_core.training.train_config import TrainConfig

PUBLISHED = {"publish_scale_p": 1.0, "publish_scale_range": [0.25, 0.5]}


def test_options_reach_the_training_forgeries_and_not_the_validation_ones(tiny_dataset):
    photos = tiny_dataset.parent / "photos"
    cfg = TrainConfig(
        synthetic=str(photos), size=64, seed=3, val_fraction=0.5, synthetic_options=PUBLISHED
    )
    data = build_datasets(cfg, scan_sources(cfg))
    (train,) = [d for d in leaf_datasets(data.train) if isinstance(d, SynthDataset)]
    (val,) = [d for d in leaf_datasets(data.val) if isinstance(d, SynthDataset)]
    assert train.config.publish_scale_p == 1.0
    assert train.config.publish_scale_range == (0.25, 0.5)  # a JSON list, back to a tuple
    assert (train.config.size, train.config.seed) == (64, 3)
    assert val.config.publish_scale_p == SynthConfig().publish_scale_p
    assert val.config.seed == 4
    assert data.trained_on["synthetic"]["options"] == PUBLISHED
    assert train[0]["image"].shape[-2:] == (64, 64)  # edited larger, published at the crop side


def test_options_survive_the_run_folder_round_trip():
    cfg = TrainConfig(synthetic="p", synthetic_options=PUBLISHED)
    back = TrainConfig.from_json(cfg.to_json())
    assert back.synthetic_options == PUBLISHED
    assert back.synth_config().publish_scale_range == (0.25, 0.5)
    assert (
        TrainConfig(synthetic="p").synth_config().to_dict()
        == SynthConfig(
            size=TrainConfig().size, authentic_fraction=TrainConfig().synthetic_authentic
        ).to_dict()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"publish_scal": 1.0}, "unknown SynthConfig field"),
        ({"publish_scale_range": [0.0, 2.0]}, "publish_scale_range"),
        ({"seed": 5}, "--seed"),
        ({"size": 128}, "--size"),
    ],
)
def test_a_bad_option_is_refused_when_the_config_is_made(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(synthetic="p", synthetic_options=options)


def test_the_flag_reads_a_json_file_and_names_it_when_it_is_wrong(tmp_path, tiny_model_path):
    from ncl_core.cli import build_parser
    from ncl_core.cli.train import train_config

    parser = build_parser()
    argv = ["finetune", "--model", str(tiny_model_path), "--synthetic", "p"]
    good = tmp_path / "publish.json"
    good.write_text(json.dumps(PUBLISHED))
    built = train_config(parser.parse_args([*argv, "--synthetic-config", str(good)]), True)
    assert built.synthetic_options == PUBLISHED
    assert train_config(parser.parse_args(argv), True).synthetic_options == {}
    for name, text in [
        ("typo.json", '{"publish_scal": 1.0}'),
        ("broken.json", "{publish"),
        ("list.json", "[0.9]"),
        ("seed.json", '{"seed": 5}'),
    ]:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(UsageError, match=name):
            train_config(parser.parse_args([*argv, "--synthetic-config", str(path)]), True)
    with pytest.raises(UsageError, match="missing.json"):
        train_config(
            parser.parse_args([*argv, "--synthetic-config", str(tmp_path / "missing.json")]), True
        )
