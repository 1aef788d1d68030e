#!/usr/bin/env python3
"""The GPU check itself, run by `bash scripts/gpu/run check` on the lent GPU machine (issue 23).

Why this exists: the machine is lent briefly (15 minutes, one 10-minute command for this), so
the whole check is one command whose every step has its own time-out, which asserts the targets
itself and leaves exactly two files: gpu-check.json (written again after every step, so a run cut
short still says how far it got) and gpu-check.log (every command, its output, its time).

Steps, in order; a preparation step that fails stops the check:
  assemble   join the parts (~/qsearch-gpu/parts, or carried in target/gpu-bundle/parts) after
             checking each part's and the whole archive's sha256 (scripts/gpu/parts.py)
  unpack     zstd with pyarrow (the machine has no zstd binary), tar into ~/qsearch-gpu/bundle
  env        LD_LIBRARY_PATH: the `nvidia` packages' lib folders of this python, then ort/
  binary     bin/qsearch --version: the binary starts
  graph      the full-size Qwen3-shaped graph (qwen3_graph.py; QSEARCH_GPU_GRAPH=tiny: the tiny
             one, for scripts/gpu/rehearse) and the tokenizer as the model folder
then the measurements, whose time-outs sum to at most 8 minutes:
  doctor       `doctor --device cuda`: ONNX Runtime must list CUDA among its providers, and its
               `device: cuda:` line (the model loaded on CUDA, one query embedded) must say
               `on CUDA`; this also makes and caches the fp16 graph index_fp16 uses
  index_fp16   `index rust-book --device cuda` with the graph qsearch prepares for CUDA (fp16)
  index_fp32   the same with `prepare_model = false` (the fp32 export as it is)
  query_cuda   `embed --query ... --repeat 50`: the median of one query on the warm model
  index_cpu    a sample of the corpus's files on the CPU (fp32 as is): the reference vectors
  query_cpu    the same query on the CPU
and from these: tokens/s (tokens / model_secs), the cosine of CPU and CUDA vectors of the same
chunk texts (joined on the chunk hash in each index's SQLite) and of the query, and the sync
figure (the corpus's bytes / sync_secs, the better of the two CUDA runs).

QSEARCH_GPU_DEVICE=cpu (scripts/gpu/rehearse only) runs the same steps with --device cpu where
they would use CUDA: a rehearsal of the steps' plumbing (outputs parsed, indexes joined, figures
computed) with the real binary; it always fails, saying so.

Anything that should have run on CUDA and ran on the CPU (the `on CPU (CUDA unavailable: ...)`
line of index, the `device` of embed's JSON, or an exit naming CUDA) fails the check as "CUDA
unavailable"; the CUDA steps after it are skipped, since each would crawl on the CPU to its
time-out. Exit status: 0 when every target is met, else 1, naming every target missed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time

sys.dont_write_bytecode = True  # nothing new in the repository: every run carries its files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parts  # noqa: E402

MODEL = "qwen3-embedding-0.6b-fp32"
QUERY = "how do I borrow a value mutably"
TARGETS = {  # name: (threshold, "min" = at least / "max" = at most)
    "fp16_tokens_per_s": (150_000, "min"),
    "fp32_tokens_per_s": (80_000, "min"),
    "query_median_ms": (5.0, "max"),
    "cosine_fp16": (0.999, "min"),
    "cosine_fp32": (0.99999, "min"),
    "sync_mb_per_s": (20.0, "min"),
}
# Time-outs in seconds. Preparation: the graph took 18 s on an H200.
PREP_TIMEOUTS = {"assemble": 20, "unpack": 30, "env": 10, "binary": 10, "graph": 60}
# Measurements: one command of at most 8 minutes. doctor loads the model on CUDA and so makes
# (and caches) the fp16 graph that index_fp16 then uses.
MEASURE_TIMEOUTS = {"doctor": 90, "index_fp16": 120, "index_fp32": 90, "query_cuda": 45,
                    "index_cpu": 60, "query_cpu": 30}
MEASURE_BUDGET = 480
assert sum(MEASURE_TIMEOUTS.values()) <= MEASURE_BUDGET
# The whole `run check` is one device command of at most 10 minutes.
assert sum(PREP_TIMEOUTS.values()) + sum(MEASURE_TIMEOUTS.values()) <= 570
SAMPLE_BYTES = 24_000  # corpus files embedded on the CPU for the reference vectors


class StepFailed(Exception):
    pass


class CudaUnavailable(StepFailed):
    pass


class TimedOut(StepFailed):
    pass


def _alarm(signum, frame):
    raise TimedOut("timed out")


class Check:
    def __init__(self, store: str, carried: str, out: str, graph: str, device: str):
        self.store, self.carried, self.out, self.graph, self.dev = store, carried, out, graph, device
        self.bundle = os.path.join(store, "bundle")
        self.work = os.path.join(store, "work")
        self.json_path = os.path.join(out, "gpu-check.json")
        self.log = open(os.path.join(out, "gpu-check.log"), "w", buffering=1)
        self.env = dict(os.environ)
        self.r = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "graph": graph,
            "device": device,
            "timeouts_s": {"prep": PREP_TIMEOUTS, "measure": MEASURE_TIMEOUTS,
                           "measure_sum": sum(MEASURE_TIMEOUTS.values()), "measure_budget": MEASURE_BUDGET},
            "targets": {k: {"threshold": v, "kind": kind} for k, (v, kind) in TARGETS.items()},
            "steps": [],
            "figures": {},
            "cuda_unavailable": None,
            "failures": [],
            "ok": None,
        }
        self.save()

    # --- bookkeeping ----------------------------------------------------------------------------
    def say(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        self.log.write(line + "\n")

    def save(self) -> None:
        tmp = self.json_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.r, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.json_path)

    def step(self, name: str, timeout: int, fn, in_process: bool = False):
        """Runs fn() as step `name`; records ok/secs/detail. Returns fn's value, or None on failure."""
        self.say(f"== {name} (timeout {timeout} s)")
        start = time.monotonic()
        rec = {"name": name, "timeout_s": timeout}
        try:
            if in_process:  # python work in this process: an alarm bounds it
                signal.signal(signal.SIGALRM, _alarm)
                signal.alarm(timeout)
            try:
                value = fn(timeout)
            finally:
                if in_process:
                    signal.alarm(0)
            rec.update(ok=True, detail=value.get("detail") if isinstance(value, dict) else None)
        except StepFailed as e:
            value = None
            rec.update(ok=False, detail=str(e))
            if isinstance(e, CudaUnavailable) and not self.r["cuda_unavailable"]:
                self.r["cuda_unavailable"] = f"{name}: {e}"
            self.say(f"   FAILED: {e}")
        except Exception as e:  # a bug or an unexpected environment: still recorded
            value = None
            rec.update(ok=False, detail=f"{type(e).__name__}: {e}")
            self.say(f"   FAILED: {type(e).__name__}: {e}")
        rec["secs"] = round(time.monotonic() - start, 2)
        if rec["ok"]:
            self.say(f"   ok in {rec['secs']} s" + (f": {rec['detail']}" if rec["detail"] else ""))
        self.r["steps"].append(rec)
        self.save()
        return value

    def skip(self, name: str, why: str) -> None:
        self.say(f"== {name}: skipped ({why})")
        self.r["steps"].append({"name": name, "ok": None, "skipped": why, "timeout_s": MEASURE_TIMEOUTS.get(name)})
        self.save()

    def sh(self, cmd, timeout: int, env=None, watch=None, tag=None):
        """Runs cmd in its own process group; stdout and stderr go to files in work/ and then
        into the log. `watch(stderr_so_far)` may return a reason to stop it early (a CUDA run
        that started on the CPU). Returns (exit status, stdout, stderr)."""
        tag = tag or os.path.basename(cmd[0])
        out_f, err_f = os.path.join(self.work, f"{tag}.out"), os.path.join(self.work, f"{tag}.err")
        self.log.write("$ " + " ".join(cmd) + "\n")
        with open(out_f, "wb") as o, open(err_f, "wb") as e:
            p = subprocess.Popen(cmd, stdout=o, stderr=e, env=env or self.env, start_new_session=True,
                                 stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            stopped = None
            while p.poll() is None:
                if time.monotonic() > deadline:
                    stopped = f"timed out after {timeout} s"
                elif watch:
                    stopped = watch(open(err_f, errors="replace").read())
                if stopped:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    break
                time.sleep(0.2)
        out, err = open(out_f, errors="replace").read(), open(err_f, errors="replace").read()
        self.log.write(f"exit {p.returncode}\n--- stderr\n{err[-6000:]}\n--- stdout\n{out[-4000:]}\n---\n")
        if stopped and stopped.startswith("timed out"):
            raise TimedOut(stopped + (f"; stderr ends: {err.strip()[-300:]}" if err.strip() else ""))
        if stopped:
            raise CudaUnavailable(stopped)
        return p.returncode, out, err

    # --- preparation ----------------------------------------------------------------------------
    def assemble(self, timeout):
        dirs = [os.path.join(self.store, "parts"), self.carried]
        mpath = next((os.path.join(d, "manifest.json") for d in dirs if os.path.isfile(os.path.join(d, "manifest.json"))), None)
        if not mpath:
            raise StepFailed(f"no manifest.json in {' or '.join(dirs)}: carry target/gpu-bundle/parts/manifest.json")
        m = parts.load_manifest(mpath)
        try:
            self.archive = parts.join(m, dirs, os.path.join(self.store, "qsearch-gpu.tar.zst"))
        except parts.PartError as e:
            raise StepFailed(f"{e} (each run must start within 30 s of the last: if parts were lost, start again from run 1)")
        return {"detail": f"{len(m['parts'])} parts, {m['size']:,} bytes, sha256 {m['sha256'][:16]}... ok"}

    def unpack(self, timeout):
        import pyarrow as pa  # the GPU machine's python has it; it has no zstd binary
        shutil.rmtree(self.bundle, ignore_errors=True)
        os.makedirs(self.bundle)
        stream = pa.CompressedInputStream(pa.OSFile(self.archive, "rb"), "zstd")
        with tarfile.open(fileobj=stream, mode="r|") as t:
            if hasattr(tarfile, "data_filter"):
                t.extractall(self.bundle, filter="data")
            else:
                t.extractall(self.bundle)
        info = json.load(open(os.path.join(self.bundle, "BUNDLE.json")))
        self.r["bundle"] = {k: info[k] for k in ("built", "commit", "modified_tracked_files", "onnxruntime", "tokenizer", "corpus")}
        self.qsearch = os.path.join(self.bundle, "bin", "qsearch")
        self.ort_dir = os.path.join(self.bundle, "ort")
        self.ort_lib = os.path.join(self.ort_dir, "libonnxruntime.so.1.31.1")
        self.corpus = os.path.join(self.bundle, "corpus", info["corpus"]["name"])
        self.corpus_bytes = info["corpus"]["bytes"]
        for f in (self.qsearch, self.ort_lib, os.path.join(self.ort_dir, "libonnxruntime_providers_cuda.so")):
            if not os.path.isfile(f):
                raise StepFailed(f"the bundle lacks {os.path.relpath(f, self.bundle)}")
        return {"detail": f"commit {info['commit'][:12]}, corpus {info['corpus']['files']} files, {info['corpus']['bytes']:,} bytes"}

    def set_env(self, timeout):
        import site
        sites = list(dict.fromkeys(site.getsitepackages() + [site.getusersitepackages()]))
        libdirs = []
        for sp in sites:
            root = os.path.join(sp, "nvidia")
            for dirpath, _, names in os.walk(root):
                if any(n.startswith("lib") and ".so" in n for n in names):
                    libdirs.append(dirpath)
        libdirs = sorted(set(libdirs)) + [self.ort_dir]
        old = os.environ.get("LD_LIBRARY_PATH")
        self.env["LD_LIBRARY_PATH"] = ":".join(libdirs + ([old] if old else []))
        self.r["ld_library_path"] = self.env["LD_LIBRARY_PATH"]
        nvidia = len(libdirs) - 1
        detail = f"{nvidia} nvidia lib folders from {', '.join(sites)}, then {self.ort_dir}"
        if nvidia == 0:
            detail += " (no nvidia packages: CUDA's libraries will not be found)"
        smi = shutil.which("nvidia-smi")
        if smi:
            try:
                gpu = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=10).stdout.strip()
                self.r["host"]["gpu"] = gpu
                detail += f"; GPU: {gpu}"
            except (subprocess.SubprocessError, OSError) as e:
                self.r["host"]["gpu"] = f"nvidia-smi failed: {e}"
        else:
            self.r["host"]["gpu"] = "no nvidia-smi"
        # qsearch's own state, all under work/: nothing from an earlier run, nothing in ~.
        shutil.rmtree(os.path.join(self.work, "data"), ignore_errors=True)
        self.env["QSEARCH_DATA_DIR"] = os.path.join(self.work, "data")
        return {"detail": detail}

    def binary(self, timeout):
        code, out, err = self.sh([self.qsearch, "--version"], timeout, tag="version")
        if code != 0:
            raise StepFailed(f"bin/qsearch does not start (exit {code}): {err.strip()[-300:]}")
        return {"detail": out.strip()}

    def make_graph(self, timeout):
        self.model_dir = os.path.join(self.work, "model")
        shutil.rmtree(self.model_dir, ignore_errors=True)
        os.makedirs(os.path.join(self.model_dir, "onnx"))
        graph = os.path.join(self.model_dir, "onnx", "model.onnx")
        code, out, err = self.sh([sys.executable, os.path.join(self.bundle, "qwen3_graph.py"), "--size", self.graph,
                                  "--out", graph], timeout, tag="graph")
        if code != 0:
            raise StepFailed(f"qwen3_graph.py failed (exit {code}): {err.strip()[-500:]}")
        if os.path.exists(graph + ".data"):
            # The catalog names the export's data file model.onnx_data; the script writes model.onnx.data.
            os.symlink("model.onnx.data", os.path.join(self.model_dir, "onnx", "model.onnx_data"))
        shutil.copy(os.path.join(self.bundle, "model", "tokenizer.json"), os.path.join(self.model_dir, "tokenizer.json"))
        size = sum(os.path.getsize(os.path.join(self.model_dir, "onnx", f)) for f in os.listdir(os.path.join(self.model_dir, "onnx")))
        return {"detail": f"{self.graph} graph, {size / 1e6:,.1f} MB"}

    # --- measurements ---------------------------------------------------------------------------
    def q(self, device: str, index: str, prepare: bool, *args):
        """The qsearch command line and environment for one step."""
        env = dict(self.env)
        cfg = os.path.join(self.work, "fp32.toml" if not prepare else "default.toml")
        if not prepare:
            with open(cfg, "w") as f:
                f.write("prepare_model = false\n")
        elif os.path.exists(cfg):
            os.remove(cfg)
        env.update(QSEARCH_CONFIG=cfg, QSEARCH_INDEX=os.path.join(self.work, index))
        cmd = [self.qsearch, "--ort-lib", self.ort_lib, "--model", MODEL, "--model-dir", self.model_dir,
               "--device", device, *args]
        return cmd, env

    @staticmethod
    def placement(stderr: str):
        """Where `index` says its model runs: the `... on CUDA` / `... on CPU (...)` line."""
        m = re.search(r"^.* on (CUDA|CPU|CoreML)\b.*$", stderr, re.M)
        return (m.group(1), m.group(0).strip()) if m else (None, None)

    def cuda_watch(self, stderr: str):
        on, line = self.placement(stderr)
        if on and on != "CUDA":
            return f"the model runs on {on}, not CUDA: {line}"
        return None

    @staticmethod
    def cuda_error(code: int, err: str):
        """A non-zero exit that names CUDA is CUDA being unavailable, whatever else it says."""
        tail = err.strip()[-600:]
        if re.search(r"cuda|cublas|cudnn|libcudart", err, re.I):
            raise CudaUnavailable(f"exit {code}: {tail}")
        raise StepFailed(f"exit {code}: {tail}")

    def doctor(self, timeout):
        cmd, env = self.q(self.dev, "index-doctor", True, "doctor")
        code, out, err = self.sh(cmd, timeout, env=env, tag="doctor")
        m = re.search(r"^runtime:.*$", out, re.M)
        if not m or "PROBLEM" in m.group(0):
            raise StepFailed(f"doctor did not load ONNX Runtime (exit {code}): {(m.group(0) if m else out.strip()[-400:])} {err.strip()[-300:]}")
        providers = re.search(r"providers: (.*)$", m.group(0))
        self.r["figures"]["providers"] = providers.group(1) if providers else None
        if self.dev == "cuda" and (not providers or "CUDA" not in providers.group(1)):
            raise CudaUnavailable(f"CUDA is not among ONNX Runtime's providers: {m.group(0)}")
        # `device: cuda: MODEL on CUDA: placement`, or `device: cuda: PROBLEM: why` (the model
        # is loaded on the device and embeds one query).
        dev = re.search(rf"^device:\s+{self.dev}:.*$", out, re.M)
        if dev:
            self.r["figures"]["doctor_device"] = dev.group(0)
            want = "CUDA" if self.dev == "cuda" else "CPU"
            if re.search(r"PROBLEM|unavailable|cannot", dev.group(0)) or not re.search(rf" on {want}\b", dev.group(0)):
                raise (CudaUnavailable if self.dev == "cuda" else StepFailed)(dev.group(0))
        elif code != 0:
            raise StepFailed(f"doctor exited {code}: {out.strip()[-400:]} {err.strip()[-300:]}")
        return {"detail": m.group(0) + (f"; {dev.group(0)}" if dev else "")}

    def index(self, timeout, device: str, name: str, prepare: bool, folder: str):
        cmd, env = self.q(device, f"index-{name}", prepare, "index", folder, "--json")
        watch = self.cuda_watch if device == "cuda" else None
        code, out, err = self.sh(cmd, timeout, env=env, watch=watch, tag=f"index-{name}")
        on, line = self.placement(err)
        try:
            report = json.loads(out)
        except ValueError:
            if device == "cuda":
                self.cuda_error(code, err)
            raise StepFailed(f"exit {code}, no JSON report: {err.strip()[-400:]}")
        want = "CUDA" if device == "cuda" else "CPU"
        if on != want:
            msg = f"ran on {on}: {line}" if on else f"no '... on {want}' line in its stderr: where it ran is unknown"
            raise (CudaUnavailable if want == "CUDA" else StepFailed)(msg)
        if report.get("embed_error") or report.get("pending") or report.get("interrupted"):
            raise StepFailed(f"embedding stopped: {report.get('embed_error')} ({report.get('pending')} pending)")
        tps = report["tokens"] / max(report["model_secs"], 1e-9)
        fig = {"placement": line, "files": report["indexed"], "failed": len(report.get("failed", [])),
               "chunks": report["chunks_written"], "tokens": report["tokens"], "model_secs": report["model_secs"],
               "sync_secs": report["sync_secs"], "embed_secs": report.get("embed_secs"), "tokens_per_s": round(tps),
               "db": os.path.join(self.work, f"index-{name}", "index.sqlite")}
        note = [l for l in err.splitlines() if re.search(r"prepar|fp16|note:", l, re.I) and not l.startswith("index:")]
        if note:
            fig["notes"] = note[:10]
        self.r["figures"][f"index_{name}"] = fig
        return {"detail": f"{line}; {report['tokens']:,} tokens in {report['model_secs']:.2f} s = {tps:,.0f} tokens/s; "
                          f"sync {report['sync_secs']:.2f} s"}

    def query(self, timeout, device: str, name: str, prepare: bool, repeat: int):
        cmd, env = self.q(device, "index-query", prepare, "embed", "--query", QUERY, "--repeat", str(repeat))
        code, out, err = self.sh(cmd, timeout, env=env, tag=f"query-{name}")
        try:  # one JSON line per text
            r = json.loads(out.strip().splitlines()[0])
        except (ValueError, IndexError):
            if device == "cuda":
                self.cuda_error(code, err)
            raise StepFailed(f"exit {code}, no JSON: {err.strip()[-400:]}")
        want = "CUDA" if device == "cuda" else "CPU"
        if r["device"] != want:
            raise (CudaUnavailable if want == "CUDA" else StepFailed)(f"embed reports device {r['device']!r}")
        # ONNX Runtime's own count of the nodes each provider ran (its profile of the first run).
        self.r["figures"][f"query_{name}"] = {"device": r["device"], "median_ms": r["median_ms"], "tokens": r["tokens"],
                                              "repeat": repeat, "placement": r.get("placement")}
        self.vectors = getattr(self, "vectors", {})
        self.vectors[name] = r["embedding"]
        return {"detail": f"on {r['device']}, {r['tokens']} tokens" +
                          (f", median {r['median_ms']:.2f} ms of {repeat}" if r["median_ms"] is not None else "")}

    def sample(self) -> str:
        """A few of the corpus's files (same relative paths, so the same chunk texts and hashes)."""
        folder = os.path.join(self.work, "sample", os.path.basename(self.corpus))
        shutil.rmtree(os.path.dirname(folder), ignore_errors=True)
        files = []
        for root, _, names in os.walk(self.corpus):
            for n in names:
                if n.endswith(".md"):
                    p = os.path.join(root, n)
                    files.append((os.path.getsize(p), os.path.relpath(p, self.corpus)))
        total = 0
        for size, rel in sorted(f for f in files if f[0] >= 1000):
            if total + size > SAMPLE_BYTES:
                break
            os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
            shutil.copy(os.path.join(self.corpus, rel), os.path.join(folder, rel))
            total += size
        return folder

    def compare(self) -> None:
        """Cosines of the CPU's and CUDA's vectors of the same texts."""
        def vectors(db):
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                return {h: memoryview(d).cast("f").tolist() for h, d in con.execute("SELECT hash, data FROM vectors")}
            finally:
                con.close()

        def cos(u, v):
            return sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))

        figs = self.r["figures"]
        ref = vectors(figs["index_cpu"]["db"]) if "index_cpu" in figs else None
        for name in ("fp16", "fp32"):
            key = f"index_{name}"
            if ref is None or key not in figs:
                continue
            other = vectors(figs[key]["db"])
            shared = sorted(set(ref) & set(other))
            if not shared:
                self.r["failures"].append(f"cosine_{name}: no chunk of the CPU sample matches one of the {name} index")
                continue
            cs = [cos(ref[h], other[h]) for h in shared]
            fig = {"texts": len(shared), "min": min(cs), "median": sorted(cs)[len(cs) // 2]}
            if name == "fp16" and "cuda" in getattr(self, "vectors", {}) and "cpu" in self.vectors:
                fig["query"] = cos(self.vectors["cpu"], self.vectors["cuda"])
            figs[f"cosine_{name}"] = fig
            self.say(f"cosine CPU fp32 vs CUDA {name}: {fig}")

    def run(self) -> int:
        os.makedirs(self.work, exist_ok=True)
        for name, fn in (("assemble", self.assemble), ("unpack", self.unpack), ("env", self.set_env),
                         ("binary", self.binary), ("graph", self.make_graph)):
            if self.step(name, PREP_TIMEOUTS[name], fn, in_process=name in ("assemble", "unpack", "env")) is None:
                self.r["failures"].insert(0, f"{name} failed: {self.r['steps'][-1]['detail']}")
                return self.finish()
        self.say(f"measurements: time-outs sum to {sum(MEASURE_TIMEOUTS.values())} s of {MEASURE_BUDGET}")
        T = MEASURE_TIMEOUTS
        steps = [
            ("doctor", True, lambda t: self.doctor(t)),
            ("index_fp16", True, lambda t: self.index(t, self.dev, "fp16", True, self.corpus)),
            ("index_fp32", True, lambda t: self.index(t, self.dev, "fp32", False, self.corpus)),
            ("query_cuda", True, lambda t: self.query(t, self.dev, "cuda", True, 50)),
            ("index_cpu", False, lambda t: self.index(t, "cpu", "cpu", False, self.sample())),
            ("query_cpu", False, lambda t: self.query(t, "cpu", "cpu", False, 0)),
        ]
        for name, on_cuda, fn in steps:
            if self.r["cuda_unavailable"]:
                self.skip(name, "CUDA unavailable")
                continue
            self.step(name, T[name], fn)
        if not self.r["cuda_unavailable"]:
            self.compare()
        return self.finish()

    def finish(self) -> int:
        figs, fails = self.r["figures"], self.r["failures"]
        if self.r["cuda_unavailable"]:
            fails.insert(0, f"CUDA unavailable ({self.r['cuda_unavailable']})")
        if self.dev != "cuda":
            fails.insert(0, f"QSEARCH_GPU_DEVICE={self.dev}: the steps rehearsed on the CPU, not a GPU check")
        for s in self.r["steps"]:
            if s["ok"] is False and not (self.r["cuda_unavailable"] or "").startswith(s["name"] + ":") \
                    and not any(f.startswith(s["name"]) for f in fails):
                fails.append(f"{s['name']} failed: {s['detail']}")
        sync = [figs[k]["sync_secs"] for k in ("index_fp16", "index_fp32") if k in figs]
        if sync and getattr(self, "corpus_bytes", None):
            figs["sync_mb_per_s"] = round(self.corpus_bytes / 1e6 / max(min(sync), 1e-9), 2)
        values = {
            "fp16_tokens_per_s": figs.get("index_fp16", {}).get("tokens_per_s"),
            "fp32_tokens_per_s": figs.get("index_fp32", {}).get("tokens_per_s"),
            "query_median_ms": figs.get("query_cuda", {}).get("median_ms"),
            "cosine_fp16": min([v for v in (figs.get("cosine_fp16", {}).get("min"), figs.get("cosine_fp16", {}).get("query")) if v is not None], default=None),
            "cosine_fp32": figs.get("cosine_fp32", {}).get("min"),
            "sync_mb_per_s": figs.get("sync_mb_per_s"),
        }
        for name, (threshold, kind) in TARGETS.items():
            v = values[name]
            met = v is not None and (v >= threshold if kind == "min" else v <= threshold)
            self.r["targets"][name].update(value=v, met=met)
            if not met:
                sign = ">=" if kind == "min" else "<="
                fails.append(f"{name} {sign} {threshold:,}: " + ("not measured" if v is None else f"got {v:,}"))
        self.r["ok"] = not fails
        self.r["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.save()
        self.say("targets: " + ", ".join(f"{k} {t.get('value')} ({'met' if t.get('met') else 'MISSED'})"
                                         for k, t in self.r["targets"].items()))
        if fails:
            self.say("gpu check FAILED:\n  - " + "\n  - ".join(fails))
            return 1
        self.say("gpu check passed: every target met, every step on CUDA")
        return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="parts/, bundle/ and work/ live here (outside the repository)")
    ap.add_argument("--carried", required=True, help="where this run's carried part and manifest are")
    ap.add_argument("--out", required=True, help="gpu-check.json and gpu-check.log go here, nothing else")
    args = ap.parse_args(argv)
    graph = os.environ.get("QSEARCH_GPU_GRAPH", "full")
    device = os.environ.get("QSEARCH_GPU_DEVICE", "cuda")
    if graph not in ("full", "tiny") or device not in ("cuda", "cpu"):
        print(f"check: QSEARCH_GPU_GRAPH must be full or tiny ({graph!r}), QSEARCH_GPU_DEVICE cuda or cpu ({device!r})",
              file=sys.stderr)
        return 64
    os.makedirs(args.out, exist_ok=True)
    return Check(args.store, args.carried, args.out, graph, device).run()


if __name__ == "__main__":
    sys.exit(main())
