"""Inference: the ``Predictor`` that analyzes images, the ``Analysis`` it returns, the finding an
analyst reads, the pictures drawn from it and the output files written for it."""
