"""CUDA paths: mixed precision, channels-last, training and inference on the GPU.

Skipped where no GPU is present (CI); run on a GPU machine with
``python -m pytest tests/test_cuda.py tests/test_metrics.py -k cuda``.
"""

import numpy as np
import pytest
import torch

from ncl_core.inference.predictor import Predictor
from ncl_core.models.modelfile import load_model
from ncl_core.network.losses import total_loss
from ncl_core.network.model import NCLNet
from ncl_core.network.net_config import LossConfig, ModelConfig
from ncl_core.settings import InferenceSettings
from ncl_core.training import Trainer

from tiny import TINY_CONFIG, tiny_train_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_training_on_cuda_uses_amp_and_writes_a_model_that_loads_on_cpu(tmp_path, tiny_dataset):
    events = []
    cfg = tiny_train_config(tmp_path, tiny_dataset, device="cuda")
    path = Trainer(cfg, events.append).fit()
    start = next(e for e in events if e["type"] == "start")
    assert "cuda" in start["device"].lower() or "nvidia" in start["device"].lower()
    assert start["amp"] in ("bfloat16", "float16")
    losses = [e["losses"]["total"] for e in events if e["type"] == "step"]
    assert len(losses) == 4 and all(np.isfinite(losses))
    model, info = load_model(path, torch.device("cpu"))
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert "f1" in info.metrics


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_are_finite_under_autocast_on_cuda(dtype):
    torch.manual_seed(0)
    model = NCLNet(ModelConfig(**TINY_CONFIG)).cuda().to(memory_format=torch.channels_last)
    images = torch.randn(2, 3, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
    masks = torch.zeros(2, 1, 64, 64, device="cuda")
    masks[0, :, 16:40, 20:44] = 1
    with torch.autocast("cuda", dtype=dtype):
        outputs = model(images, masks)
        parts = total_loss(outputs, masks, LossConfig(max_negatives=16), torch.Generator())
    assert parts["total"].dtype == torch.float32
    assert torch.isfinite(parts["total"])
    parts["total"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_gpu_inference_matches_cpu(tiny_model_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)
    cpu = Predictor.load(tiny_model_path, "cpu")
    gpu = Predictor.load(tiny_model_path, "cuda")
    for mode in ("resize", "tiled"):
        a = cpu.analyze(image, InferenceSettings(mode=mode)).probability
        b = gpu.analyze(image, InferenceSettings(mode=mode)).probability
        assert a.shape == b.shape == (96, 80)
        # The GPU runs under bf16/fp16 autocast: close, not equal.
        assert np.abs(a - b).max() < 0.05, mode
