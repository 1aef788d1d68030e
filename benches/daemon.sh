#!/usr/bin/env bash
# One warm model per machine (issue 26, item 1): the wall time of `qsearch search` (hybrid) from a
# fresh process, through a daemon (`qsearch serve`) and with `--no-daemon` (the process loads the
# model), RUNS of each, alternating, the same query each time; every pair must give the same hits.
#
#   benches/daemon.sh INDEX_DIR [RUNS] [-- QSEARCH FLAGS...]
#   QSEARCH=target/release/qsearch (default) names the binary.
#
# The index must exist (`qsearch index --model all-minilm-l6-v2 DIR`). Prints each run, then the
# median, min and max of each side.
set -euo pipefail
index=${1:?usage: benches/daemon.sh INDEX_DIR [RUNS] [-- FLAGS...]}
runs=${2:-10}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
flags=("$@")
bin=${QSEARCH:-target/release/qsearch}
query=${QUERY:-how do I handle errors when reading a file}
export QSEARCH_INDEX=$index
work=$(mktemp -d)
trap 'kill -INT $serve 2>/dev/null || true; wait $serve 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" "${flags[@]}" serve 2> "$work/serve.log" &
serve=$!
for _ in $(seq 600); do
    grep -q "answering queries" "$work/serve.log" && break
    kill -0 $serve 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.1
done
grep "answering queries" "$work/serve.log"

now() { date +%s%N; }
for i in $(seq "$runs"); do
    t=$(now); "$bin" "${flags[@]}" search --json "$query" > "$work/daemon.json"; d=$(( ($(now) - t) / 1000000 ))
    t=$(now); "$bin" "${flags[@]}" --no-daemon search --json "$query" > "$work/process.json"; p=$(( ($(now) - t) / 1000000 ))
    python3 - "$work/daemon.json" "$work/process.json" <<'EOF'
import json, sys
d, p = (json.load(open(f)) for f in sys.argv[1:])
assert d["via"] == "daemon", d["via"]
assert p["via"] == "process", p["via"]
assert d["hits"] == p["hits"], "the daemon's answer differs"
EOF
    echo "run $i: daemon ${d} ms, process ${p} ms (same hits)"
    echo "$d $p" >> "$work/times"
done
python3 - "$work/times" <<'EOF'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
for name, col in (("daemon", 0), ("process", 1)):
    xs = sorted(r[col] for r in rows)
    print(f"{name:8} median {statistics.median(xs):.0f} ms, min {xs[0]} ms, max {xs[-1]} ms ({len(xs)} runs)")
EOF
