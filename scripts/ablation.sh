#!/usr/bin/env bash
# "Does NCL help?": the same data, budget and seed for three runs, then the same test.
#   (a) plain deep-supervised DeepLabV3+   --omega 0 --mu 0
#   (b) contour patches dropped            --contour-mode drop
#   (c) full NCL                           (defaults: pivot, omega 0.1, mu 0.8)
# Usage: scripts/ablation.sh DATA_DIR OUT_DIR [extra train args…]
#   DATA_DIR is what scripts/build_starter_data.sh made (photos/train, val/, test/).
# PARALLEL=1 runs the three variants at once (logs in OUT_DIR/NAME.log).
# Example (CPU, small):  scripts/ablation.sh /work/data/starter runs/ablation --steps 300 --size 256
# Example (GPU):         scripts/ablation.sh data runs/ablation --steps 2000 --size 512 \
#                          --backbone resnet101 --output-stride 8 --batch-size 16
set -euo pipefail
data=${1:?usage: ablation.sh DATA_DIR OUT_DIR [train args…]}
out=${2:?usage: ablation.sh DATA_DIR OUT_DIR [train args…]}
shift 2
cli=${NCL:-.venv/bin/ncl-forensics}
mkdir -p "$out"
declare -A variants=(
    [a_plain]="--omega 0 --mu 0"
    [b_drop]="--contour-mode drop"
    [c_ncl]=""
)
run_variant() {
    local name=$1
    shift
    # shellcheck disable=SC2086
    "$cli" train --synthetic "$data/photos/train" --val "$data/val" --seed 0 \
        --run-dir "$out/$name" --out "$out/$name.safetensors" --name "ablation-$name" \
        ${variants[$name]} "$@"
    "$cli" eval --model "$out/$name.safetensors" --data "$data/test" --json "$out/$name.eval.json"
}
# PARALLEL=1 trains the three at once (one GPU with room to spare; give each fewer --workers).
for name in a_plain b_drop c_ncl; do
    if [ "${PARALLEL:-0}" = 1 ]; then
        run_variant "$name" "$@" >"$out/$name.log" 2>&1 &
    else
        run_variant "$name" "$@"
    fi
done
if [ "${PARALLEL:-0}" = 1 ]; then
    status=0
    for job in $(jobs -p); do wait "$job" || status=1; done
    tail -n 12 "$out"/*.log
    [ "$status" = 0 ] || { echo "a variant failed: see $out/*.log" >&2; exit 1; }
fi
"${PYTHON:-.venv/bin/python}" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| variant | pixel F1 | pixel AUC | best F1 | image AUC |")
print("|---|---|---|---|---|")
for name in ("a_plain", "b_drop", "c_ncl"):
    m = json.loads((out / f"{name}.eval.json").read_text())["results"][0]["overall"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    print(f"| {name} | {fmt(m['f1'])} | {fmt(m['auc'])} | {fmt(m['best_f1'])} | {fmt(m.get('image_auc'))} |")
PY
