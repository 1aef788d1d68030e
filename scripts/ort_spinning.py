#!/usr/bin/env python3
"""Does ONNX Runtime's intra-op spinning help or hurt a query session on a small machine?

A query session runs one short query now and then (a TUI keystroke, a daemon's request). After
each run ONNX Runtime's pool threads spin-wait for more work (`session.intra_op.allow_spinning`,
on by default), which keeps a core busy for a while. This runs `queries` single queries of
`tokens` tokens with a pause between them, with spinning on and off, alone and beside a busy
process (a pure-Python loop counting as fast as it can on its own), and prints each query's
latency (median, p90) and how far the busy process got meanwhile (its loops a second).

    target/venv-fixtures/bin/python scripts/ort_spinning.py target/bench-models/qwen3-full-int8/model.onnx

The graph: a Qwen3 export with past keys/values inputs (fed empty), as `scripts/qwen3_graph.py`
writes; the pause is 150 ms (typing).
"""
import multiprocessing as mp
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def busy(counter, stop):
    n = 0
    while not stop.is_set():
        for _ in range(10000):
            n += 1
        with counter.get_lock():
            counter.value += 10000


def session(path, spin):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def feeds(s, tokens):
    f = {}
    for i in s.get_inputs():
        if i.name == "input_ids":
            f[i.name] = np.full((1, tokens), 100, dtype=np.int64)
        elif i.name == "attention_mask":
            f[i.name] = np.ones((1, tokens), dtype=np.int64)
        elif i.name == "position_ids":
            f[i.name] = np.arange(tokens, dtype=np.int64)[None, :]
        else:
            f[i.name] = np.zeros((1, 8, 0, 128), dtype=np.float32)
    return f


def run(s, f, queries, pause):
    ms = []
    for _ in range(queries):
        t = time.perf_counter()
        s.run(["last_hidden_state"], f)
        ms.append((time.perf_counter() - t) * 1000)
        time.sleep(pause)
    return ms


if __name__ == "__main__":
    path = sys.argv[1]
    queries, tokens, pause = 20, 10, 0.15
    for loaded in (False, True):
        for spin in (True, False):
            s = session(path, spin)
            f = feeds(s, tokens)
            run(s, f, 3, 0.0)  # warm up
            counter, stop = mp.Value("q", 0), mp.Event()
            proc = mp.Process(target=busy, args=(counter, stop)) if loaded else None
            if proc:
                proc.start()
                time.sleep(0.5)
            c0, t0 = counter.value, time.perf_counter()
            ms = run(s, f, queries, pause)
            rate = (counter.value - c0) / (time.perf_counter() - t0)
            if proc:
                stop.set()
                proc.join()
            ms.sort()
            print(
                f"{'beside a busy process' if loaded else 'alone':<22} spinning {'on ' if spin else 'off'}: "
                f"query p50 {statistics.median(ms):6.1f} ms  p90 {ms[int(len(ms) * 0.9)]:6.1f} ms"
                + (f"  busy process {rate / 1e6:5.2f} M loops/s" if loaded else "")
            )
