#!/usr/bin/env bash
# Embedding speed, qsearch (Rust, through its own embedder) side by side with Python onnxruntime
# on the same full-size Qwen3-shaped graphs. Needs the graphs and the fixtures venv
# (scripts/README.md). Run on an otherwise idle machine; compare the ratios of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv-fixtures/bin/python
for variant in int8 fp32; do
  model=target/bench-models/qwen3-full-$variant/model.onnx
  echo "== $variant: python onnxruntime"
  $py scripts/bench_python_ort.py --model "$variant=$model"
  echo "== $variant: qsearch"
  cargo bench --bench embed -- "$model"
done
