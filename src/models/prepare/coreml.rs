//! The CoreML rewrite: the export's graph (token table already cut) becomes a graph of standard
//! ONNX operators from the list CoreML's MLProgram format accepts ([`COREML_OPS`]), with fixed
//! shapes, one graph per [`Bucket`] of rows x tokens. ONNX Runtime's own contrib operators are
//! spelled out:
//!
//! - `SimplifiedLayerNormalization` (RMSNorm): `x / sqrt(mean(x*x) + eps) * gamma`, computed in
//!   f32 in an fp16 graph (a square of the residual stream overflows fp16);
//!   `SkipSimplifiedLayerNormalization` adds its residual first.
//! - `RotaryEmbedding`: `x * cos + rotate_half(x) * sin` with cos/sin constants for positions
//!   `0..tokens`: inputs are padded on the right, so every row's real tokens sit at those
//!   positions (the `position_ids` input goes away).
//! - `MultiHeadAttention`: `softmax(q k^T * scale + mask) v` with MatMul/Softmax; the mask adds
//!   the causal constant and `-10000` where `attention_mask` is 0.
//! - The key/value cache (`Concat` with a past input) is dropped: each bucket runs whole.
//!
//! An export in standard operators only (as `torch.onnx` or `optimum` write Qwen3: no contrib
//! operator, [`Layout::Plain`]) needs less: its `Constant` nodes become initializers (CoreML wants
//! constant `Slice` bounds as initializers), the cos/sin rows its `Gather` takes at `position_ids`
//! become constants for positions `0..tokens`, the attention mask it builds from dynamic shapes
//! (Shape/Range/Greater/Equal/Where...) gives way to the same causal and padding bias as above at
//! each `Add` before a `Softmax`, RMSNorm's Pow/ReduceMean/Add/Sqrt/Div/Mul runs in f32 as above,
//! `Neg` becomes a `Mul` by -1 and `Expand` to a constant shape a `Mul` by ones (neither is a
//! CoreML operator). Anything left outside [`COREML_OPS`] is an error naming it.
//!
//! What cannot be spelled out is an error; the caller keeps the reason as a note.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{GraphProto, NodeProto, TensorProto};
use protobuf::Enum;

use super::attention::rank;
use super::proto::{Dim, int_attr, int_attribute, int64_tensor, node, node_ints, prune, tensor_input};
use super::shapes::Bucket;
use super::token_table::tensor_bytes;

mod plain;
use plain::{Layout, layout, plain_graph};

/// The operators CoreML's MLProgram format takes (ONNX Runtime 1.31's
/// `coreml_supported_mlprogram_ops.md`, default domain only).
pub const COREML_OPS: &[&str] = &[
    "Add",
    "And",
    "ArgMax",
    "AveragePool",
    "Cast",
    "Clip",
    "Concat",
    "Conv",
    "ConvTranspose",
    "Cos",
    "DepthToSpace",
    "Ceil",
    "Div",
    "Elu",
    "Erf",
    "Exp",
    "GatherND",
    "Gemm",
    "Gelu",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GridSample",
    "GroupNormalization",
    "HardSigmoid",
    "Identity",
    "InstanceNormalization",
    "LayerNormalization",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Max",
    "Mul",
    "Pow",
    "PRelu",
    "Reciprocal",
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "Relu",
    "Reshape",
    "Resize",
    "Round",
    "Shape",
    "Sin",
    "Slice",
    "Softplus",
    "Split",
    "Sub",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Tanh",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// The nodes of `graph` CoreML would refuse by operator: `(operator, count)`, most first.
pub fn outside_coreml(graph: &GraphProto) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        let standard = n.domain.is_empty() || n.domain == "ai.onnx";
        if !standard || !COREML_OPS.contains(&n.op_type.as_str()) {
            let name = if standard { n.op_type.clone() } else { format!("{}:{}", n.domain, n.op_type) };
            *counts.entry(name).or_default() += 1;
        }
    }
    let mut out: Vec<(String, usize)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// Element type of the graph's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Precision {
    F32,
    F16,
}

