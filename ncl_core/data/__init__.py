"""Images, masks, datasets, augmentations, perturbations and synthetic forgeries.

Import from the submodules (``ncl_core.data.io`` …); importing this package loads nothing heavy.
"""
