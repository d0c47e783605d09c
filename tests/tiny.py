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