impl Precision {
    fn data_type(self) -> DataType {
        match self {
            Precision::F32 => DataType::FLOAT,
            Precision::F16 => DataType::FLOAT16,
        }
    }
}

/// Rewrites `graph` in place for `bucket`. `src` is where external tensors are read from. In an
/// fp16 graph the weights are f16 already ([`super::fp16::initializers`]); new constants follow `precision`.
pub(super) fn standard_graph(
    graph: &mut GraphProto,
    bucket: Bucket,
    precision: Precision,
    opset: i64,
    src: &Path,
) -> Result<(), String> {
    if layout(graph) == Layout::Plain {
        return plain_graph(graph, bucket, precision, opset, src);
    }
    let original = graph.clone();
    let mut b = Builder { nodes: Vec::new(), inits: Vec::new(), precision, opset, next: 0 };
    let (rows, tokens) = (bucket.rows as i64, bucket.tokens as i64);
    let head_dim = head_dim(&original)?;
    let renames = drop_cache(graph);
    let mask = b.attention_bias(rows, tokens);
    let mut rotary: HashMap<String, (String, String)> = HashMap::new();
    for n in std::mem::take(&mut graph.node) {
        let mut n = n;
        for input in n.input.iter_mut() {
            if let Some(to) = renames.get(input.as_str()) {
                *input = to.clone();
            }
        }
        let eps = |n: &NodeProto| float_attr(n, "epsilon").unwrap_or(1e-5);
        match (n.domain.as_str(), n.op_type.as_str()) {
            (_, "SimplifiedLayerNormalization") => {
                if n.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(format!("{}: inverse deviation output is read", n.name));
                }
                b.rms_norm(&n.input[0], &n.input[1], eps(&n), &n.output[0]);
            }
            ("com.microsoft", "SkipSimplifiedLayerNormalization") => {
                if n.output.get(1).is_some_and(|o| !o.is_empty()) || n.output.get(2).is_some_and(|o| !o.is_empty()) {
                    return Err(format!("{}: mean and inverse deviation outputs are read", n.name));
                }
                let sum = match n.output.get(3).filter(|o| !o.is_empty()) {
                    Some(o) => o.clone(),
                    None => b.name("skip_sum"),
                };
                b.push(node("Add", &[&n.input[0], &n.input[1]], &[&sum], &[]));
                let sum = match n.input.get(3).filter(|s| !s.is_empty()) {
                    Some(bias) => {
                        let with_bias = b.name("skip_bias");
                        b.push(node("Add", &[&sum, bias], &[&with_bias], &[]));
                        with_bias
                    }
                    None => sum,
                };
                b.rms_norm(&sum, &n.input[2], eps(&n), &n.output[0]);
            }
            ("com.microsoft", "RotaryEmbedding") => {
                if int_attr(&n, "interleaved").unwrap_or(0) != 0 {
                    return Err(format!("{}: interleaved rotary embedding", n.name));
                }
                if int_attr(&n, "rotary_embedding_dim").is_some_and(|d| d != 0 && d != head_dim) {
                    return Err(format!("{}: partial rotary embedding", n.name));
                }
                if float_attr(&n, "scale").is_some_and(|s| s != 1.0) {
                    return Err(format!("{}: scaled rotary embedding", n.name));
                }
                let key = format!("{}\0{}", n.input[2], n.input[3]);
                if !rotary.contains_key(&key) {
                    let tables = b.rotary_tables(&original, &n.input[2], &n.input[3], tokens, src)?;
                    rotary.insert(key.clone(), tables);
                }
                let (cos, sin) = rotary[&key].clone();
                let r = rank(&original, &n.input[0]).ok_or_else(|| format!("{}: input rank unknown", n.name))?;
                b.rotary(&n.input[0], &cos, &sin, r, head_dim, &n.output[0])?;
            }
            ("com.microsoft", "MultiHeadAttention") => {
                let heads = int_attr(&n, "num_heads").filter(|&h| h > 0).ok_or(format!("{}: no num_heads", n.name))?;
                if (3..8).any(|i| i != 4 && n.input.get(i).is_some_and(|s| !s.is_empty())) {
                    return Err(format!("{}: bias, attention bias or past inputs", n.name));
                }
                if n.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(format!("{}: present outputs are read", n.name));
                }
                let causal = int_attr(&n, "unidirectional").unwrap_or(0) == 1;
                let scale = float_attr(&n, "scale").unwrap_or(1.0 / (head_dim as f32).sqrt());
                let kv = |i: usize| {
                    rank(&original, &n.input[i]).ok_or_else(|| format!("{}: key/value rank unknown", n.name))
                };
                let shapes = Attention { rows, tokens, heads, head_dim, scale, causal };
                let (k_rank, v_rank) = (kv(1)?, kv(2)?);
                b.attention(&n.input[0], (&n.input[1], k_rank), (&n.input[2], v_rank), &mask, shapes, &n.output[0])?;
            }
            ("com.microsoft", op) => return Err(format!("{}: no standard form for com.microsoft {op}", n.name)),
            ("", "Cast") if precision == Precision::F16 && casts_to_f32(&n) => b.push(cast_to_f16(n)),
            _ => b.push(n),
        }
    }
    graph.node = b.nodes;
    graph.initializer.extend(b.inits);
    graph.output.retain(|o| !o.name.starts_with("present"));
    prune(graph);
    fix_interface(graph, bucket, precision)
}

