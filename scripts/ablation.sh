#!/usr/bin/env bash
# "Does NCL help?": the same data, budget and seed for each variant, then the same tests.
#   a_plain  plain deep-supervised DeepLabV3+: no contrastive loss, no pivots   --omega 0
#   b_drop   NCL without pivots (contour patches left out of the loss)         --contour-mode drop
#   c_ncl    full NCL (pivots, omega 0.1, mu 0.8)                              (defaults)
#   d_noise  full NCL with the noise-aware stem                                --noise-stem
#   e_ema    $EMA_OF (default c_ncl) with an EMA of the weights                --ema 0.999
# Usage: [VARIANTS="a_plain b_drop"] [REAL="DIR [AUTH_DIR]"] scripts/ablation.sh DATA OUT [train args…]
#   DATA is what scripts/build_starter_data.sh made (photos/train, val/, test/). REAL names the
#   real-forgery yardstick (and a folder of authentic photos, for the image AUC); every variant is
#   evaluated on it in resize mode as well as on DATA/test.
# PARALLEL=1 trains the variants at once (logs in OUT/NAME.log); on a CPU, give each one thread
# (OMP_NUM_THREADS=1) and run as many at once as there are cores.
# Example (CPU): REAL="nist16 authentic" scripts/ablation.sh data/starter runs/ablation \
#                    --steps 600 --size 256 --batch-size 8 --workers 1
set -euo pipefail
data=${1:?usage: ablation.sh DATA OUT [train args…]}
out=${2:?usage: ablation.sh DATA OUT [train args…]}
shift 2
cli=${NCL:-.venv/bin/ncl-forensics}
mkdir -p "$out"
declare -A variants=(
    [a_plain]="--omega 0"
    [b_drop]="--contour-mode drop"
    [c_ncl]=""
    [d_noise]="--noise-stem"
)
ema_of=${EMA_OF:-c_ncl}
variants[e_ema]="${variants[$ema_of]} --ema 0.999"
names=${VARIANTS:-a_plain b_drop c_ncl d_noise e_ema}
run_variant() {
    local name=$1
    shift
    if [ ! -f "$out/$name.safetensors" ]; then
        # shellcheck disable=SC2086
        "$cli" train --synthetic "$data/photos/train" --val "$data/val" --seed 0 \
            --run-dir "$out/$name" --out "$out/$name.safetensors" --name "ablation-$name" \
            ${variants[$name]} "$@"
    fi
    "$cli" eval --model "$out/$name.safetensors" --data "$data/test" --mode resize \
        --json "$out/$name.synth.json" >"$out/$name.synth.txt"
    if [ -n "${REAL:-}" ]; then
        # shellcheck disable=SC2086
        "$cli" eval --model "$out/$name.safetensors" --data $REAL --mode resize \
            --json "$out/$name.real.json" >"$out/$name.real.txt"
    fi
}
for name in $names; do
    if [ "${PARALLEL:-0}" = 1 ]; then
        run_variant "$name" "$@" >"$out/$name.log" 2>&1 &
    else
        run_variant "$name" "$@"
    fi
done
if [ "${PARALLEL:-0}" = 1 ]; then
    status=0
    for job in $(jobs -p); do wait "$job" || status=1; done
    [ "$status" = 0 ] || { echo "a variant failed: see $out/*.log" >&2; exit 1; }
fi
"${PYTHON:-.venv/bin/python}" - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
print("| variant | set | F1@0.5 | best F1 | floor | AUC | image AUC |")
print("|---|---|---|---|---|---|---|")
for path in sorted(out.glob("*.json")):
    if not path.name.endswith((".real.json", ".synth.json")):
        continue
    name, kind = path.name.split(".")[:2]
    m = json.loads(path.read_text())["results"][0]["overall"]
    cells = [m["f1"], m["best_f1"], m["floor_f1"], m["auc"], m.get("image_auc")]
    print(f"| {name} | {kind} | " + " | ".join(fmt(v) for v in cells) + " |")
PY
