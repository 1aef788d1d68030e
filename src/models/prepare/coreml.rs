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
            ("", "Cast") if precision == Precision::F16 && int_attr(&n, "to") == Some(DataType::FLOAT as i64) => {
                // A Cast has its `to` (checked by the guard): it now casts to f16.
                n.attribute.iter_mut().filter(|a| a.name == "to").for_each(|a| a.i = DataType::FLOAT16 as i64);
                b.push(n);
            }
            _ => b.push(n),
        }
    }
    graph.node = b.nodes;
    graph.initializer.extend(b.inits);
    graph.output.retain(|o| !o.name.starts_with("present"));
    prune(graph);
    fix_interface(graph, bucket, precision)
}

/// How an export spells its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// ONNX Runtime's contrib operators (the hub export): RotaryEmbedding, MultiHeadAttention,
    /// SimplifiedLayerNormalization...
    Contrib,
    /// Standard operators only (torch.onnx, optimum).
    Plain,
}

/// The layout of `graph`, from its nodes: any contrib operator makes it [`Layout::Contrib`].
pub(super) fn layout(graph: &GraphProto) -> Layout {
    const CONTRIB: &[&str] = &[
        "SimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "RotaryEmbedding",
        "MultiHeadAttention",
        "GroupQueryAttention",
    ];
    let contrib = graph.node.iter().any(|n| n.domain == "com.microsoft" || CONTRIB.contains(&n.op_type.as_str()));
    if contrib { Layout::Contrib } else { Layout::Plain }
}

/// [`standard_graph`] for a [`Layout::Plain`] graph.
fn plain_graph(
    graph: &mut GraphProto,
    bucket: Bucket,
    precision: Precision,
    opset: i64,
    src: &Path,
) -> Result<(), String> {
    let mut b = Builder { nodes: Vec::new(), inits: Vec::new(), precision, opset, next: 0 };
    let (rows, tokens) = (bucket.rows as i64, bucket.tokens as i64);
    let scalars = constants_to_initializers(graph, precision, src)?;
    fixed_positions(graph, tokens, src)?;
    let renames = drop_cache(graph);
    for n in graph.node.iter_mut() {
        for input in n.input.iter_mut() {
            if let Some(to) = renames.get(input.as_str()) {
                *input = to.clone();
            }
        }
    }
    graph.output.retain(|o| !o.name.starts_with("present"));
    let mask_input = graph
        .input
        .iter()
        .find(|i| i.name == "attention_mask")
        .cloned()
        .ok_or("the graph has no attention_mask input")?;
    let mask = b.attention_bias(rows, tokens);
    replace_masks(graph, &mask.both)?;
    // The export's own mask construction (and whatever else nothing reads now) goes; the new
    // bias reads attention_mask from the builder's nodes, which prune does not see.
    prune(graph);
    if !graph.input.iter().any(|i| i.name == "attention_mask") {
        graph.input.push(mask_input);
    }
    let activations = depends_on(graph, super::EMBEDS_INPUT);
    let (norms, in_norms) = rms_norms(graph, &scalars, src);
    let nodes = std::mem::take(&mut graph.node);
    let inits = graph.initializer.clone();
    for (i, mut n) in nodes.into_iter().enumerate() {
        if in_norms.contains(&i) {
            continue;
        }
        if let Some((x, gamma, eps)) = norms.get(&i) {
            b.rms_norm(x, gamma, *eps, &n.output[0]);
            continue;
        }
        let what = || format!("{} ({})", n.name, n.op_type);
        match (n.domain.as_str(), n.op_type.as_str()) {
            ("", "Neg") => {
                let minus = b.constant("minus_one", &[], &[-1.0], false);
                b.push(node("Mul", &[&n.input[0], &minus], &[&n.output[0]], &[]));
            }
            ("", "Expand") => {
                if !activations.contains(&n.input[0]) {
                    return Err(format!("{}: expands a tensor that is not an activation", what()));
                }
                let shape = inits
                    .iter()
                    .find(|t| t.name == n.input[1])
                    .and_then(|t| ints_of(t, src))
                    .ok_or_else(|| format!("{}: expands to a shape that is not a constant", what()))?;
                let count = shape.iter().product::<i64>().max(0) as usize;
                let ones = b.constant("ones", &shape, &vec![1.0; count], false);
                b.push(node("Mul", &[&n.input[0], &ones], &[&n.output[0]], &[]));
            }
            ("", "Pow") => match scalar(&n.input[1], &scalars, &inits, src) {
                Some(2.0) => b.push(node("Mul", &[&n.input[0], &n.input[0]], &[&n.output[0]], &[])),
                _ if precision == Precision::F32 => b.push(n),
                e => return Err(format!("{}: exponent {e:?} (CoreML takes Pow in fp32 only)", what())),
            },
            ("", "Cast") if precision == Precision::F16 && int_attr(&n, "to") == Some(DataType::FLOAT as i64) => {
                n.attribute.iter_mut().filter(|a| a.name == "to").for_each(|a| a.i = DataType::FLOAT16 as i64);
                b.push(n);
            }
            _ => b.push(n),
        }
    }
    graph.node = b.nodes;
    graph.initializer.extend(b.inits);
    // Shapes inferred for the export (f32, dynamic) no longer hold: ONNX Runtime infers them again.
    graph.value_info.clear();
    prune(graph);
    let mut left: Vec<String> = Vec::new();
    for (op, count) in outside_coreml(graph) {
        let first =
            graph.node.iter().find(|n| n.op_type == op.rsplit(':').next().unwrap_or(&op)).map(|n| n.name.as_str());
        left.push(format!("{op} x{count} (first: {})", first.unwrap_or("?")));
    }
    if !left.is_empty() {
        return Err(format!("operators CoreML does not take, left in the plain graph: {}", left.join(", ")));
    }
    fix_interface(graph, bucket, precision)
}

