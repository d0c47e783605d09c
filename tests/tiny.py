"""The smallest real network configuration, shared by the tests."""

TINY_CONFIG = dict(backbone="resnet18", output_stride=16, patch_cells=2)
