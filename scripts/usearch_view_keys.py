#!/usr/bin/env python3
# Usage: python scripts/usearch_view_keys.py VECTOR_FILE DIMS DTYPE [REPEATS], with `pip install
# usearch==2.26.6` (the version qsearch links; its Python binding exposes enable_key_lookups).
"""Time usearch's view of a saved vector file with and without the key -> slot table (the
Python binding exposes enable_key_lookups; the Rust one does not)."""
import sys, time, statistics
from usearch.index import Index
path, ndim, dtype = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = {True: [], False: []}
for rep in range(int(sys.argv[4]) if len(sys.argv) > 4 else 5):
    for keys in (True, False):
        t = time.perf_counter()
        ix = Index(ndim=ndim, metric="cos", dtype=dtype, enable_key_lookups=keys)
        ix.view(path)
        res[keys].append((time.perf_counter() - t) * 1000)
        n = len(ix)
        del ix
for keys, ms in res.items():
    print(f"key lookups {'on ' if keys else 'off'}: view of {n} vectors p50 {statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f})")
