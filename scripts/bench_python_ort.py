#!/usr/bin/env python3
"""Python onnxruntime speed baseline for Qwen3-architecture graphs (the figure to beat).

Session: CPU execution provider, intra_op_num_threads=2 (default), inter_op 1, sequential
execution, graph optimisation ORT_ENABLE_ALL. Feeds are built from what the session declares:
random token ids (seeded), all-ones attention_mask, position_ids 0..n-1 and zero-length
past_key_values.* tensors.

Measures, per model:
  * doc_b1:  tokens/s on one 512-token document (median of --repeats runs)
  * doc_b8:  tokens/s on a batch of 8 x 512 tokens (median of --repeats-b8 runs)
  * query:   latency of one 40-token query in ms (median of --queries runs)
(`*_best` / `*_min` give the fastest run: on a shared, noisy machine it is the steadier figure.)
and prints one JSON object (also the node-type counts of each graph).

Usage:
  python scripts/bench_python_ort.py \
      --model fp32=target/bench-models/qwen3-full-fp32/model.onnx \
      --model int8=target/bench-models/qwen3-full-int8/model.onnx
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def op_counts(path: str) -> dict[str, int]:
    import onnx

    m = onnx.load(path, load_external_data=False)
    c: dict[str, int] = {}
    for n in m.graph.node:
        c[n.op_type] = c.get(n.op_type, 0) + 1
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def make_session(path: str, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds_for(sess, batch: int, seq: int, rng: np.random.Generator, vocab: int) -> dict[str, np.ndarray]:
    f: dict[str, np.ndarray] = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            f[i.name] = rng.integers(0, vocab, size=(batch, seq), dtype=np.int64)
        elif i.name == "attention_mask":
            f[i.name] = np.ones((batch, seq), dtype=np.int64)
        elif i.name == "position_ids":
            f[i.name] = np.broadcast_to(np.arange(seq, dtype=np.int64), (batch, seq)).copy()
        elif i.name == "token_type_ids":
            f[i.name] = np.zeros((batch, seq), dtype=np.int64)
        elif i.name.startswith("past_key_values."):
            f[i.name] = np.zeros((batch, i.shape[1], 0, i.shape[3]), dtype=np.float32)
        else:
            raise SystemExit(f"don't know how to feed input {i.name}")
    return f


def timed(sess, feeds, n: int) -> list[float]:
    out = ["last_hidden_state"]
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(out, feeds)
        ts.append(time.perf_counter() - t0)
    return ts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="LABEL=PATH (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--doc-len", type=int, default=512)
    ap.add_argument("--query-len", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5, help="runs of the 1 x doc-len batch")
    ap.add_argument("--repeats-b8", type=int, default=3, help="runs of the 8 x doc-len batch")
    ap.add_argument("--queries", type=int, default=30, help="runs of the query")
    ap.add_argument("--vocab", type=int, default=151669)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-b8", action="store_true")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    res = {"onnxruntime": ort.__version__, "python": platform.python_version(), "threads": args.threads,
           "cpu_count": os.cpu_count(), "doc_len": args.doc_len, "query_len": args.query_len, "models": {}}
    for spec in args.model:
        label, _, path = spec.partition("=")
        rng = np.random.default_rng(args.seed)
        t0 = time.perf_counter()
        sess = make_session(path, args.threads)
        r = {"path": path, "session_load_s": round(time.perf_counter() - t0, 2), "op_counts": op_counts(path)}

        q = feeds_for(sess, 1, args.query_len, rng, args.vocab)
        d1 = feeds_for(sess, 1, args.doc_len, rng, args.vocab)
        timed(sess, q, 2)  # warm-up
        timed(sess, d1, 1)
        ts = timed(sess, q, args.queries)
        r["query_ms_median"] = round(1e3 * statistics.median(ts), 2)
        r["query_ms_min"] = round(1e3 * min(ts), 2)
        ts = timed(sess, d1, args.repeats)
        r["doc_b1_s_median"] = round(statistics.median(ts), 3)
        r["doc_b1_tok_per_s"] = round(args.doc_len / statistics.median(ts), 1)
        r["doc_b1_tok_per_s_best"] = round(args.doc_len / min(ts), 1)
        if not args.skip_b8:
            d8 = feeds_for(sess, 8, args.doc_len, rng, args.vocab)
            ts = timed(sess, d8, args.repeats_b8)
            r["doc_b8_s_median"] = round(statistics.median(ts), 3)
            r["doc_b8_tok_per_s"] = round(8 * args.doc_len / statistics.median(ts), 1)
            r["doc_b8_tok_per_s_best"] = round(8 * args.doc_len / min(ts), 1)
        res["models"][label] = r
        del sess
        print(json.dumps({label: r}), file=sys.stderr, flush=True)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
