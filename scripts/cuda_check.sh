#!/usr/bin/env bash
# The CUDA device check of issue 10, for a GPU machine like the one in ../shared/guides/gpu.md
# (no Rust toolchain, no network: bring a release `qsearch`, ONNX Runtime's GPU libraries, the
# Qwen3 tokenizer and a corpus). Run from the repository root:
#
#   QSEARCH=bin/qsearch ORT_LIB=ort/libonnxruntime.so.1.31.1 TOKENIZER=tokenizer.json \
#   CORPUS=rust-book OUT=out bash scripts/cuda_check.sh
#
# CUDA's libraries must be on LD_LIBRARY_PATH (gpu.md says where they are on that machine).
# What it does, each step under a timeout (a provider falling back to the CPU turns seconds into
# many minutes), results under $OUT:
#   1. a full-size Qwen3-shaped fp32 graph (scripts/qwen3_graph.py) as the model folder, with the
#      tokenizer beside it;
#   2. `doctor`: the providers ONNX Runtime offers (CUDA must be among them);
#   3. `index` of the corpus on CUDA with the graph qsearch prepares for it (fp16): model tokens/s
#      from the JSON report (target >= 150,000 fp16), then the same with the fp32 export as it is
#      (`prepare_model = false`; target >= 80,000 fp32; 79,091 measured before);
#   4. one query embedded 50 times on the warm model: median ms (target <= 5 ms);
#   5. `search` without --model-dir: the index remembers its model folder (no keyword fallback);
#   6. the same texts on the CPU and on CUDA: cosine of their vectors (target >= 0.999).
# DEVICE=cpu runs the same steps on the CPU (a smoke test of the script itself).
set -euo pipefail
DEVICE=${DEVICE:-cuda}
: "${QSEARCH:?path of a release qsearch}" "${ORT_LIB:?libonnxruntime.so of onnxruntime-gpu}"
: "${TOKENIZER:?the Qwen3 tokenizer.json}" "${CORPUS:?a folder to index}" "${OUT:?where results go}"
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$WORK/model/onnx"
export QSEARCH_DATA_DIR="$WORK/data" QSEARCH_CONFIG="$WORK/none.toml" QSEARCH_INDEX="$WORK/index"
MODEL=qwen3-embedding-0.6b-fp32
Q=("$QSEARCH" --ort-lib "$ORT_LIB" --model "$MODEL")

step() { echo "== $1" | tee -a "$OUT/log.txt"; }

step "graph"
if [ ! -f "$WORK/model/onnx/model.onnx" ]; then
  timeout 300 python3 scripts/qwen3_graph.py --size full --out "$WORK/model/onnx/model.onnx" >>"$OUT/log.txt"
  # The catalog names the export's data file model.onnx_data; the script writes model.onnx.data.
  ln -sf model.onnx.data "$WORK/model/onnx/model.onnx_data"
fi
cp "$TOKENIZER" "$WORK/model/tokenizer.json"

step "doctor"
timeout 120 "${Q[@]}" --model-dir "$WORK/model" --device "$DEVICE" doctor >"$OUT/doctor.txt" 2>&1 || true
if [ "$DEVICE" = cuda ] && ! grep -q 'providers:.*CUDA' "$OUT/doctor.txt"; then
  echo "CUDA is not among ONNX Runtime's providers" | tee -a "$OUT/log.txt"
  exit 1
fi

rate() {
  python3 - "$1" "$2" <<'PY' | tee -a "$OUT/log.txt"
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}: {r['tokens']} tokens in {r['model_secs']:.1f} s = {r['tokens'] / max(r['model_secs'], 1e-9):,.0f} tokens/s; sync {r['sync_secs']:.1f} s")
PY
}

step "index on $DEVICE (prepared graph)"
timeout 900 "${Q[@]}" --model-dir "$WORK/model" --device "$DEVICE" index "$CORPUS" --json >"$OUT/index-cuda.json" 2>"$OUT/index-cuda.err"
rate "$OUT/index-cuda.json" "prepared graph"
grep -i "prepar" "$OUT/index-cuda.err" | tee -a "$OUT/log.txt" || true

step "index on $DEVICE (fp32 export as it is)"
echo "prepare_model = false" >"$WORK/fp32.toml"
QSEARCH_CONFIG="$WORK/fp32.toml" QSEARCH_INDEX="$WORK/index-fp32" timeout 900 "${Q[@]}" --model-dir "$WORK/model" --device "$DEVICE" \
  index "$CORPUS" --json >"$OUT/index-fp32.json" 2>"$OUT/index-fp32.err"
rate "$OUT/index-fp32.json" "fp32 export"

step "query latency on $DEVICE"
timeout 300 "${Q[@]}" --device "$DEVICE" embed --query "how do I borrow a value mutably" --repeat 50 >"$OUT/query-cuda.json" 2>>"$OUT/log.txt"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("query: median", round(r["median_ms"], 2), "ms on", r["device"])' "$OUT/query-cuda.json" | tee -a "$OUT/log.txt"

step "search without --model-dir"
timeout 300 "${Q[@]}" --device "$DEVICE" search "ownership and borrowing" --json >"$OUT/search.json" 2>>"$OUT/log.txt"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("search notes:", r.get("notes") or "none", "| top:", r["hits"][0]["path"])' "$OUT/search.json" | tee -a "$OUT/log.txt"

step "vectors: CPU and $DEVICE"
for text in "fn main() { println!(\"hello\"); }" "The borrow checker enforces aliasing rules." "所有权规则"; do
  for side in "a cpu" "b $DEVICE"; do
    set -- $side
    timeout 300 "${Q[@]}" --device "$2" embed "$text" >>"$OUT/vectors-$1.jsonl" 2>>"$OUT/log.txt"
  done
done
python3 - "$OUT/vectors-a.jsonl" "$OUT/vectors-b.jsonl" <<'PY' | tee -a "$OUT/log.txt"
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
for x, y in zip(a, b):
    u, v = x["embedding"], y["embedding"]
    cos = sum(p * q for p, q in zip(u, v)) / math.sqrt(sum(p * p for p in u) * sum(q * q for q in v))
    print(f"{x['device']} vs {y['device']}: cosine {cos:.6f}")
PY
