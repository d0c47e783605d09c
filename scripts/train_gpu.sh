#!/usr/bin/env bash
# GPU recipes made to fit one short lease of a single GPU. Every number below is a flag of
# `ncl-forensics train`/`finetune`; the environment variables change them for a dry run or a
# longer lease.
#
#   scripts/train_gpu.sh burst    DATA OUT   # continue the bundled model inside one window
#   scripts/train_gpu.sh starter  DATA OUT   # resnet18/OS16 at 512 px from scratch, bf16 AMP
#   scripts/train_gpu.sh ablation DATA OUT   # (a) plain, (b) drop, (c) NCL at 256 px, at once
#   scripts/train_gpu.sh bench    DATA OUT   # fp32 vs AMP step throughput per preset
#   scripts/train_gpu.sh selfsup  DATA OUT   # the self-supervised stage against none, at equal budget
#
# A burst warm-starts from BASE (default: the bundled model), so every GPU window continues
# the last one; its learning rate follows the clock to zero at BURST_MIN minutes, it writes
# fp16 weights every SNAPSHOT_S seconds (OUT/burst/snapshot.safetensors: a run cut off from
# outside still returns a model) and stops by itself inside the window. Forgeries are made on
# the machine's own CPU cores from DATA/train. Afterwards, on the CPU: `ncl-forensics eval` of
# OUT/burst/*.safetensors on the real yardstick; it replaces the bundled model only when better
# there and no worse on the synthetic test.
#
# DATA (made by scripts/build_gpu_data.py) holds:
#              train/           authentic photos at native resolution (forgeries made on the fly)
#              val/             a labeled validation set (real forgeries select the model)
#              val512/          validation forgeries at the starter's size (ncl-forensics synth)
#              abl/val, abl/test  256 px validation and held-out test forgeries for the ablation
# selfsup: (a) `pretrain --noise-stem` on DATA/train for PRE_MIN minutes, then `train
# --init-encoder` for TRAIN_MIN; (b) `train --noise-stem` from scratch for PRE_MIN + TRAIN_MIN,
# the same recipe and seed otherwise. Both are judged afterwards, on the CPU, like any model
# (calibrate, then bench/bench_yardstick.py); bench/bench_encoder_probe.py reads the encoder.
# Dry run on a CPU:  DEVICE=cpu BURST_MIN=0.3 SNAPSHOT_S=5 BATCH=2 WORKERS=0 SIZE=64 \
#                    scripts/train_gpu.sh burst DATA OUT
#                    DEVICE=cpu STARTER_STEPS=2 ABL_STEPS=2 WORKERS=0 \
#                    STARTER_SIZE=64 ABL_SIZE=64 BATCH=2 scripts/train_gpu.sh starter DATA OUT
#                    DEVICE=cpu PRE_MIN=0.2 TRAIN_MIN=0.2 BATCH=2 WORKERS=0 SIZE=64 CROP=64 \
#                    scripts/train_gpu.sh selfsup DATA OUT
set -euo pipefail
stage=${1:?usage: train_gpu.sh burst|starter|ablation|selfsup|bench DATA OUT}
data=${2:?usage: train_gpu.sh burst|starter|ablation|selfsup|bench DATA OUT}
out=${3:?usage: train_gpu.sh burst|starter|ablation|selfsup|bench DATA OUT}
cli=${NCL:-.venv/bin/ncl-forensics}
device=${DEVICE:-cuda}
batch=${BATCH:-32}
workers=${WORKERS:-14}
lr=${LR:-0.025}  # 0.007 x batch/4 (the default) diverges more easily from scratch at batch 32
mkdir -p "$out"

case $stage in
burst)
    "$cli" finetune --model "${BASE:-resources/models/ncl-starter.safetensors}" \
        --synthetic "$data/train" --val "$data/val" --val-limit "${VAL_LIMIT:-60}" \
        --synthetic-authentic "${AUTHENTIC:-0.4}" --image-weight "${IMAGE_WEIGHT:-1.0}" \
        --size "${SIZE:-256}" --batch-size "$batch" --lr "${BURST_LR:-0.005}" \
        --warmup-steps "${WARMUP:-50}" --steps 1000000 --time-limit "${BURST_MIN:-11}" \
        --schedule-by-time --ema "${EMA:-0.999}" --snapshot-every "${SNAPSHOT_S:-60}" \
        --synthetic-length $((batch * ${EPOCH_STEPS:-300})) --workers "$workers" \
        --device "$device" --checkpoint-every 500 --seed "${SEED:-$(date +%s)}" --half \
        --name "${NAME:-ncl-burst}" --run-dir "$out/burst" --out "$out/burst/best.safetensors"
    ;;
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
selfsup)
    pre=${PRE_MIN:-3}
    more=${TRAIN_MIN:-3.5}
    both=$(awk "BEGIN { print $pre + $more }")
    "$cli" pretrain --photos "$data/train" --noise-stem --crop "${CROP:-128}" \
        --batch-size "${PRE_BATCH:-64}" --steps 1000000 --time-limit "$pre" \
        --workers "$workers" --device "$device" --seed 0 --out "$out/selfsup/encoder.safetensors"
    common=(--synthetic "$data/train" --val "$data/val512" --backbone resnet18 --output-stride 16
        --size "${SIZE:-256}" --batch-size "$batch" --steps 1000000 --lr "$lr"
        --warmup-steps "${WARMUP:-150}" --synthetic-length $((batch * 400)) --schedule-by-time
        --workers "$workers" --device "$device" --checkpoint-every 400 --seed 0 --half)
    "$cli" train "${common[@]}" --init-encoder "$out/selfsup/encoder.safetensors" \
        --time-limit "$more" --name ncl-selfsup --run-dir "$out/selfsup/run" \
        --out "$out/selfsup/ncl-selfsup.safetensors"
    "$cli" train "${common[@]}" --noise-stem --time-limit "$both" --name ncl-scratch \
        --run-dir "$out/scratch/run" --out "$out/scratch/ncl-scratch.safetensors"
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
