"""Training in several processes (torch.distributed, gloo on the CPU): two processes of the
tiny network against one, a cancel in one process, resume, and a crash in one process.

Exact equality needs a loss the shards add up to: DDP averages the gradients of per-process
losses, each with its own batch-norm statistics (SyncBatchNorm runs on GPUs only). So the
comparison data set holds one image under eight different masks, without augmentation: every
shard has the batch statistics of the global batch, while the masks, and so the losses and
gradients, differ from item to item. The losses are then plain per-image means (PC loss without
its contour term, every image counted by the NCL loss, no sampled negatives): the global batch's
loss is the mean of the shards', and one process with the global batch follows the same
trajectory. Sharding the same items to both processes, or not averaging the gradients, breaks it.
ASPP's dropout is off in both runs (``ddp_worker.no_dropout``): its draws depend on the shape of
the batch a process holds, so they cannot match.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ncl_core.cli import _train_config, build_parser
from ncl_core.data.augment_config import AugmentConfig
from ncl_core.models.modelfile import read_model_info
from ncl_core.network.net_config import LossConfig, ModelConfig
from ncl_core.training import CHECKPOINT_NAME, TrainConfig, Trainer, TrainingError
from ncl_core.training.run_data import EpochBatches

from ddp_worker import no_dropout
from tiny import TINY_CONFIG, tiny_train_config

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_worker.py")
# The machine may be busy: generous bounds, yet a hang fails the test instead of blocking it.
RUN_TIMEOUT_S = 900
GROUP_TIMEOUT_S = "300"
pytestmark = pytest.mark.timeout(2 * RUN_TIMEOUT_S)


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
        NCL_DIST_TIMEOUT_S=GROUP_TIMEOUT_S,
        **{var: str(tmp / "home" / var) for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")},
        **{var: str(tmp / "home" / var) for var in ("XDG_CACHE_HOME", "XDG_STATE_HOME")},
    )
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


def _torchrun(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.run(
        [*command, "--nproc-per-node", "2", *args],
        cwd=ROOT,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").open(encoding="utf-8")]


def _losses(events: list[dict]) -> list[dict]:
    return [e["losses"] for e in events if e["type"] == "step"]


# -- sharding -------------------------------------------------------------------------------------
def test_each_process_gets_a_disjoint_slice_of_the_global_batch():
    single = EpochBatches(10, 4, seed=3, epoch=1, skip=0).batches
    shards = [EpochBatches(10, 2, 3, 1, 0, rank, 2).batches for rank in (0, 1)]
    assert len(single) == len(shards[0]) == len(shards[1]) == 2  # the short last batch dropped
    for whole, first, second in zip(single, *shards):
        assert first + second == whole and not set(first) & set(second)
    # A resume skips global batches: every process continues at the same one.
    for rank in (0, 1):
        assert EpochBatches(10, 2, 3, 1, 1, rank, 2).batches == shards[rank][1:]
    # One process is exactly what it always was.
    assert EpochBatches(10, 4, 3, 1, 0, 0, 1).batches == single
    with pytest.raises(TrainingError, match="global batch of 12"):
        EpochBatches(10, 4, 0, 0, 0, 0, 3)


def test_the_default_learning_rate_follows_the_global_batch_and_sync_bn_is_a_flag():
    config = TrainConfig(batch_size=2)
    assert config.base_lr(world_size=2) == pytest.approx(TrainConfig(batch_size=4).base_lr())
    args = build_parser().parse_args(["train", "--data", "d", "--sync-bn", "--nproc", "2"])
    config = _train_config(args, finetune=False)
    assert config.sync_bn and TrainConfig.from_json(config.to_json()).sync_bn


# -- two processes against one --------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_image_dataset(tmp_path_factory) -> Path:
    """One noise image under eight masks: rectangles on the 8 px patch grid, each covering at
    least two patches and leaving authentic ones."""
    root = tmp_path_factory.mktemp("oneimage")
    (root / "tampered").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for i in range(8):
        y, x = 8 * (i % 4), 8 * (i // 2)
        h, w = 16 + 8 * (i % 3), 16 + 8 * (i % 2)
        mask = np.zeros((64, 64), np.uint8)
        mask[y : y + h, x : x + w] = 255
        Image.fromarray(image).save(root / "tampered" / f"item{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"item{i}.png")
    return root


def _exact_config(tmp: Path, data: Path, batch_size: int) -> TrainConfig:
    return tiny_train_config(
        tmp,
        data,
        val=(str(data),),
        val_limit=2,
        model=ModelConfig(**TINY_CONFIG, pivot=False),
        loss=LossConfig(max_negatives=None, mu=0.0, contour_mode="drop"),
        augment=AugmentConfig.off(),
        batch_size=batch_size,
        steps=4,
        # Small steps: one image means zero variance in ASPP's pooled batch norm, whose backward
        # then scales rounding noise by 1 / sqrt(eps); the learning rate compounds it per step.
        lr=1e-3,
        # fp32: on CPUs with bf16 units training runs in bf16, whose rounding differs between
        # one batch of 4 and two of 2 by more than this comparison allows.
        amp=False,
    )


@pytest.fixture(scope="module")
def one_process_losses(tmp_path_factory, one_image_dataset) -> list[dict]:
    events = []
    tmp = tmp_path_factory.mktemp("single")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.Dropout, "forward", no_dropout)
        Trainer(_exact_config(tmp, one_image_dataset, batch_size=4), events.append).fit()
    return _losses(events)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, one_image_dataset) -> dict:
    """Two processes of batch 2: cancelled by rank 0 alone at step 2, then resumed to step 4."""
    tmp = tmp_path_factory.mktemp("ddp")
    config = _exact_config(tmp, one_image_dataset, batch_size=2)
    config_path = tmp / "config.json"
    config_path.write_text(config.to_json(), encoding="utf-8")
    first = _torchrun(tmp, str(WORKER), str(config_path), "2")
    assert first.returncode == 0, first.stderr[-4000:]
    run_dir = Path(config.run_dir)
    events = _events(run_dir)
    checkpoint = torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)
    resumed = _torchrun(tmp, str(WORKER), "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return {
        "first": events,
        "rest": _events(run_dir)[len(events) :],
        "checkpoint": checkpoint,
        "out": Path(config.out),
        "stderr": resumed.stderr,
    }


def _assert_same_losses(got: list[dict], expected: list[dict]) -> None:
    # Summation order differs (gradients are summed across processes) and grows with each
    # step; a real difference (BN statistics, dropout, another shard) is 1 % or more.
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        for key in ("total", "ncl", "pc", "pc_stage1", "pc_stage4"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-3, abs=1e-6), key


def test_two_processes_follow_one_process_with_the_same_global_batch(
    two_process_run, one_process_losses
):
    # Step 2 follows from step 1's update: the gradients were averaged over the processes.
    _assert_same_losses(_losses(two_process_run["first"]), one_process_losses[:2])


def test_a_cancel_in_rank_0_stops_every_process_and_the_run_resumes_under_ddp(
    two_process_run, one_process_losses
):
    first, rest = two_process_run["first"], two_process_run["rest"]
    cancelled = [e for e in first if e["type"] == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0]["step"] == 2
    checkpoint = two_process_run["checkpoint"]
    assert checkpoint["step"] == 2 and checkpoint["world_size"] == 2
    assert (checkpoint["epoch"], checkpoint["batch_in_epoch"]) == (0, 2)  # 2 global batches
    assert any("resumed from step 2" in e.get("message", "") for e in rest)
    _assert_same_losses(_losses(rest), one_process_losses[2:])
    finished = [e for e in rest if e["type"] == "finished"]
    assert len(finished) == 1 and finished[0]["steps"] == 4
    assert read_model_info(two_process_run["out"]).metrics


def test_rank_0_alone_writes_the_events(two_process_run):
    for events in (two_process_run["first"], two_process_run["rest"]):
        starts = [e for e in events if e["type"] == "start"]
        assert len(starts) == 1 and starts[0]["processes"] == 2
    # Rank 0 validated alone while the other waited, at each epoch's end (the first one's
    # after the resume: the cancel came at its last step).
    validations = [e["step"] for e in two_process_run["rest"] if e["type"] == "validation"]
    assert validations == [2, 4]


# -- a crash in one process -----------------------------------------------------------------------
def test_a_broken_file_in_one_process_ends_the_run_with_its_error(tmp_path, tiny_dataset):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    args = [
        "train",
        *("--data", str(data), "--size", "64", "--batch-size", "2", "--steps", "4"),
        *("--workers", "0", "--device", "cpu", "--patch-cells", "2"),
        *("--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model.safetensors")),
    ]
    # The image rank 1 reads at step 2 (and no process reads before): made unreadable.
    config = _train_config(build_parser().parse_args(args), finetune=False)
    config.run_dir = None
    train_set, _, _ = Trainer(config)._datasets()
    index = EpochBatches(len(train_set), 2, config.seed, 0, 0, 1, 2).batches[1][0]
    broken = train_set.samples[index].image
    broken.write_bytes(b"not an image at all")

    result = subprocess.run(
        [sys.executable, "-m", "ncl_core", *args, "--nproc", "2"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 1, result.stderr[-4000:]
    stderr = result.stderr
    assert f"error (rank 1): {broken}: not an image" in stderr, stderr[-4000:]
    # The last line sums it up; the process that lost its peer may fail too, saying why.
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: training stopped: ") and "rank 1 (exit code 2)" in last
    for line in stderr.splitlines():
        if "error (rank 0)" in line:
            assert "lost contact with another training process" in line
    events = _events(tmp_path / "run")
    assert [e["step"] for e in events if e["type"] == "step"] == [1]
    assert not (tmp_path / "model.safetensors").exists()