/// Whether `n` (a Cast) casts to f32.
fn casts_to_f32(n: &NodeProto) -> bool {
    int_attr(n, "to") == Some(DataType::FLOAT as i64)
}

/// A Cast to f32 made a Cast to f16, for an fp16 graph.
fn cast_to_f16(mut n: NodeProto) -> NodeProto {
    n.attribute.iter_mut().filter(|a| a.name == "to").for_each(|a| a.i = DataType::FLOAT16 as i64);
    n
}

/// Head size from the rotary cos cache (`[positions, head_dim / 2]`).
fn head_dim(graph: &GraphProto) -> Result<i64, String> {
    let rotary = graph.node.iter().find(|n| n.op_type == "RotaryEmbedding").ok_or("no RotaryEmbedding node")?;
    let cos = graph.initializer.iter().find(|t| Some(&t.name) == rotary.input.get(2)).ok_or("no constant cos cache")?;
    match cos.dims[..] {
        [_, half] => Ok(half * 2),
        _ => Err(format!("cos cache has shape {:?}", cos.dims)),
    }
}

/// Past-key concatenations go: whatever read `present.*` reads the new keys/values directly.
fn drop_cache(graph: &mut GraphProto) -> HashMap<String, String> {
    let past: HashSet<&str> =
        graph.input.iter().map(|i| i.name.as_str()).filter(|n| n.starts_with("past_key_values")).collect();
    let mut renames = HashMap::new();
    graph.node.retain(|n| {
        let bypass = n.op_type == "Concat" && n.input.len() == 2 && past.contains(n.input[0].as_str());
        if bypass {
            renames.insert(n.output[0].clone(), n.input[1].clone());
        }
        !bypass
    });
    renames
}

/// Fixed shapes on the inputs and the output.
fn fix_interface(graph: &mut GraphProto, bucket: Bucket, precision: Precision) -> Result<(), String> {
    let (r, s) = (bucket.rows as i64, bucket.tokens as i64);
    for input in graph.input.iter_mut() {
        let width = dims(input).and_then(|d| d.last().copied()).unwrap_or(0);
        *input = match input.name.as_str() {
            super::EMBEDS_INPUT => {
                tensor_input(&input.name, precision.data_type(), &[Dim::Value(r), Dim::Value(s), Dim::Value(width)])
            }
            "attention_mask" => tensor_input(&input.name, DataType::INT64, &[Dim::Value(r), Dim::Value(s)]),
            other => return Err(format!("graph input `{other}` has no fixed form")),
        };
    }
    let hidden = graph.input.iter().find(|i| i.name == super::EMBEDS_INPUT).and_then(dims).map(|d| d[2]).unwrap_or(0);
    for output in graph.output.iter_mut() {
        *output =
            tensor_input(&output.name, precision.data_type(), &[Dim::Value(r), Dim::Value(s), Dim::Value(hidden)]);
    }
    Ok(())
}

