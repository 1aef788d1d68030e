#!/usr/bin/env python3
"""Build a Qwen3-architecture ONNX graph with random (seeded) weights.

The graph mirrors the operator set and the interface of the Hugging Face export
`onnx-community/Qwen3-Embedding-0.6B-ONNX` (`onnx/model.onnx`):

  * `Gather` embedding lookup
  * per layer: RMSNorm as `SimplifiedLayerNormalization` (ONNX domain, ORT contrib op) for
    layer 0's input norm and for the per-head q and k norms, and as
    `com.microsoft.SkipSimplifiedLayerNormalization` (residual add fused) everywhere else;
    `MatMul` for q/k/v/o/gate/up/down; two `com.microsoft.RotaryEmbedding` (q and k);
    one `com.microsoft.MultiHeadAttention` (causal via unidirectional=1, padding via
    key_padding_mask = attention_mask); SwiGLU = Sigmoid/Mul/Mul.
  * final norm (a SkipSimplifiedLayerNormalization) before `last_hidden_state`.

  Full size gives 28 MultiHeadAttention, 56 RotaryEmbedding, 57 SimplifiedLayerNormalization
  (28 q + 28 k + layer 0 input norm), 56 SkipSimplifiedLayerNormalization and 196 MatMul.

Grouped-query attention: MultiHeadAttention has a single head count, so k and v
(kv_heads heads) are repeated to the q head count with Unsqueeze/Tile/Reshape and handed to
MultiHeadAttention in BNSH layout [batch, heads, total_seq, head_dim].

Interface (all dims symbolic except the head/hidden sizes):
  inputs   input_ids          int64   [batch_size, sequence_length]
           attention_mask     int64   [batch_size, total_sequence_length]   (1 = token, 0 = pad)
           position_ids       int64   [batch_size, sequence_length]
           past_key_values.{i}.key / .value  float32 [batch_size, kv_heads, past_sequence_length, head_dim]
  outputs  last_hidden_state  float32 [batch_size, sequence_length, hidden]
           present.{i}.key / .value          float32 [batch_size, kv_heads, total_sequence_length, head_dim]

Callers pass past_sequence_length = 0 (empty past tensors), so total = sequence_length.
position_ids: the caller computes them as cumsum(attention_mask, axis=1) - 1, clipped at 0
(so left-padding positions get 0 and the first real token gets 0). They must be in
[0, max_position_embeddings) because RotaryEmbedding indexes its cos/sin cache with them
(a negative id is an error). RoPE is translation-invariant, so plain 0..seq-1 positions give
the same last-token vector up to float rounding, but cumsum-1 is the convention.

`--plain` writes the same model (same weights for the same seed) in standard operators only, as
torch.onnx exports it (see `build_plain_model`): input_ids, attention_mask and position_ids in,
last_hidden_state out, no key/value cache. `--compare` first runs both layouts of the seed with
onnxruntime and fails unless they agree to 1e-4 (measured on tiny: 3.5e-6).

Usage:
  python scripts/qwen3_graph.py --size tiny --out tests/fixtures/qwen3-tiny/model.onnx
  python scripts/qwen3_graph.py --size tiny --plain --compare --out tests/fixtures/qwen3-plain/model.onnx
  python scripts/qwen3_graph.py --size full --out target/bench-models/qwen3-full-fp32/model.onnx
  python scripts/qwen3_graph.py --size full --int8 --out target/bench-models/qwen3-full-int8/model.onnx
  python scripts/qwen3_graph.py --size tiny --reranker --out tests/fixtures/qwen3-reranker-tiny/model.onnx

`--reranker` makes the same model a Qwen3-Reranker: the graph ends in the two rows of the tied
output projection (the token table's rows) that score "no" (2152) and "yes" (9693), as
`logits` float32 [batch_size, sequence_length, 2] = [no, yes], in place of last_hidden_state
(the key/value outputs stay). The reranker's score is softmax(logits[:, -1])[1].
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = 151669
# The Qwen3 tokenizer's ids of "no" and "yes" (the reranker's two answers).
NO_ID, YES_ID = 2152, 9693

SIZES = {
    # tiny: committed test fixture; real vocabulary so real tokenizer ids work.
    "tiny": dict(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=48,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=8192,
    ),
    # full: real Qwen3-Embedding-0.6B dimensions (for speed benchmarks only).
    "full": dict(
        vocab_size=VOCAB,
        hidden_size=1024,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=3072,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        max_position_embeddings=32768,
    ),
}

# Weight scales. tiny uses large scales so that different texts give clearly different
# last-token vectors; full uses small ones (speed does not depend on the values).
SCALES = {
    "tiny": dict(embed=1.0, linear=1.5, norm_jitter=0.5),
    "full": dict(embed=0.02, linear=0.5, norm_jitter=0.1),
}


def make_weights(cfg: dict, seed: int, scales: dict) -> dict[str, np.ndarray]:
    """Random weights named and shaped like the transformers Qwen3Model state dict
    (nn.Linear weights are [out_features, in_features])."""
    rng = np.random.default_rng(seed)
    H = cfg["hidden_size"]
    D = cfg["head_dim"]
    nq = cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    I = cfg["intermediate_size"]

    def lin(out_f, in_f):
        w = rng.standard_normal((out_f, in_f), dtype=np.float32)
        w *= np.float32(scales["linear"] / np.sqrt(in_f))
        return w

    def norm(n):
        return (1.0 + scales["norm_jitter"] * rng.uniform(-1.0, 1.0, n)).astype(np.float32)

    w: dict[str, np.ndarray] = {}
    emb = rng.standard_normal((cfg["vocab_size"], H), dtype=np.float32)
    emb *= np.float32(scales["embed"])
    w["embed_tokens.weight"] = emb
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "self_attn.q_proj.weight"] = lin(nq * D, H)
        w[p + "self_attn.k_proj.weight"] = lin(nkv * D, H)
        w[p + "self_attn.v_proj.weight"] = lin(nkv * D, H)
        w[p + "self_attn.o_proj.weight"] = lin(H, nq * D)
        w[p + "self_attn.q_norm.weight"] = norm(D)
        w[p + "self_attn.k_norm.weight"] = norm(D)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        w[p + "mlp.gate_proj.weight"] = lin(I, H)
        w[p + "mlp.up_proj.weight"] = lin(I, H)
        w[p + "mlp.down_proj.weight"] = lin(H, I)
    w["norm.weight"] = norm(H)
    return w


def rope_cache(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin caches [max_pos, head_dim/2], computed like transformers' default RoPE
    (inv_freq and the products in float32)."""
    D = cfg["head_dim"]
    inv_freq = (1.0 / (cfg["rope_theta"] ** (np.arange(0, D, 2, dtype=np.int64).astype(np.float32) / D))).astype(
        np.float32
    )
    pos = np.arange(cfg["max_position_embeddings"], dtype=np.float32)
    freqs = np.outer(pos, inv_freq).astype(np.float32)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def build_model(cfg: dict, w: dict[str, np.ndarray], reranker: bool = False) -> onnx.ModelProto:
    H = cfg["hidden_size"]
    D = cfg["head_dim"]
    nq = cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    L = cfg["num_hidden_layers"]
    eps = float(cfg["rms_norm_eps"])
    assert nq % nkv == 0 and D % 2 == 0
    n_rep = nq // nkv

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, outs, name, domain="", **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=name, domain=domain, **attrs))
        return outs[0] if len(outs) == 1 else outs

    B, S, P, T = "batch_size", "sequence_length", "past_sequence_length", "total_sequence_length"
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [B, S]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [B, T]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, [B, S]),
    ]
    if reranker:
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [B, S, 2])]
    else:
        outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [B, S, H])]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kv}", TensorProto.FLOAT, [B, nkv, P, D]))
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kv}", TensorProto.FLOAT, [B, nkv, T, D]))

    # shared constants
    init("model.embed_tokens.weight", w["embed_tokens.weight"])
    cos, sin = rope_cache(cfg)
    init("cos_cache", cos)
    init("sin_cache", sin)
    init("shape_q_heads", np.array([0, 0, nq, D], dtype=np.int64))
    init("shape_kv_heads", np.array([0, 0, nkv, D], dtype=np.int64))
    init("shape_q_flat", np.array([0, 0, nq * D], dtype=np.int64))
    init("shape_kv_rep", np.array([0, nq, -1, D], dtype=np.int64))
    init("tile_kv_rep", np.array([1, 1, n_rep, 1, 1], dtype=np.int64))
    init("axes_2", np.array([2], dtype=np.int64))

    x = node("Gather", ["model.embed_tokens.weight", "input_ids"], ["inputs_embeds"], "embed_tokens", axis=0)
    mask_i32 = node("Cast", ["attention_mask"], ["attention_mask_int32"], "mask_cast", to=TensorProto.INT32)

    residual = x
    pending = None  # output of the previous sub-block, to be added to residual by SkipSimplifiedLN
    for i in range(L):
        p = f"layers.{i}."
        pre = f"/model/layers.{i}"
        for key in ("q_proj", "k_proj", "v_proj", "o_proj"):
            init(f"model.{p}self_attn.{key}.weight.T", w[p + f"self_attn.{key}.weight"].T)
        for key in ("gate_proj", "up_proj", "down_proj"):
            init(f"model.{p}mlp.{key}.weight.T", w[p + f"mlp.{key}.weight"].T)
        for key in ("input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm"):
            init(f"model.{p}{key}.weight", w[p + key + ".weight"])

        # --- input norm (+ residual add for layers > 0)
        if pending is None:
            h = node("SimplifiedLayerNormalization", [residual, f"model.{p}input_layernorm.weight"],
                     [f"{pre}/input_layernorm/out"], f"{pre}/input_layernorm", axis=-1, epsilon=eps)
        else:
            h, _, _, residual = node(
                "SkipSimplifiedLayerNormalization", [pending, residual, f"model.{p}input_layernorm.weight"],
                [f"{pre}/input_layernorm/out", "", "", f"{pre}/input_layernorm/residual"],
                f"{pre}/input_layernorm", domain="com.microsoft", epsilon=eps)

        # --- q
        q = node("MatMul", [h, f"model.{p}self_attn.q_proj.weight.T"], [f"{pre}/attn/q_proj/out"], f"{pre}/attn/q_proj")
        q = node("Reshape", [q, "shape_q_heads"], [f"{pre}/attn/q_heads"], f"{pre}/attn/q_reshape")
        q = node("SimplifiedLayerNormalization", [q, f"model.{p}self_attn.q_norm.weight"], [f"{pre}/attn/q_norm/out"],
                 f"{pre}/attn/q_norm", axis=-1, epsilon=eps)
        q = node("Reshape", [q, "shape_q_flat"], [f"{pre}/attn/q_flat"], f"{pre}/attn/q_flatten")
        q = node("RotaryEmbedding", [q, "position_ids", "cos_cache", "sin_cache"], [f"{pre}/attn/q_rotary/out"],
                 f"{pre}/attn/q_rotary", domain="com.microsoft", interleaved=0, num_heads=nq)
        # --- k (BNSH)
        k = node("MatMul", [h, f"model.{p}self_attn.k_proj.weight.T"], [f"{pre}/attn/k_proj/out"], f"{pre}/attn/k_proj")
        k = node("Reshape", [k, "shape_kv_heads"], [f"{pre}/attn/k_heads"], f"{pre}/attn/k_reshape")
        k = node("SimplifiedLayerNormalization", [k, f"model.{p}self_attn.k_norm.weight"], [f"{pre}/attn/k_norm/out"],
                 f"{pre}/attn/k_norm", axis=-1, epsilon=eps)
        k = node("Transpose", [k], [f"{pre}/attn/k_bnsh"], f"{pre}/attn/k_transpose", perm=[0, 2, 1, 3])
        k = node("RotaryEmbedding", [k, "position_ids", "cos_cache", "sin_cache"], [f"{pre}/attn/k_rotary/out"],
                 f"{pre}/attn/k_rotary", domain="com.microsoft", interleaved=0)
        # --- v (BNSH)
        v = node("MatMul", [h, f"model.{p}self_attn.v_proj.weight.T"], [f"{pre}/attn/v_proj/out"], f"{pre}/attn/v_proj")
        v = node("Reshape", [v, "shape_kv_heads"], [f"{pre}/attn/v_heads"], f"{pre}/attn/v_reshape")
        v = node("Transpose", [v], [f"{pre}/attn/v_bnsh"], f"{pre}/attn/v_transpose", perm=[0, 2, 1, 3])
        # --- kv cache
        pk = node("Concat", [f"past_key_values.{i}.key", k], [f"present.{i}.key"], f"{pre}/attn/present_key", axis=2)
        pv = node("Concat", [f"past_key_values.{i}.value", v], [f"present.{i}.value"], f"{pre}/attn/present_value", axis=2)
        # --- repeat kv heads to nq (GQA on top of MultiHeadAttention)
        reps = []
        for nm, t in (("key", pk), ("value", pv)):
            u = node("Unsqueeze", [t, "axes_2"], [f"{pre}/attn/{nm}_unsq"], f"{pre}/attn/{nm}_unsqueeze")
            u = node("Tile", [u, "tile_kv_rep"], [f"{pre}/attn/{nm}_tiled"], f"{pre}/attn/{nm}_tile")
            u = node("Reshape", [u, "shape_kv_rep"], [f"{pre}/attn/{nm}_rep"], f"{pre}/attn/{nm}_repeat")
            reps.append(u)
        a = node("MultiHeadAttention", [q, reps[0], reps[1], "", "attention_mask_int32"], [f"{pre}/attn/mha/out"],
                 f"{pre}/attn/MultiHeadAttention", domain="com.microsoft", num_heads=nq, unidirectional=1)
        a = node("MatMul", [a, f"model.{p}self_attn.o_proj.weight.T"], [f"{pre}/attn/o_proj/out"], f"{pre}/attn/o_proj")

        # --- post-attention norm with residual add
        h2, _, _, residual = node(
            "SkipSimplifiedLayerNormalization", [a, residual, f"model.{p}post_attention_layernorm.weight"],
            [f"{pre}/post_attention_layernorm/out", "", "", f"{pre}/post_attention_layernorm/residual"],
            f"{pre}/post_attention_layernorm", domain="com.microsoft", epsilon=eps)

        # --- SwiGLU MLP
        g = node("MatMul", [h2, f"model.{p}mlp.gate_proj.weight.T"], [f"{pre}/mlp/gate_proj/out"], f"{pre}/mlp/gate_proj")
        u = node("MatMul", [h2, f"model.{p}mlp.up_proj.weight.T"], [f"{pre}/mlp/up_proj/out"], f"{pre}/mlp/up_proj")
        sg = node("Sigmoid", [g], [f"{pre}/mlp/act/sigmoid"], f"{pre}/mlp/act/Sigmoid")
        silu = node("Mul", [g, sg], [f"{pre}/mlp/act/silu"], f"{pre}/mlp/act/Mul")
        gu = node("Mul", [silu, u], [f"{pre}/mlp/gated"], f"{pre}/mlp/Mul")
        pending = node("MatMul", [gu, f"model.{p}mlp.down_proj.weight.T"], [f"{pre}/mlp/down_proj/out"],
                       f"{pre}/mlp/down_proj")

    init("model.norm.weight", w["norm.weight"])
    node("SkipSimplifiedLayerNormalization", [pending, residual, "model.norm.weight"], ["last_hidden_state"],
         "/model/norm", domain="com.microsoft", epsilon=eps)
    if reranker:
        # lm_head is tied to the token table: its "no" and "yes" rows, as [hidden, 2]
        init("lm_head.no_yes.T", w["embed_tokens.weight"][[NO_ID, YES_ID]].T)
        node("MatMul", ["last_hidden_state", "lm_head.no_yes.T"], ["logits"], "/lm_head/MatMul")

    graph = helper.make_graph(nodes, "qwen3_random", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        producer_name="qsearch/scripts/qwen3_graph.py",
    )
    model.ir_version = 8
    return model