/// `Constant` nodes become initializers (f16 for floats in an fp16 graph); the float scalars'
/// exact values, by name (an f16 epsilon of 1e-6 is off by a percent).
fn constants_to_initializers(
    graph: &mut GraphProto,
    precision: Precision,
    src: &Path,
) -> Result<HashMap<String, f32>, String> {
    let mut scalars = HashMap::new();
    let mut kept = Vec::with_capacity(graph.node.len());
    for n in std::mem::take(&mut graph.node) {
        if n.op_type != "Constant" || !(n.domain.is_empty() || n.domain == "ai.onnx") {
            kept.push(n);
            continue;
        }
        let a = n.attribute.first().ok_or_else(|| format!("{}: a Constant without a value", n.name))?;
        let mut t = match a.name.as_str() {
            "value" => a.t.clone().into_option().ok_or_else(|| format!("{}: a Constant without a tensor", n.name))?,
            "value_float" | "value_floats" => {
                let floats = if a.name == "value_float" { vec![a.f] } else { a.floats.clone() };
                let mut t = TensorProto::new();
                if a.name == "value_floats" {
                    t.dims = vec![floats.len() as i64];
                }
                t.data_type = DataType::FLOAT as i32;
                t.raw_data = floats.iter().flat_map(|v| v.to_le_bytes()).collect();
                t
            }
            "value_int" => int64_tensor("", &[], &[a.i]),
            "value_ints" => int64_tensor("", &[a.ints.len() as i64], &a.ints),
            other => return Err(format!("{}: a Constant with {other}", n.name)),
        };
        t.name = n.output[0].clone();
        if t.data_type == DataType::FLOAT as i32 {
            let values = floats_of(&t, src)?;
            if values.len() == 1 {
                scalars.insert(t.name.clone(), values[0]);
            }
            if precision == Precision::F16 {
                let max = f32::from(half::f16::MAX);
                t.raw_data = values
                    .iter()
                    .flat_map(|&v| {
                        half::f16::from_f32(if v.is_finite() { v.clamp(-max, max) } else { v }).to_le_bytes()
                    })
                    .collect();
                t.float_data.clear();
                t.data_type = DataType::FLOAT16 as i32;
            }
        }
        graph.initializer.push(t);
    }
    graph.node = kept;
    Ok(scalars)
}

/// Each `Gather` of a constant table (cos, sin) at `position_ids` becomes the table's rows
/// `0..tokens`, `[1, tokens, width]`: inputs are padded on the right, so every row's real tokens
/// sit at those positions. Anything else reading `position_ids` is an error.
fn fixed_positions(graph: &mut GraphProto, tokens: i64, src: &Path) -> Result<(), String> {
    let mut tables = Vec::new();
    let mut gone = HashSet::new();
    for (i, n) in graph.node.iter().enumerate().filter(|(_, n)| n.input.iter().any(|s| s == "position_ids")) {
        let table = (n.op_type == "Gather"
            && n.input.get(1).is_some_and(|s| s == "position_ids")
            && int_attr(n, "axis").unwrap_or(0) == 0)
            .then(|| graph.initializer.iter().find(|t| t.name == n.input[0]))
            .flatten()
            .ok_or_else(|| {
                format!(
                    "{} ({}) reads position_ids: only a Gather from a constant table (cos, sin) can be fixed to \
                     positions 0..{tokens}",
                    n.name, n.op_type
                )
            })?;
        let width = match DataType::from_i32(table.data_type) {
            Some(DataType::FLOAT) => 4,
            Some(DataType::FLOAT16) => 2,
            _ => return Err(format!("{}: the table it takes at position_ids is not a float table", n.name)),
        };
        let [positions, cols] = table.dims[..] else {
            return Err(format!("{}: the table it takes at position_ids has shape {:?}", n.name, table.dims));
        };
        if positions < tokens {
            return Err(format!("{}: its table covers {positions} positions, fewer than {tokens}", n.name));
        }
        let bytes = tensor_bytes(table, src).map_err(|e| format!("{e:#}"))?;
        let mut t = TensorProto::new();
        t.name = n.output[0].clone();
        t.dims = vec![1, tokens, cols];
        t.data_type = table.data_type;
        t.raw_data = bytes[..(tokens * cols) as usize * width].to_vec();
        tables.push(t);
        gone.insert(i);
    }
    let mut i = 0;
    graph.node.retain(|_| {
        i += 1;
        !gone.contains(&(i - 1))
    });
    graph.initializer.extend(tables);
    Ok(())
}

