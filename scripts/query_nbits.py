#!/usr/bin/env python3
"""Issue #26 item 6: does a 4-bit (MatMulNBits) graph embed a short query faster than int8 on this CPU,
and how close do its vectors stay to fp32?

Quantizes an fp32 Qwen3-architecture graph (scripts/qwen3_graph.py) with onnxruntime's own
`MatMulNBitsQuantizer` (round to nearest, per block of --block weights along K) for each variant
asked, caches the result under --cache, then, on 2 threads (CPU execution provider, sequential,
ORT_ENABLE_ALL, as scripts/bench_python_ort.py):

  * query{N}_ms: one N-token query (each of --query-len), median (and min) of --queries runs
    after 2 warm-ups, and the process's CPU time for it (query{N}_cpu_ms: with --no-spin, the
    work itself, which a busy machine inflates less than the wall time); the graphs timed are
    loaded together and run in turn (round-robin), so the shared machine's noise falls on all
    alike (fp32 is only a fidelity reference: --untimed). Use --no-spin when several graphs are
    timed: spinning idle threads of the sessions not running take cores from the one that is.
  * doc_tok_s: tokens/s of one --doc-len-token document (median of --doc-repeats), when --docs
  * cosine: the last token's L2-normalised hidden state against fp32's, on --texts random token
    sequences (seeded) of 8..64 tokens, or on the cases of --golden (the fidelity texts), min and mean

Variants: fp32 (the source), int8 (--int8 PATH, an export of scripts/qwen3_graph.py --int8), and
q4-b{block}{-asym}{-acc4} for each --block: symmetric unless --zero-points yes|both (asym),
accuracy_level 4 (int8 activations, the fast x86 kernels; -acc4) with --acc 4, the default fp32
compute with --acc 0, both with --acc both.

The weights are random (seeded), not Qwen3-Embedding's: quantization error on trained weights
(outliers, structure) differs, so the cosines here say nothing final about the real model.

Usage (the fixtures venv of scripts/README.md; onnxruntime 1.31's quantizer also imports onnx_ir,
which that venv lacks: `target/venv-fixtures/bin/pip install --target target/nbits-py --no-deps
onnx-ir`). Quantizing takes ~15 s a variant; the graphs are cached (~0.9 GB each):

  PYTHONPATH=target/nbits-py nice -n 10 target/venv-fixtures/bin/python scripts/query_nbits.py \
      --fp32 target/bench-models/qwen3-full-fp32/model.onnx \
      --int8 target/bench-models/qwen3-full-int8/model.onnx \
      --cache target/bench-models --block 32 --block 128 --acc 4 --query-len 1,4,10,20 --no-spin

  # fidelity on the tiny fixture's golden texts:
  PYTHONPATH=target/nbits-py target/venv-fixtures/bin/python scripts/query_nbits.py \
      --fp32 tests/fixtures/qwen3-tiny/model.onnx --int8 tests/fixtures/qwen3-tiny-int8/model.onnx \
      --golden tests/fixtures/qwen3-tiny/golden.json --cache target/tmp/nbits --tag tiny \
      --block 16 --block 32 --acc 4 --zero-points both
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


SPIN = True


def session(path: str, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not SPIN:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feeds(sess, ids: np.ndarray) -> dict[str, np.ndarray]:
    batch, seq = ids.shape
    f: dict[str, np.ndarray] = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            f[i.name] = ids
        elif i.name == "attention_mask":
            f[i.name] = np.ones((batch, seq), dtype=np.int64)
        elif i.name == "position_ids":
            f[i.name] = np.broadcast_to(np.arange(seq, dtype=np.int64), (batch, seq)).copy()
        elif i.name.startswith("past_key_values."):
            f[i.name] = np.zeros((batch, i.shape[1], 0, i.shape[3]), dtype=np.float32)
        else:
            raise SystemExit(f"don't know how to feed input {i.name}")
    return f


def last_token(sess, ids: np.ndarray) -> np.ndarray:
    out = sess.run(["last_hidden_state"], feeds(sess, ids))[0][0, -1].astype(np.float64)
    return out / np.linalg.norm(out)


def quantize(fp32: str, out: str, block: int, symmetric: bool, acc: int | None) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(onnx.load(fp32), bits=4, block_size=block, is_symmetric=symmetric, accuracy_level=acc)
    q.process()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    q.model.save_model_to_file(out, use_external_data_format=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8")
    ap.add_argument("--cache", default="target/bench-models")
    ap.add_argument("--block", type=int, action="append")
    ap.add_argument("--zero-points", choices=["no", "yes", "both"], default="no", help="asymmetric blocks")
    ap.add_argument("--acc", choices=["0", "4", "both"], default="both")
    ap.add_argument("--tag", default="full", help="name part of the cached 4-bit graphs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--query-len", default="10,35", help="query lengths in tokens, comma-separated")
    ap.add_argument("--untimed", default="fp32", help="variants measured for fidelity only, comma-separated")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--texts", type=int, default=8)
    ap.add_argument("--golden", help="golden.json whose cases' input_ids are the fidelity texts")
    ap.add_argument("--docs", action="store_true")
    ap.add_argument("--doc-len", type=int, default=512)
    ap.add_argument("--doc-repeats", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=151669)
    ap.add_argument("--no-spin", action="store_true", help="intra-op threads sleep instead of spinning (CPU time then counts work)")
    ap.add_argument("--skip-fidelity", action="store_true")
    args = ap.parse_args(argv)
    global SPIN
    SPIN = not args.no_spin

    import onnxruntime as ort

    variants = [("fp32", args.fp32)]
    if args.int8:
        variants.append(("int8", args.int8))
    accs = {"0": [0], "4": [4], "both": [0, 4]}[args.acc]
    asyms = {"no": [False], "yes": [True], "both": [False, True]}[args.zero_points]
    for block in args.block or [32]:
        for asym in asyms:
            for acc in accs:
                label = f"q4-b{block}{'-asym' if asym else ''}{'-acc4' if acc == 4 else ''}"
                path = os.path.join(args.cache, f"qwen3-{args.tag}-{label}", "model.onnx")
                if not os.path.exists(path):
                    t0 = time.perf_counter()
                    quantize(args.fp32, path, block, not asym, acc)
                    print(f"{label}: quantized in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                variants.append((label, path))

    rng = np.random.default_rng(0)
    texts = [rng.integers(0, args.vocab, size=(1, int(rng.integers(8, 65))), dtype=np.int64) for _ in range(args.texts)]
    if args.golden:
        with open(args.golden) as f:
            texts = [np.array([c["input_ids"]], dtype=np.int64) for c in json.load(f)["cases"]]
    lens = [int(n) for n in args.query_len.split(",")]
    queries = {n: rng.integers(0, args.vocab, size=(1, n), dtype=np.int64) for n in lens}
    doc = rng.integers(0, args.vocab, size=(1, args.doc_len), dtype=np.int64)

    res = {"onnxruntime": ort.__version__, "threads": args.threads, "query_lens": lens, "models": {}}
    # Fidelity: one graph at a time (fp32 is 2.4 GB).
    reference = None
    for label, path in [] if args.skip_fidelity else variants:
        sess = session(path, args.threads)
        vecs = [last_token(sess, t) for t in texts]
        if reference is None:
            reference = vecs
        cos = [float(np.dot(a, b)) for a, b in zip(vecs, reference)]
        files = [os.path.join(os.path.dirname(path), n) for n in os.listdir(os.path.dirname(path))]
        res["models"][label] = {
            "cosine_min": round(min(cos), 5),
            "cosine_mean": round(statistics.mean(cos), 5),
            "bytes_on_disk": sum(os.path.getsize(p) for p in files if p.endswith((".onnx", ".data"))),
        }
        print(json.dumps({label: res["models"][label]}), file=sys.stderr, flush=True)
        del sess
    # Speed: the timed graphs loaded together and run in turn, so that the shared machine's noise
    # falls on all of them alike.
    for label, _ in variants:
        res["models"].setdefault(label, {})
    timed = [(label, session(path, args.threads)) for label, path in variants if label not in args.untimed.split(",")]
    for n, q in queries.items():
        ts: dict[str, list[float]] = {label: [] for label, _ in timed}
        cpu: dict[str, list[float]] = {label: [] for label, _ in timed}
        for round_ in range(args.queries + 2):
            for label, sess in timed:
                f = feeds(sess, q)
                t0, c0 = time.perf_counter(), time.process_time()
                sess.run(["last_hidden_state"], f)
                if round_ >= 2:
                    ts[label].append(time.perf_counter() - t0)
                    cpu[label].append(time.process_time() - c0)
        for label, t in ts.items():
            res["models"][label][f"query{n}_ms_median"] = round(1e3 * statistics.median(t), 1)
            res["models"][label][f"query{n}_ms_min"] = round(1e3 * min(t), 1)
            res["models"][label][f"query{n}_cpu_ms_median"] = round(1e3 * statistics.median(cpu[label]), 1)
        print(json.dumps({n: {k: round(1e3 * statistics.median(v), 1) for k, v in ts.items()}}), file=sys.stderr, flush=True)
        print(json.dumps({f"{n} cpu": {k: round(1e3 * statistics.median(v), 1) for k, v in cpu.items()}}), file=sys.stderr, flush=True)
    if args.docs:
        ts = {label: [] for label, _ in timed}
        for round_ in range(args.doc_repeats + 1):
            for label, sess in timed:
                f = feeds(sess, doc)
                t0 = time.perf_counter()
                sess.run(["last_hidden_state"], f)
                if round_ >= 1:
                    ts[label].append(time.perf_counter() - t0)
        for label, t in ts.items():
            res["models"][label]["doc_tok_s"] = round(args.doc_len / statistics.median(t), 1)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