def build_plain_model(cfg: dict, w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The same model in standard ONNX operators only, laid out the way `torch.onnx.export` writes
    a transformers Qwen3Model for feature extraction (no key/value cache):

      * `Gather` embedding lookup; cos/sin tables [max_pos, head_dim] (both halves) looked up with
        `Gather` on position_ids, then `Unsqueeze` to [batch, 1, seq, head_dim];
      * the 4-D attention mask built from the dynamic shapes: Shape/Gather/Range/Unsqueeze/
        Greater (causal) Or Equal(attention_mask, 0) (padding), Where(blocked, float32 min, 0);
      * per layer: RMSNorm as Pow/ReduceMean/Add/Sqrt/Div/Mul; q/k/v `MatMul` + `Reshape` +
        `Transpose`; rotary `x * cos + rotate_half(x) * sin` with Slice/Neg/Concat/Mul/Add;
        repeat_kv as Unsqueeze/Expand/Reshape; attention as MatMul/Mul(scale)/Add(mask)/Softmax/
        MatMul; SwiGLU as Sigmoid/Mul/Mul; residual `Add`s;
      * scalars as `Constant` nodes, weights as initializers; opset 17, no contrib operators.

    Interface: input_ids, attention_mask, position_ids int64 [batch_size, sequence_length];
    last_hidden_state float32 [batch_size, sequence_length, hidden]."""
    H = cfg["hidden_size"]
    D = cfg["head_dim"]
    nq = cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    L = cfg["num_hidden_layers"]
    eps = float(cfg["rms_norm_eps"])
    assert nq % nkv == 0 and D % 2 == 0
    n_rep = nq // nkv

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, outs, name, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    consts = 0

    def const(value, dtype):
        """A `Constant` node, as torch.onnx writes scalars and small index lists."""
        nonlocal consts
        consts += 1
        name = f"/Constant_{consts}"
        arr = np.array(value, dtype=dtype)
        return node("Constant", [], [f"{name}_output_0"], name, value=numpy_helper.from_array(arr))

    B, S = "batch_size", "sequence_length"
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, [B, S]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [B, S]),
        helper.make_tensor_value_info("position_ids", TensorProto.INT64, [B, S]),
    ]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [B, S, H])]

    init("model.embed_tokens.weight", w["embed_tokens.weight"])
    cos, sin = rope_cache(cfg)
    init("model.rotary_emb.cos_cached", np.concatenate([cos, cos], axis=-1))
    init("model.rotary_emb.sin_cached", np.concatenate([sin, sin], axis=-1))

    x = node("Gather", ["model.embed_tokens.weight", "input_ids"], ["/model/embed_tokens/Gather_output_0"],
             "/model/embed_tokens/Gather")
    # rotary tables for these positions, [B, 1, S, D]
    cos_b = node("Gather", ["model.rotary_emb.cos_cached", "position_ids"], ["/model/rotary_emb/cos"],
                 "/model/rotary_emb/Gather")
    sin_b = node("Gather", ["model.rotary_emb.sin_cached", "position_ids"], ["/model/rotary_emb/sin"],
                 "/model/rotary_emb/Gather_1")
    axis1 = const([1], np.int64)
    cos_b = node("Unsqueeze", [cos_b, axis1], ["/model/rotary_emb/cos_unsq"], "/model/rotary_emb/Unsqueeze")
    sin_b = node("Unsqueeze", [sin_b, axis1], ["/model/rotary_emb/sin_unsq"], "/model/rotary_emb/Unsqueeze_1")

    # the 4-D mask [B, 1, S, S] from the dynamic shapes: causal, and padding where attention_mask is 0
    shape = node("Shape", ["input_ids"], ["/model/mask/Shape_output_0"], "/model/mask/Shape")
    seq = node("Gather", [shape, const(1, np.int64)], ["/model/mask/seq_len"], "/model/mask/Gather", axis=0)
    ar = node("Range", [const(0, np.int64), seq, const(1, np.int64)], ["/model/mask/arange"], "/model/mask/Range")
    rows = node("Unsqueeze", [ar, const([1], np.int64)], ["/model/mask/rows"], "/model/mask/Unsqueeze")
    cols = node("Unsqueeze", [ar, const([0], np.int64)], ["/model/mask/cols"], "/model/mask/Unsqueeze_1")
    future = node("Greater", [cols, rows], ["/model/mask/future"], "/model/mask/Greater")
    future = node("Unsqueeze", [future, const([0, 1], np.int64)], ["/model/mask/future_4d"],
                  "/model/mask/Unsqueeze_2")
    keys = node("Unsqueeze", ["attention_mask", const([1, 2], np.int64)], ["/model/mask/keys"],
                "/model/mask/Unsqueeze_3")
    pad = node("Equal", [keys, const(0, np.int64)], ["/model/mask/padding"], "/model/mask/Equal")
    blocked = node("Or", [future, pad], ["/model/mask/blocked"], "/model/mask/Or")
    mask = node("Where", [blocked, const(np.finfo(np.float32).min, np.float32), const(0.0, np.float32)],
                ["/model/mask/causal_mask"], "/model/mask/Where")

    def rms_norm(x, weight, pre):
        sq = node("Pow", [x, const(2.0, np.float32)], [f"{pre}/Pow_output_0"], f"{pre}/Pow")
        var = node("ReduceMean", [sq], [f"{pre}/ReduceMean_output_0"], f"{pre}/ReduceMean", axes=[-1], keepdims=1)
        var = node("Add", [var, const(eps, np.float32)], [f"{pre}/Add_output_0"], f"{pre}/Add")
        rms = node("Sqrt", [var], [f"{pre}/Sqrt_output_0"], f"{pre}/Sqrt")
        normed = node("Div", [x, rms], [f"{pre}/Div_output_0"], f"{pre}/Div")
        return node("Mul", [weight, normed], [f"{pre}/Mul_output_0"], f"{pre}/Mul")

    def rotary(x, pre):
        """x * cos + rotate_half(x) * sin on [B, N, S, D]."""
        axes = const([-1], np.int64)
        x1 = node("Slice", [x, const([0], np.int64), const([D // 2], np.int64), axes], [f"{pre}/Slice_output_0"],
                  f"{pre}/Slice")
        x2 = node("Slice", [x, const([D // 2], np.int64), const([np.iinfo(np.int64).max], np.int64), axes],
                  [f"{pre}/Slice_1_output_0"], f"{pre}/Slice_1")
        neg = node("Neg", [x2], [f"{pre}/Neg_output_0"], f"{pre}/Neg")
        rot = node("Concat", [neg, x1], [f"{pre}/Concat_output_0"], f"{pre}/Concat", axis=-1)
        a = node("Mul", [x, cos_b], [f"{pre}/Mul_output_0"], f"{pre}/Mul")
        b = node("Mul", [rot, sin_b], [f"{pre}/Mul_1_output_0"], f"{pre}/Mul_1")
        return node("Add", [a, b], [f"{pre}/Add_output_0"], f"{pre}/Add")

    def repeat_kv(x, pre):
        """[B, nkv, S, D] -> [B, nq, S, D]"""
        u = node("Unsqueeze", [x, const([2], np.int64)], [f"{pre}/Unsqueeze_output_0"], f"{pre}/Unsqueeze")
        e = node("Expand", [u, const([1, 1, n_rep, 1, 1], np.int64)], [f"{pre}/Expand_output_0"], f"{pre}/Expand")
        return node("Reshape", [e, const([0, nq, -1, D], np.int64)], [f"{pre}/Reshape_output_0"], f"{pre}/Reshape")

    residual = x
    for i in range(L):
        p = f"layers.{i}."
        pre = f"/model/layers.{i}"
        for key in ("q_proj", "k_proj", "v_proj", "o_proj"):
            init(f"model.{p}self_attn.{key}.weight.T", w[p + f"self_attn.{key}.weight"].T)
        for key in ("gate_proj", "up_proj", "down_proj"):
            init(f"model.{p}mlp.{key}.weight.T", w[p + f"mlp.{key}.weight"].T)
        for key in ("input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm"):
            init(f"model.{p}{key}.weight", w[p + key + ".weight"])

        h = rms_norm(residual, f"model.{p}input_layernorm.weight", f"{pre}/input_layernorm")
        att = f"{pre}/self_attn"

        def heads(proj, n, norm):
            t = node("MatMul", [h, f"model.{p}self_attn.{proj}.weight.T"], [f"{att}/{proj}/MatMul_output_0"],
                     f"{att}/{proj}/MatMul")
            t = node("Reshape", [t, const([0, 0, n, D], np.int64)], [f"{att}/{proj}/Reshape_output_0"],
                     f"{att}/{proj}/Reshape")
            if norm:
                t = rms_norm(t, f"model.{p}self_attn.{norm}.weight", f"{att}/{norm}")
            return node("Transpose", [t], [f"{att}/{proj}/Transpose_output_0"], f"{att}/{proj}/Transpose",
                        perm=[0, 2, 1, 3])

        q = rotary(heads("q_proj", nq, "q_norm"), f"{att}/q_rotary")
        k = rotary(heads("k_proj", nkv, "k_norm"), f"{att}/k_rotary")
        v = heads("v_proj", nkv, None)
        k = repeat_kv(k, f"{att}/repeat_k")
        v = repeat_kv(v, f"{att}/repeat_v")
        kt = node("Transpose", [k], [f"{att}/Transpose_output_0"], f"{att}/Transpose", perm=[0, 1, 3, 2])
        scores = node("MatMul", [q, kt], [f"{att}/MatMul_output_0"], f"{att}/MatMul")
        scores = node("Mul", [scores, const(D ** -0.5, np.float32)], [f"{att}/Mul_output_0"], f"{att}/Mul")
        scores = node("Add", [scores, mask], [f"{att}/Add_output_0"], f"{att}/Add")
        probs = node("Softmax", [scores], [f"{att}/Softmax_output_0"], f"{att}/Softmax", axis=-1)
        a = node("MatMul", [probs, v], [f"{att}/MatMul_1_output_0"], f"{att}/MatMul_1")
        a = node("Transpose", [a], [f"{att}/Transpose_1_output_0"], f"{att}/Transpose_1", perm=[0, 2, 1, 3])
        a = node("Reshape", [a, const([0, 0, nq * D], np.int64)], [f"{att}/Reshape_output_0"], f"{att}/Reshape")
        a = node("MatMul", [a, f"model.{p}self_attn.o_proj.weight.T"], [f"{att}/o_proj/MatMul_output_0"],
                 f"{att}/o_proj/MatMul")
        residual = node("Add", [residual, a], [f"{pre}/Add_output_0"], f"{pre}/Add")

        h2 = rms_norm(residual, f"model.{p}post_attention_layernorm.weight", f"{pre}/post_attention_layernorm")
        mlp = f"{pre}/mlp"
        g = node("MatMul", [h2, f"model.{p}mlp.gate_proj.weight.T"], [f"{mlp}/gate_proj/MatMul_output_0"],
                 f"{mlp}/gate_proj/MatMul")
        u = node("MatMul", [h2, f"model.{p}mlp.up_proj.weight.T"], [f"{mlp}/up_proj/MatMul_output_0"],
                 f"{mlp}/up_proj/MatMul")
        sg = node("Sigmoid", [g], [f"{mlp}/act_fn/Sigmoid_output_0"], f"{mlp}/act_fn/Sigmoid")
        silu = node("Mul", [g, sg], [f"{mlp}/act_fn/Mul_output_0"], f"{mlp}/act_fn/Mul")
        gu = node("Mul", [silu, u], [f"{mlp}/Mul_output_0"], f"{mlp}/Mul")
        down = node("MatMul", [gu, f"model.{p}mlp.down_proj.weight.T"], [f"{mlp}/down_proj/MatMul_output_0"],
                    f"{mlp}/down_proj/MatMul")
        residual = node("Add", [residual, down], [f"{pre}/Add_1_output_0"], f"{pre}/Add_1")

    init("model.norm.weight", w["norm.weight"])
    out = rms_norm(residual, "model.norm.weight", "/model/norm")
    node("Identity", [out], ["last_hidden_state"], "/model/Identity")

    graph = helper.make_graph(nodes, "main_graph", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="qsearch/scripts/qwen3_graph.py --plain")
    model.ir_version = 8
    return model


def compare(cfg: dict, seed: int, scales: dict) -> float:
    """Runs the contrib and the plain graph of the same seed with onnxruntime (CPU) on random ids,
    one full row and one left-padded row, and returns the largest absolute difference of
    last_hidden_state over the real tokens."""
    import onnxruntime as ort

    w = make_weights(cfg, seed, scales)
    graphs = [build_model(cfg, w), build_plain_model(cfg, w)]
    rng = np.random.default_rng(seed + 1)
    rows, seq, pad = 2, 12, 5
    ids = rng.integers(0, cfg["vocab_size"], (rows, seq), dtype=np.int64)
    mask = np.ones((rows, seq), dtype=np.int64)
    mask[1, :pad] = 0
    positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
    outs = []
    for g in graphs:
        s = ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        for i in s.get_inputs():
            if i.name.startswith("past_key_values"):
                feeds[i.name] = np.zeros((rows, cfg["num_key_value_heads"], 0, cfg["head_dim"]), np.float32)
        outs.append(s.run(["last_hidden_state"], feeds)[0])
    real = mask.astype(bool)
    return float(np.abs(outs[0][real] - outs[1][real]).max())


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    c: dict[str, int] = {}
    for n in model.graph.node:
        c[n.op_type] = c.get(n.op_type, 0) + 1
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def save(model: onnx.ModelProto, out: str, external: bool) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if external:
        data_name = os.path.basename(out) + ".data"
        data_path = os.path.join(os.path.dirname(os.path.abspath(out)), data_name)
        if os.path.exists(data_path):
            os.remove(data_path)  # onnx appends to an existing data file
        onnx.save_model(model, out, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
    else:
        onnx.save_model(model, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--int8", action="store_true",
                    help="quantize with onnxruntime quantize_dynamic (QInt8 signed weights); "
                         "the fp32 graph is written next to --out as <out>.fp32.onnx first")
    ap.add_argument("--config-out", help="also write the dims as JSON here")
    ap.add_argument("--reranker", action="store_true",
                    help="a Qwen3-Reranker: `logits` [batch, seq, 2] (the no and yes rows of the tied output "
                         "projection) in place of last_hidden_state")
    ap.add_argument("--plain", action="store_true",
                    help="standard ONNX operators only, as torch.onnx exports Qwen3 (no contrib operators, "
                         "no key/value cache); same weights for the same seed")
    ap.add_argument("--compare", action="store_true",
                    help="with onnxruntime installed: check that the plain and the contrib graph of this seed "
                         "give the same last_hidden_state (max abs diff < 1e-4) before writing")
    args = ap.parse_args(argv)

    cfg = dict(SIZES[args.size])
    if args.compare:
        diff = compare(cfg, args.seed, SCALES[args.size])
        print(json.dumps({"plain_vs_contrib_max_abs_diff": diff}))
        if not diff < 1e-4:
            print(f"the plain graph differs from the contrib graph by {diff}", file=sys.stderr)
            return 1
    w = make_weights(cfg, args.seed, SCALES[args.size])
    if args.reranker and args.plain:
        ap.error("--reranker builds the contrib layout only")
    model = build_plain_model(cfg, w) if args.plain else build_model(cfg, w, reranker=args.reranker)
    del w
    counts = op_counts(model)
    big = args.size == "full"

    if args.int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        out_dir = os.path.dirname(os.path.abspath(args.out))
        tmp = os.path.join(out_dir, "tmp-fp32", "model.onnx")
        save(model, tmp, external=big)
        del model
        try:
            # shape inference stops at the com.microsoft ops: tell the quantizer activations are float
            quantize_dynamic(tmp, args.out, weight_type=QuantType.QInt8, use_external_data_format=False,
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
        finally:
            for f in os.listdir(os.path.dirname(tmp)):
                os.remove(os.path.join(os.path.dirname(tmp), f))
            os.rmdir(os.path.dirname(tmp))
        counts = op_counts(onnx.load(args.out, load_external_data=False))
    else:
        save(model, args.out, external=big)

    if args.config_out:
        with open(args.config_out, "w") as f:
            extra = dict(reranker_head=["no", "yes"], no_id=NO_ID, yes_id=YES_ID) if args.reranker else {}
            json.dump(dict(cfg, **extra, model_type="qwen3", seed=args.seed, weight_scales=SCALES[args.size],
                           generator="scripts/qwen3_graph.py"), f, indent=2)
            f.write("\n")
    print(json.dumps({"out": args.out, "size": args.size, "int8": args.int8, "reranker": args.reranker,
                      "op_counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