/// The tensors computed from `root` (a graph input), `root` included.
fn depends_on(graph: &GraphProto, root: &str) -> HashSet<String> {
    let mut set = HashSet::from([root.to_string()]);
    for n in &graph.node {
        if n.input.iter().any(|i| set.contains(i)) {
            set.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
    }
    set
}

/// At every `Softmax` (attention), the mask the export adds to the scores (computed from
/// `attention_mask`, not from the hidden states) is replaced by `bias`.
fn replace_masks(graph: &mut GraphProto, bias: &str) -> Result<(), String> {
    let from_mask = depends_on(graph, "attention_mask");
    let activations = depends_on(graph, super::EMBEDS_INPUT);
    let producer: HashMap<String, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i))).collect();
    let softmaxes: Vec<usize> = (0..graph.node.len()).filter(|&i| graph.node[i].op_type == "Softmax").collect();
    if softmaxes.is_empty() {
        return Err("no Softmax node: no attention found".into());
    }
    for s in softmaxes {
        let softmax = &graph.node[s];
        let mut at = producer.get(&softmax.input[0]).copied();
        // Softmax in f32 of f16 scores: a Cast between.
        if let Some(c) = at.filter(|&c| graph.node[c].op_type == "Cast") {
            at = producer.get(&graph.node[c].input[0]).copied();
        }
        let add = at.filter(|&a| graph.node[a].op_type == "Add").ok_or_else(|| {
            let what = at.map_or("a graph input".to_string(), |a| graph.node[a].op_type.clone());
            format!("{}: the Softmax reads {what}, not scores plus an attention mask", softmax.name)
        })?;
        let is_mask = |name: &String| from_mask.contains(name) && !activations.contains(name);
        let n = &graph.node[add];
        let k = (0..2)
            .find(|&k| {
                n.input.get(k).is_some_and(is_mask) && n.input.get(1 - k).is_some_and(|o| activations.contains(o))
            })
            .ok_or_else(|| {
                format!("{}: neither input of the Add before {} is the attention mask", n.name, softmax.name)
            })?;
        graph.node[add].input[k] = bias.to_string();
    }
    Ok(())
}

/// The value of a scalar constant `name`.
fn scalar(name: &str, scalars: &HashMap<String, f32>, inits: &[TensorProto], src: &Path) -> Option<f32> {
    if let Some(&v) = scalars.get(name) {
        return Some(v);
    }
    let t = inits.iter().find(|t| t.name == name)?;
    match floats_of(t, src).ok()?[..] {
        [v] => Some(v),
        _ => None,
    }
}

