#!/usr/bin/env bash
# Generated inputs for every parser at large counts (issue 25, item 2): the properties of
# tests/generated_inputs.rs in a release build, with a random seed unless QSEARCH_SEED is given.
#
#   bash benches/generated_inputs.sh [CASES]
#
# CASES (default 200000) is the count for each cheap property (frontmatter, dates, decoding, the
# query, filters, config, tool arguments, the HTTP guard); each chunking property (HTML,
# Markdown, text, PDF pages, the real tokenizer, tool calls on a real index) runs CASES/4, and
# code chunking CASES/20 per language. A case over QSEARCH_CASE_SECS (default 10) aborts the run
# with its input; a failing property prints proptest's smallest input. The log is kept in
# target/generated_inputs.log.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-200000}"
export QSEARCH_CASES="$cases"
export QSEARCH_SEED="${QSEARCH_SEED:-random}"
export QSEARCH_CASE_SECS="${QSEARCH_CASE_SECS:-10}"
log=target/generated_inputs.log
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; QSEARCH_CASES=$cases QSEARCH_SEED=$QSEARCH_SEED"
# The binary built once and run itself, so that files changing meanwhile (a shared checkout)
# cannot rebuild it halfway.
exe=$(cargo test --release --test generated_inputs --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$exe" ] || { echo "no test binary" >&2; exit 1; }
start=$(date +%s)
status=0
"$exe" --nocapture --test-threads "$(nproc)" >"$log" 2>&1 || status=$?
grep -aE '^generated_inputs:|^test |^test result|minimal failing input|Test failed|panicked' "$log" || true
echo "wall time: $(($(date +%s) - start)) s (exit $status; log: $log)"
exit "$status"
