#!/usr/bin/env bash
# The GPU recipe of the bundled starter model and of the "does NCL help?" ablation (issue 7),
# made to fit one short lease of a single GPU. Every number below is a flag of
# `ncl-forensics train`; the defaults are the runs of 2026-11-26 (docs/BENCHMARKS.md), and the
# environment variables change them for a dry run or a longer lease.
#
#   scripts/train_gpu.sh starter  DATA OUT   # resnet18/OS16 at 512 px, bf16 AMP
#   scripts/train_gpu.sh ablation DATA OUT   # (a) plain, (b) drop, (c) NCL at 256 px, at once
#   scripts/train_gpu.sh bench    DATA OUT   # fp32 vs AMP step throughput per preset
#
# DATA (made by scripts/build_gpu_data.py) holds:
#              train/           authentic photos (forgeries are made on the fly)
#              val512/          validation forgeries at the starter's size (ncl-forensics synth)
#              abl/val, abl/test  256 px validation and held-out test forgeries for the ablation
# Dry run on a CPU:  DEVICE=cpu STARTER_STEPS=2 ABL_STEPS=2 WORKERS=0 \
#                    STARTER_SIZE=64 ABL_SIZE=64 BATCH=2 scripts/train_gpu.sh starter DATA OUT
set -euo pipefail
stage=${1:?usage: train_gpu.sh starter|ablation|bench DATA OUT}
data=${2:?usage: train_gpu.sh starter|ablation|bench DATA OUT}
out=${3:?usage: train_gpu.sh starter|ablation|bench DATA OUT}
cli=${NCL:-.venv/bin/ncl-forensics}
device=${DEVICE:-cuda}
batch=${BATCH:-32}
workers=${WORKERS:-14}
lr=${LR:-0.025}  # 0.007 x batch/4 (the default) diverges more easily from scratch at batch 32
mkdir -p "$out"

case $stage in
starter)
    "$cli" train --synthetic "$data/train" --val "$data/val512" \
        --backbone resnet18 --output-stride 16 --size "${STARTER_SIZE:-512}" \
        --batch-size "$batch" --steps "${STARTER_STEPS:-2000}" --time-limit "${STARTER_MIN:-3.5}" \
        --lr "$lr" --warmup-steps "${WARMUP:-150}" --synthetic-length $((batch * 400)) \
        --workers "$workers" --device "$device" --checkpoint-every 400 --seed 0 \
        --name ncl-starter --half --run-dir "$out/starter" --out "$out/starter/ncl-starter.safetensors"
    ;;
ablation)
    # scripts/ablation.sh wants DATA/photos/train beside DATA/val and DATA/test.
    mkdir -p "$data/abl/photos"
    ln -sfn "$(cd "$data/train" && pwd)" "$data/abl/photos/train"
    PARALLEL=1 bash "$(dirname "$0")/ablation.sh" "$data/abl" "$out/ablation" \
        --backbone resnet18 --output-stride 16 --size "${ABL_SIZE:-256}" \
        --batch-size "$batch" --steps "${ABL_STEPS:-600}" --time-limit "${ABL_MIN:-2.6}" \
        --lr "$lr" --warmup-steps "${WARMUP:-100}" --synthetic-length $((batch * 300)) \
        --workers "${ABL_WORKERS:-4}" --device "$device" --checkpoint-every 300 --half
    ;;
bench)
    "${PYTHON:-.venv/bin/python}" "$(dirname "$0")/../bench/bench_train.py" --device "$device" \
        --size 512 --batch-size 16 --steps "${BENCH_STEPS:-10}" --warmup 3 \
        --presets resnet18:16 resnet50:16 resnet101:8
    ;;
*)
    echo "unknown stage: $stage" >&2
    exit 2
    ;;
esac