fn ints_of(t: &TensorProto, src: &Path) -> Option<Vec<i64>> {
    if t.data_type != DataType::INT64 as i32 {
        return None;
    }
    if !t.int64_data.is_empty() {
        return Some(t.int64_data.clone());
    }
    let bytes = tensor_bytes(t, src).ok()?;
    Some(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

/// RMSNorm as an export spells it: `Pow(x, 2)`, `ReduceMean` over the last axis, `Add(eps)`,
/// `Sqrt`, `Div(x, ·)` (or `Reciprocal` and `Mul(x, ·)`), `Mul` by a constant gamma. Returns, by
/// the index of the last `Mul`, `(x, gamma, eps)`, and the indices of the other nodes of each.
#[allow(clippy::type_complexity)]
fn rms_norms(
    graph: &GraphProto,
    scalars: &HashMap<String, f32>,
    src: &Path,
) -> (HashMap<usize, (String, String, f32)>, HashSet<usize>) {
    let (mut norms, mut inside) = (HashMap::new(), HashSet::new());
    let only = |name: &str, op: &str| -> Option<usize> {
        match super::proto::consumers(graph, name)[..] {
            [i] if graph.node[i].op_type == op => Some(i),
            _ => None,
        }
    };
    let other = |i: usize, this: &str| -> Option<String> {
        let n = &graph.node[i];
        match &n.input[..] {
            [a, b] if a == this => Some(b.clone()),
            [a, b] if b == this => Some(a.clone()),
            _ => None,
        }
    };
    let is_init = |name: &str| graph.initializer.iter().any(|t| t.name == name);
    for (p, pow) in graph.node.iter().enumerate().filter(|(_, n)| n.op_type == "Pow") {
        let found = (|| {
            let x = pow.input[0].clone();
            (scalar(pow.input.get(1)?, scalars, &graph.initializer, src)? == 2.0).then_some(())?;
            let mean = only(&pow.output[0], "ReduceMean")?;
            let m = &graph.node[mean];
            let axes = match m.attribute.iter().find(|a| a.name == "axes") {
                Some(a) => a.ints.clone(),
                None => ints_of(graph.initializer.iter().find(|t| Some(&t.name) == m.input.get(1))?, src)?,
            };
            (axes == [-1] && int_attr(m, "keepdims").unwrap_or(1) == 1).then_some(())?;
            let add = only(&m.output[0], "Add")?;
            let eps = scalar(&other(add, &m.output[0])?, scalars, &graph.initializer, src)?;
            let sqrt = only(&graph.node[add].output[0], "Sqrt")?;
            let root = &graph.node[sqrt].output[0];
            let mut chain = vec![p, mean, add, sqrt];
            let normed = match only(root, "Div") {
                Some(div) if graph.node[div].input[..] == [x.clone(), root.clone()] => {
                    chain.push(div);
                    graph.node[div].output[0].clone()
                }
                _ => {
                    let r = only(root, "Reciprocal")?;
                    let mul = only(&graph.node[r].output[0], "Mul")?;
                    (other(mul, &graph.node[r].output[0])? == x).then_some(())?;
                    chain.extend([r, mul]);
                    graph.node[mul].output[0].clone()
                }
            };
            let last = only(&normed, "Mul")?;
            let gamma = other(last, &normed)?;
            is_init(&gamma).then_some(())?;
            Some((last, (x, gamma, eps), chain))
        })();
        if let Some((last, norm, chain)) = found {
            norms.insert(last, norm);
            inside.extend(chain);
        }
    }
    (norms, inside)
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
    fn the_layout_is_read_from_the_nodes_and_both_spellings_of_rmsnorm_are_found() {
        use super::super::proto::graph_with;
        let scalar = |name: &str, v: f32| {
            let mut t = TensorProto::new();
            t.name = name.into();
            t.data_type = DataType::FLOAT as i32;
            t.raw_data = v.to_le_bytes().to_vec();
            t
        };
        let inits = || vec![scalar("two", 2.0), scalar("eps", 1e-6), scalar("gamma", 1.5)];
        let mean = || node_ints("ReduceMean", &["sq"], &["mean"], "axes", &[-1]);
        let divided = graph_with(
            vec![
                node("Pow", &["x", "two"], &["sq"], &[]),
                mean(),
                node("Add", &["mean", "eps"], &["var"], &[]),
                node("Sqrt", &["var"], &["rms"], &[]),
                node("Div", &["x", "rms"], &["normed"], &[]),
                node("Mul", &["gamma", "normed"], &["y"], &[]),
            ],
            inits(),
        );
        let reciprocal = graph_with(
            vec![
                node("Pow", &["x", "two"], &["sq"], &[]),
                mean(),
                node("Add", &["eps", "mean"], &["var"], &[]),
                node("Sqrt", &["var"], &["rms"], &[]),
                node("Reciprocal", &["rms"], &["inv"], &[]),
                node("Mul", &["x", "inv"], &["normed"], &[]),
                node("Mul", &["normed", "gamma"], &["y"], &[]),
            ],
            inits(),
        );
        for (g, last) in [(&divided, 5), (&reciprocal, 6)] {
            assert_eq!(layout(g), Layout::Plain);
            let (norms, inside) = rms_norms(g, &HashMap::new(), Path::new("."));
            assert_eq!(norms[&last], ("x".to_string(), "gamma".to_string(), 1e-6));
            assert_eq!(inside.len(), last);
        }
        // Read twice (the mean squared is also output): not a norm to fold.
        let mut shared = divided.clone();
        shared.node.push(node("Identity", &["mean"], &["z"], &[]));
        assert!(rms_norms(&shared, &HashMap::new(), Path::new(".")).0.is_empty());
        let mut contrib = divided;
        contrib.node[5].domain = "com.microsoft".into();
        assert_eq!(layout(&contrib), Layout::Contrib);
    }

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
