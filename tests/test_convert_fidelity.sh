#!/usr/bin/env bash
# Weight-quantization fidelity of `zipcache convert`: TinyStories-656K as GGUF
# F32 is the reference; its Q8_0 and Q4_0 conversions must stay close in
# next-token distributions over a TinyStories passage (mean KL and top-1
# agreement from `eval ppl --kl-base`). The numbers are printed so the run
# log doubles as the report.
set -u
BIN=${ZIPCACHE_BIN:?}
ASSETS=${ZIPCACHE_ASSETS:?}
HF=$ASSETS/models/tinystories656K
TEXT=$ASSETS/data/tinystories/validation_head.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ ! -d "$HF" ] || [ ! -f "$TEXT" ]; then
    for t in convert_q8_0_close_to_f32 convert_q4_0_close_to_f32; do echo "SKIP $t: tinystories656K or its text missing"; done
    exit 0
fi

"$BIN" convert "$HF" -o "$TMP/f32.gguf" --type f32 2>/dev/null &&
    "$BIN" eval ppl -m "$TMP/f32.gguf" -f "$TEXT" -c 512 --chunks 4 --kv fp16 --no-progress \
        --save-kl-base "$TMP/base.bin" >/dev/null 2>&1 || { echo "FAIL convert_reference: f32 base failed"; exit 1; }

# type, max mean KL, min top-1 agreement
check_type() {
    local type=$1 max_kl=$2 min_top1=$3
    "$BIN" convert "$HF" -o "$TMP/$type.gguf" --type "$type" 2>/dev/null &&
        "$BIN" eval ppl -m "$TMP/$type.gguf" -f "$TEXT" -c 512 --chunks 4 --kv fp16 --no-progress \
            --kl-base "$TMP/base.bin" --json "$TMP/$type.json" >/dev/null 2>&1
    local rc=$?
    local verdict
    verdict=$(/usr/bin/python3 - "$TMP/$type.json" "$max_kl" "$min_top1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
kl, top1 = r["kl_mean"], r["top1_agreement"]
ok = kl <= float(sys.argv[2]) and top1 >= float(sys.argv[3])
print(("ok" if ok else "bad") + f" mean KL {kl:.6f}, top-1 agreement {top1:.4f}, ppl ratio {r['ppl_ratio']:.4f} over {r['scored_tokens']} tokens")
PY
)
    echo "  $type vs f32: $verdict" >&2
    if [ $rc -eq 0 ] && [ "${verdict%% *}" = ok ]; then echo "PASS convert_${type}_close_to_f32"
    else echo "FAIL convert_${type}_close_to_f32: $verdict"; fi
}
# Bounds are regression guards around what was measured (2026-11-23):
#   q8_0: mean KL 0.00087, top-1 0.966, ppl ratio 1.001
#   q4_0: mean KL 0.105,   top-1 0.748, ppl ratio 1.085 (a 128-wide model has no
#         redundancy to hide 4-bit weight error; bit-exactness of the q4_0 blocks
#         themselves is tested in test_ggml_blocks)
check_type q8_0 0.003 0.94
check_type q4_0 0.15 0.70