fn dims(v: &onnx_protobuf::ValueInfoProto) -> Option<Vec<i64>> {
    use onnx_protobuf::{tensor_shape_proto::dimension::Value, type_proto};
    let Some(type_proto::Value::TensorType(t)) = &v.type_.value else { return None };
    let shape = t.shape.as_ref()?;
    Some(shape.dim.iter().map(|d| if let Some(Value::DimValue(v)) = d.value { v } else { 0 }).collect())
}

fn float_attr(n: &NodeProto, name: &str) -> Option<f32> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

fn floats_of(t: &TensorProto, src: &Path) -> Result<Vec<f32>, String> {
    let bytes = tensor_bytes(t, src).map_err(|e| format!("{e:#}"))?;
    match DataType::from_i32(t.data_type) {
        Some(DataType::FLOAT) => {
            Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        Some(DataType::FLOAT16) => {
            Ok(bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
        }
        _ => Err(format!("{} is not a float tensor", t.name)),
    }
}

/// The shapes one attention node works with.
#[derive(Debug, Clone, Copy)]
struct Attention {
    rows: i64,
    tokens: i64,
    heads: i64,
    head_dim: i64,
    scale: f32,
    causal: bool,
}

/// New nodes and constants, in order, with names of their own.
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    precision: Precision,
    opset: i64,
    next: usize,
}

impl Builder {
    fn name(&mut self, what: &str) -> String {
        self.next += 1;
        format!("qsearch/{what}/{}", self.next)
    }

    fn push(&mut self, n: NodeProto) {
        self.nodes.push(n);
    }

    /// A constant of the graph's precision (`f32` forces f32).
    fn constant(&mut self, what: &str, dims: &[i64], values: &[f32], f32: bool) -> String {
        let name = self.name(what);
        let mut t = TensorProto::new();
        t.dims = dims.to_vec();
        if f32 || self.precision == Precision::F32 {
            t.data_type = DataType::FLOAT as i32;
            t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        } else {
            t.data_type = DataType::FLOAT16 as i32;
            t.raw_data = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
        }
        t.name = name.clone();
        self.inits.push(t);
        name
    }

    fn shape(&mut self, values: &[i64]) -> String {
        let name = self.name("shape");
        self.inits.push(int64_tensor(&name, &[values.len() as i64], values));
        name
    }

    /// `op(inputs)` into a new tensor.
    fn op(&mut self, op: &str, inputs: &[&str], ints: &[(&str, i64)]) -> String {
        let out = self.name(&op.to_lowercase());
        self.push(node(op, inputs, &[&out], ints));
        out
    }

    fn reshape(&mut self, x: &str, to: &[i64]) -> String {
        let shape = self.shape(to);
        self.op("Reshape", &[x, &shape], &[])
    }

    fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        let out = self.name("transpose");
        self.push(node_ints("Transpose", &[x], &[&out], "perm", perm));
        out
    }

    fn reduce_mean_last(&mut self, x: &str) -> String {
        let out = self.name("mean");
        if self.opset >= 18 {
            let axes = self.name("axes");
            self.inits.push(int64_tensor(&axes, &[1], &[-1]));
            self.push(node("ReduceMean", &[x, &axes], &[&out], &[("keepdims", 1)]));
        } else {
            let mut n = node_ints("ReduceMean", &[x], &[&out], "axes", &[-1]);
            n.attribute.push(int_attribute("keepdims", 1));
            self.push(n);
        }
        out
    }

    /// `x / sqrt(mean(x*x) + eps) * gamma` into `out`; in f32 even in an fp16 graph.
    fn rms_norm(&mut self, x: &str, gamma: &str, eps: f32, out: &str) {
        let half = self.precision == Precision::F16;
        let x = if half { self.op("Cast", &[x], &[("to", DataType::FLOAT as i64)]) } else { x.to_string() };
        let square = self.op("Mul", &[&x, &x], &[]);
        let mean = self.reduce_mean_last(&square);
        let eps = self.constant("eps", &[], &[eps], true);
        let var = self.op("Add", &[&mean, &eps], &[]);
        let rms = self.op("Sqrt", &[&var], &[]);
        let normed = self.op("Div", &[&x, &rms], &[]);
        let normed = if half { self.op("Cast", &[&normed], &[("to", DataType::FLOAT16 as i64)]) } else { normed };
        self.push(node("Mul", &[&normed, gamma], &[out], &[]));
    }

    /// cos and sin for positions `0..tokens`, `[tokens, head_dim]` (each half repeated).
    fn rotary_tables(
        &mut self,
        graph: &GraphProto,
        cos: &str,
        sin: &str,
        tokens: i64,
        src: &Path,
    ) -> Result<(String, String), String> {
        let mut out = Vec::new();
        for name in [cos, sin] {
            let t = graph.initializer.iter().find(|t| t.name == name).ok_or(format!("{name} is not a constant"))?;
            let (positions, half) = (t.dims[0], t.dims[1]);
            if positions < tokens {
                return Err(format!("{name} covers {positions} positions, fewer than {tokens}"));
            }
            let values = floats_of(t, src)?;
            let mut full = Vec::with_capacity((tokens * half * 2) as usize);
            for p in 0..tokens as usize {
                let row = &values[p * half as usize..(p + 1) * half as usize];
                full.extend_from_slice(row);
                full.extend_from_slice(row);
            }
            out.push(self.constant("rotary", &[tokens, half * 2], &full, false));
        }
        let sin = out.pop().expect("two tables");
        Ok((out.pop().expect("two tables"), sin))
    }

    /// Rotary embedding of `x` (`[B, N, S, D]`, or `[B, S, N*D]` when `rank` is 3) into `out`.
    fn rotary(&mut self, x: &str, cos: &str, sin: &str, rank: usize, d: i64, out: &str) -> Result<(), String> {
        let (x, cos, sin) = match rank {
            4 => (x.to_string(), cos.to_string(), sin.to_string()),
            3 => {
                // [B, S, N, D] against cos/sin as [S, 1, D].
                let x = self.reshape(x, &[0, 0, -1, d]);
                let cos = self.reshape(cos, &[-1, 1, d]);
                let sin = self.reshape(sin, &[-1, 1, d]);
                (x, cos, sin)
            }
            other => return Err(format!("rotary embedding of a rank-{other} tensor")),
        };
        let half = d / 2;
        let slice = |b: &mut Builder, from: i64, to: i64| {
            let (starts, ends, axes) = (b.shape(&[from]), b.shape(&[to]), b.shape(&[-1]));
            b.op("Slice", &[&x, &starts, &ends, &axes], &[])
        };
        let (first, second) = (slice(self, 0, half), slice(self, half, d));
        let minus = self.constant("minus_one", &[], &[-1.0], false);
        let negated = self.op("Mul", &[&second, &minus], &[]);
        let rotated = self.op("Concat", &[&negated, &first], &[("axis", -1)]);
        let a = self.op("Mul", &[&x, &cos], &[]);
        let b = self.op("Mul", &[&rotated, &sin], &[]);
        if rank == 3 {
            let sum = self.op("Add", &[&a, &b], &[]);
            let shape = self.shape(&[0, 0, -1]);
            self.push(node("Reshape", &[&sum, &shape], &[out], &[]));
        } else {
            self.push(node("Add", &[&a, &b], &[out], &[]));
        }
        Ok(())
    }

    /// `[rows, 1, tokens, tokens]`: 0 where a query token may look, -10000 after it (when causal
    /// is asked for) and at padding.
    fn attention_bias(&mut self, rows: i64, tokens: i64) -> AttentionBias {
        let mask = self.op("Cast", &["attention_mask"], &[("to", self.precision.data_type() as i64)]);
        let one = self.constant("one", &[], &[1.0], false);
        let off = self.op("Sub", &[&one, &mask], &[]);
        let big = self.constant("mask_value", &[], &[-10_000.0], false);
        let padding = self.op("Mul", &[&off, &big], &[]);
        let padding = self.reshape(&padding, &[rows, 1, 1, tokens]);
        let s = tokens as usize;
        let upper: Vec<f32> = (0..s * s).map(|i| if i % s > i / s { -10_000.0 } else { 0.0 }).collect();
        let causal = self.constant("causal", &[1, 1, tokens, tokens], &upper, false);
        let both = self.op("Add", &[&padding, &causal], &[]);
        AttentionBias { padding, both }
    }

    /// `softmax(q k^T * scale + bias) v` into `out` (`[B, S, N*D]`); key and value are
    /// `[B, N, T, D]` (rank 4) or `[B, T, N*D]` (rank 3).
    fn attention(
        &mut self,
        q: &str,
        (k, k_rank): (&str, usize),
        (v, v_rank): (&str, usize),
        bias: &AttentionBias,
        a: Attention,
        out: &str,
    ) -> Result<(), String> {
        let heads = |b: &mut Builder, x: &str, rank: usize| -> Result<String, String> {
            match rank {
                4 => Ok(x.to_string()),
                3 => {
                    let split = b.reshape(x, &[a.rows, a.tokens, a.heads, a.head_dim]);
                    Ok(b.transpose(&split, &[0, 2, 1, 3]))
                }
                other => Err(format!("attention over a rank-{other} tensor")),
            }
        };
        let q = heads(self, q, 3)?;
        let scale = self.constant("scale", &[], &[a.scale], false);
        let q = self.op("Mul", &[&q, &scale], &[]);
        let k = heads(self, k, k_rank)?;
        let kt = self.transpose(&k, &[0, 1, 3, 2]);
        let scores = self.op("MatMul", &[&q, &kt], &[]);
        let masked = self.op("Add", &[&scores, if a.causal { &bias.both } else { &bias.padding }], &[]);
        let weights = self.op("Softmax", &[&masked], &[("axis", -1)]);
        let v = heads(self, v, v_rank)?;
        let mixed = self.op("MatMul", &[&weights, &v], &[]);
        let back = self.transpose(&mixed, &[0, 2, 1, 3]);
        let shape = self.shape(&[a.rows, a.tokens, a.heads * a.head_dim]);
        self.push(node("Reshape", &[&back, &shape], &[out], &[]));
        Ok(())
    }
}

struct AttentionBias {
    /// Padding only, `[rows, 1, 1, tokens]`.
    padding: String,
    /// Padding and causal, `[rows, 1, tokens, tokens]`.
    both: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_the_rewrite_writes_is_on_the_list() {
        for op in [
            "Add",
            "Mul",
            "Sub",
            "Div",
            "Sqrt",
            "ReduceMean",
            "Cast",
            "Slice",
            "Concat",
            "Reshape",
            "Transpose",
            "MatMul",
            "Softmax",
            "Tile",
            "Unsqueeze",
            "Sigmoid",
        ] {
            assert!(COREML_OPS.contains(&op), "{op}");
        }
        let mut g = GraphProto::new();
        g.node.push(node("Gather", &["a", "b"], &["c"], &[]));
        let mut mha = node("MultiHeadAttention", &["a"], &["d"], &[]);
        mha.domain = "com.microsoft".into();
        g.node.push(mha);
        g.node.push(node("MatMul", &["c", "d"], &["e"], &[]));
        assert_eq!(
            outside_coreml(&g),
            vec![("Gather".to_string(), 1), ("com.microsoft:MultiHeadAttention".to_string(), 1)]
        );
    }
}
