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

Usage:
  python scripts/qwen3_graph.py --size tiny --out tests/fixtures/qwen3-tiny/model.onnx
  python scripts/qwen3_graph.py --size full --out target/bench-models/qwen3-full-fp32/model.onnx
  python scripts/qwen3_graph.py --size full --int8 --out target/bench-models/qwen3-full-int8/model.onnx
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


def build_model(cfg: dict, w: dict[str, np.ndarray]) -> onnx.ModelProto:
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

    graph = helper.make_graph(nodes, "qwen3_random", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        producer_name="qsearch/scripts/qwen3_graph.py",
    )
    model.ir_version = 8
    return model


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
    args = ap.parse_args(argv)

    cfg = dict(SIZES[args.size])
    w = make_weights(cfg, args.seed, SCALES[args.size])
    model = build_model(cfg, w)
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
            json.dump(dict(cfg, model_type="qwen3", seed=args.seed, weight_scales=SCALES[args.size],
                           generator="scripts/qwen3_graph.py"), f, indent=2)
            f.write("\n")
    print(json.dumps({"out": args.out, "size": args.size, "int8": args.int8, "op_counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
