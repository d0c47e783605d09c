#!/usr/bin/env bash
# Build the starter model's data from the photo pool (scripts/build_photo_pool.sh):
# split the pool by *source photo* into train / val / test (by a hash of the photo's folder
# name, so the split never depends on order), then make the held-out forgeries with
# `ncl-forensics synth`. Training itself draws forgeries on the fly from the train photos.
#   scripts/build_starter_data.sh POOL_DIR OUT_DIR
set -euo pipefail
pool=${1:?usage: build_starter_data.sh POOL_DIR OUT_DIR}
out=${2:?usage: build_starter_data.sh POOL_DIR OUT_DIR}
cli=${NCL:-.venv/bin/ncl-forensics}
mkdir -p "$out/photos/train" "$out/photos/val" "$out/photos/test"
for dir in "$pool"/*/; do
    name=$(basename "$dir")
    bucket=$(( 0x$(printf '%s' "$name" | sha256sum | cut -c1-4) % 10 ))
    split=train
    [ "$bucket" -eq 8 ] && split=val
    [ "$bucket" -eq 9 ] && split=test
    cp -al "$dir" "$out/photos/$split/$name" 2>/dev/null || cp -r "$dir" "$out/photos/$split/$name"
done
for split in train val test; do
    echo "$split: $(ls "$out/photos/$split" | wc -l) source photos"
done
# Validation at the training size; test at 512 px (resize mode brings it to the model's size).
"$cli" synth "$out/photos/val" "$out/val" --count 120 --size 256 --seed 101 --authentic-fraction 0.25
"$cli" synth "$out/photos/test" "$out/test" --count 300 --size 512 --seed 202 --authentic-fraction 0.25 --format jpg
