"""The network: NCLNet (DeepLabV3+ with the pivot branches), its backbones, the NCL and
pivot-consistent losses, patch labels, and the device it runs on."""
