"""Evaluation: metrics, evaluating a model on labeled data, calibrating it, and measuring
the structure a map owes to the method rather than to the image."""
