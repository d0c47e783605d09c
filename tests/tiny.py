"""The smallest real network configuration, shared by the tests."""

TINY_CONFIG = dict(backbone="resnet18", output_stride=16, patch_cells=2)

# Narrower still, for tests that run many images: same architecture, a fraction of the work.
NARROW_CONFIG = dict(
    backbone="resnet18",
    output_stride=16,
    aspp_channels=16,
    low_level_channels=8,
    decoder_channels=16,
    pivot=False,
    stage3_channels=8,
    stage4_channels=8,
)


def tiny_train_config(tmp_path, data, **overrides):
    """A TrainConfig for a few fast steps of the tiny network on ``data``, writing under tmp_path."""
    from ncl_core.network.net_config import LossConfig, ModelConfig
    from ncl_core.training import TrainConfig

    settings = dict(
        data=(str(data),),
        out=str(tmp_path / "model.safetensors"),
        model=ModelConfig(**TINY_CONFIG),
        loss=LossConfig(max_negatives=16),
        size=64,
        batch_size=2,
        steps=4,
        workers=0,
        run_dir=str(tmp_path / "run"),
        checkpoint_every=100,
        val_fraction=0.25,
    )
    settings.update(overrides)
    return TrainConfig(**settings)
