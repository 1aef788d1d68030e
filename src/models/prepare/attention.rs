//! The causal-attention rewrite: `MultiHeadAttention` with `unidirectional=1` and a key-padding
//! mask is replaced by `GroupQueryAttention`, which is causal by construction and takes per-row
//! lengths instead of a mask. Inputs are then padded on the right: under causal attention a real
//! token never sees the padding after it, so the vectors are the reference's. Where the export
//! concatenates past keys and values, the new node reads and writes the cache itself, and
//! [`drop_cache`] makes the documents' graph without it.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{GraphProto, NodeProto, type_proto};

use super::proto::{int_attr, int64_tensor, node, node_ints, prune};

/// What the attention rewrite did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Rewritten {
    /// Attention nodes now `GroupQueryAttention`.
    pub(super) nodes: usize,
    /// Of those, the ones that read the graph's `past_key_values` and write its `present` outputs.
    pub(super) with_past: usize,
    /// Attention nodes left as they were.
    pub(super) kept: usize,
}

/// Replaces causal `MultiHeadAttention` nodes by `GroupQueryAttention`.
pub(super) fn causal_attention(graph: &mut GraphProto, notes: &mut Vec<String>) -> Rewritten {
    let mut done = Rewritten::default();
    if !graph.input.iter().any(|i| i.name == "attention_mask") {
        notes.push("attention kept: the graph has no attention_mask input".into());
        return done;
    }
    let mut plan = HashMap::new();
    let mut replaced = HashSet::new();
    for (i, n) in graph.node.iter().enumerate() {
        if n.op_type != "MultiHeadAttention" || n.domain != "com.microsoft" {
            continue;
        }
        match gqa_for(graph, n) {
            Ok(gqa) => {
                done.with_past += usize::from(!gqa.replaces.is_empty());
                replaced.extend(gqa.replaces);
                plan.insert(i, gqa.nodes);
            }
            Err(why) => {
                done.kept += 1;
                notes.push(format!("attention node {} kept: {why}", n.name));
            }
        }
    }
    if plan.is_empty() {
        return done;
    }
    done.nodes = plan.len();
    let old = std::mem::take(&mut graph.node);
    for (i, n) in old.into_iter().enumerate() {
        if let Some(nodes) = plan.remove(&i) {
            graph.node.extend(nodes);
        } else if !replaced.contains(&i) {
            graph.node.push(n);
        }
    }
    // Per-row lengths and the padded width, from the mask; computed once for every layer.
    let shared = vec![
        node("ReduceSum", &["attention_mask", "qsearch/axis1"], &["qsearch/lengths"], &[("keepdims", 0)]),
        node("Sub", &["qsearch/lengths", "qsearch/one"], &["qsearch/last"], &[]),
        node("Cast", &["qsearch/last"], &["qsearch/seqlens_k"], &[("to", DataType::INT32 as i64)]),
        node("Shape", &["attention_mask"], &["qsearch/mask_shape"], &[]),
        node("Gather", &["qsearch/mask_shape", "qsearch/one"], &["qsearch/width64"], &[("axis", 0)]),
        node("Cast", &["qsearch/width64"], &["qsearch/total_length"], &[("to", DataType::INT32 as i64)]),
    ];
    graph.node.splice(0..0, shared);
    graph.initializer.push(int64_tensor("qsearch/axis1", &[1], &[1]));
    graph.initializer.push(int64_tensor("qsearch/one", &[], &[1]));
    graph.initializer.push(int64_tensor("qsearch/flat", &[3], &[0, 0, -1]));
    done
}

struct Gqa {
    nodes: Vec<NodeProto>,
    /// Indices of the key/value `Concat`s with the past that GroupQueryAttention now does.
    replaces: Vec<usize>,
}

fn gqa_for(graph: &GraphProto, n: &NodeProto) -> Result<Gqa, String> {
    if int_attr(n, "unidirectional") != Some(1) {
        return Err("not causal (unidirectional is not 1)".into());
    }
    let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty());
    if input(3).is_some() {
        return Err("it has a projection bias".into());
    }
    if (5..n.input.len()).any(|i| input(i).is_some()) {
        return Err("it has an attention bias or past key/value inputs".into());
    }
    if n.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err("its present key/value outputs are used".into());
    }
    let heads = int_attr(n, "num_heads").ok_or("no num_heads")?;
    let (Some(q), Some(k), Some(v)) = (input(0), input(1), input(2)) else {
        return Err("packed query/key/value are not handled".into());
    };
    let out = &n.output[0];
    let mut nodes = Vec::new();
    // GroupQueryAttention reads key and value as [batch, seq, heads * head_dim].
    let mut flat = |x: &String, tag: &str| -> Result<String, String> {
        match rank(graph, x) {
            Some(3) => Ok(x.clone()),
            Some(4) => {
                let t = format!("{out}/qsearch_{tag}_bsnh");
                let f = format!("{out}/qsearch_{tag}_flat");
                nodes.push(node_ints("Transpose", &[x], &[&t], "perm", &[0, 2, 1, 3]));
                nodes.push(node("Reshape", &[&t, "qsearch/flat"], &[&f], &[]));
                Ok(f)
            }
            r => Err(format!("cannot tell the layout of its {tag} input (rank {r:?})")),
        }
    };
    // Grouped heads: when key and value are the usual repeat of fewer heads (Unsqueeze, Tile or
    // Expand, Reshape), GroupQueryAttention reads the unrepeated ones and the repeat goes away.
    let (k, v, kv_heads) = match (unrepeat(graph, k), unrepeat(graph, v)) {
        (Some((k1, nk)), Some((v1, nv))) if nk == nv && heads % nk == 0 && rank(graph, &k1) == Some(4) => {
            (k1, v1, heads / nk)
        }
        _ => (k.clone(), v.clone(), heads),
    };
    // The cache: when those heads are `Concat(past_key_values.*, new)`, GroupQueryAttention
    // takes the past and the new part, and writes the graph's `present` outputs itself. A run can
    // then continue from an earlier one (the query instruction's keys and values are reused).
    let (past, replaces) = match (with_past(graph, &k), with_past(graph, &v)) {
        (Some((ki, kp, kn)), Some((vi, vp, vn))) if kv_heads != heads => (Some(((kp, kn), (vp, vn))), vec![ki, vi]),
        _ => (None, vec![]),
    };
    let mut gqa = match &past {
        Some(((kp, kn), (vp, vn))) => {
            let (kf, vf) = (flat(kn, "key")?, flat(vn, "value")?);
            node(
                "GroupQueryAttention",
                &[q, &kf, &vf, kp, vp, "qsearch/seqlens_k", "qsearch/total_length"],
                &[out, &k, &v],
                &[("num_heads", heads), ("kv_num_heads", kv_heads)],
            )
        }
        None => {
            let (kf, vf) = (flat(&k, "key")?, flat(&v, "value")?);
            node(
                "GroupQueryAttention",
                &[q, &kf, &vf, "", "", "qsearch/seqlens_k", "qsearch/total_length"],
                &[out],
                &[("num_heads", heads), ("kv_num_heads", kv_heads)],
            )
        }
    };
    gqa.domain = "com.microsoft".into();
    gqa.name = format!("{}/qsearch_gqa", n.name);
    if let Some(scale) = n.attribute.iter().find(|a| a.name == "scale") {
        gqa.attribute.push(scale.clone());
    }
    nodes.push(gqa);
    Ok(Gqa { nodes, replaces })
}

/// `(index, past, new)` when `name` is `Concat(past, new)` along the sequence axis, `past` a graph
/// input (the export's `past_key_values.*`).
fn with_past(graph: &GraphProto, name: &str) -> Option<(usize, String, String)> {
    let i = graph.node.iter().position(|n| n.output.iter().any(|o| o == name))?;
    let c = &graph.node[i];
    let axis = int_attr(c, "axis")?;
    let is_input = graph.input.iter().any(|x| x.name == c.input[0]);
    (c.op_type == "Concat" && c.input.len() == 2 && (axis == 2 || axis == -2) && is_input)
        .then(|| (i, c.input[0].clone(), c.input[1].clone()))
}

/// `(x, n)` when `name` is `x` with each head repeated `n` times along axis 1, written as
/// `Reshape(Tile|Expand(Unsqueeze(x, axis 2)))` with constant repeats.
fn unrepeat(graph: &GraphProto, name: &str) -> Option<(String, i64)> {
    let producer = |name: &str| graph.node.iter().find(|n| n.output.iter().any(|o| o == name));
    let ints = |name: &str| -> Option<Vec<i64>> {
        let t = graph.initializer.iter().find(|t| t.name == name)?;
        if t.data_type != DataType::INT64 as i32 {
            return None;
        }
        if !t.int64_data.is_empty() {
            return Some(t.int64_data.clone());
        }
        Some(t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect())
    };
    let reshape = producer(name).filter(|n| n.op_type == "Reshape")?;
    let repeat = producer(&reshape.input[0])?;
    let counts = ints(repeat.input.get(1)?)?;
    let n = match (repeat.op_type.as_str(), counts.as_slice()) {
        ("Tile", [1, 1, n, 1, 1]) => *n,
        ("Expand", [_, _, n, _, _]) if *n > 0 => *n,
        _ => return None,
    };
    let unsqueeze = producer(&repeat.input[0]).filter(|n| n.op_type == "Unsqueeze")?;
    let axes = match unsqueeze.input.get(1) {
        Some(a) => ints(a)?,
        None => unsqueeze.attribute.iter().find(|a| a.name == "axes")?.ints.clone(),
    };
    (axes == [2]).then(|| (unsqueeze.input[0].clone(), n))
}

/// The rank of a tensor, followed back through the few shape-keeping or shape-setting operators
/// an attention block's key and value pass through.
pub(super) fn rank(graph: &GraphProto, name: &str) -> Option<usize> {
    if let Some(i) = graph.input.iter().find(|i| i.name == name) {
        return match &i.type_.value {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| s.dim.len()),
            _ => None,
        };
    }
    if let Some(t) = graph.initializer.iter().find(|t| t.name == name) {
        return Some(t.dims.len());
    }
    let producer = graph.node.iter().find(|n| n.output.iter().any(|o| o == name))?;
    let init_len = |i: usize| -> Option<usize> {
        let t = graph.initializer.iter().find(|t| Some(&t.name) == producer.input.get(i))?;
        (t.dims.len() == 1).then(|| t.dims[0] as usize)
    };
    match producer.op_type.as_str() {
        "Reshape" => init_len(1),
        "Unsqueeze" => {
            let axes =
                init_len(1).or_else(|| producer.attribute.iter().find(|a| a.name == "axes").map(|a| a.ints.len()))?;
            Some(rank(graph, &producer.input[0])? + axes)
        }
        "Expand" => Some(rank(graph, &producer.input[0])?.max(init_len(1)?)),
        "Transpose"
        | "Tile"
        | "RotaryEmbedding"
        | "Concat"
        | "Add"
        | "Mul"
        | "Sub"
        | "Div"
        | "Cast"
        | "Identity"
        | "SimplifiedLayerNormalization"
        | "LayerNormalization" => rank(graph, &producer.input[0]),
        _ => None,
    }
}

/// The documents' graph: the same, without the key/value cache (no past inputs, no present
/// outputs), which GroupQueryAttention computes faster.
pub(super) fn drop_cache(graph: &mut GraphProto) {
    for n in graph.node.iter_mut().filter(|n| n.op_type == "GroupQueryAttention") {
        n.output.truncate(1);
        for i in [3, 4] {
            if let Some(input) = n.input.get_mut(i) {
                input.clear();
            }
        }
    }
    graph.output.retain(|o| !o.name.starts_with("present"));
    prune(graph);
}

#[cfg(test)]
mod tests {
    use onnx_protobuf::{TensorProto, ValueInfoProto};

    use super::*;
    use crate::models::prepare::proto::{Dim, graph_with, tensor_input};

    #[test]
    fn only_causal_attention_without_bias_becomes_group_query_attention() {
        let mha = |name: &str, causal: i64, bias: bool| {
            let mut inputs = vec!["q", "k4", "v4", "", "mask32"];
            if bias {
                inputs.push("bias");
            }
            let mut n = node("MultiHeadAttention", &inputs, &[name], &[("num_heads", 4), ("unidirectional", causal)]);
            n.domain = "com.microsoft".into();
            n.name = name.into();
            n
        };
        let nodes = vec![
            node("Reshape", &["x", "shape4"], &["k4"], &[]),
            node("Reshape", &["x", "shape4"], &["v4"], &[]),
            mha("a", 1, false),
            mha("b", 0, false),
            mha("c", 1, true),
        ];
        let inits = vec![int64_tensor("shape4", &[4], &[0, 4, -1, 8])];
        let mut g = graph_with(nodes, inits);
        let mut notes = Vec::new();
        assert_eq!(causal_attention(&mut g, &mut notes), Rewritten { nodes: 1, with_past: 0, kept: 2 });
        assert_eq!(notes.len(), 2, "{notes:?}");
        let gqa = g.node.iter().find(|n| n.op_type == "GroupQueryAttention").unwrap();
        assert_eq!(gqa.output, vec!["a".to_string()]);
        assert_eq!(gqa.input[5], "qsearch/seqlens_k");
        assert_eq!(int_attr(gqa, "kv_num_heads"), Some(4));
    }

    /// `{x}_rep`: `source` (2 heads) with each head repeated twice, as exports write it.
    fn repeat(x: &str, source: &str) -> Vec<NodeProto> {
        vec![
            node("Unsqueeze", &[source, "axes2"], &[&format!("{x}_u")], &[]),
            node("Tile", &[&format!("{x}_u"), "reps"], &[&format!("{x}_t")], &[]),
            node("Reshape", &[&format!("{x}_t"), "shape4"], &[&format!("{x}_rep")], &[]),
        ]
    }

    fn repeat_inits() -> Vec<TensorProto> {
        vec![
            int64_tensor("shape4", &[4], &[0, 2, -1, 8]),
            int64_tensor("axes2", &[1], &[2]),
            int64_tensor("reps", &[5], &[1, 1, 2, 1, 1]),
        ]
    }

    /// A causal 4-head attention node reading repeated key/value heads `k_rep`, `v_rep`.
    fn causal_mha() -> NodeProto {
        let mut mha = node(
            "MultiHeadAttention",
            &["q", "k_rep", "v_rep", "", "mask32"],
            &["y"],
            &[("num_heads", 4), ("unidirectional", 1)],
        );
        mha.domain = "com.microsoft".into();
        mha
    }

    #[test]
    fn a_cache_concat_becomes_the_attention_past_and_the_documents_graph_drops_it() {
        let mha = causal_mha();
        let mut nodes = Vec::new();
        let mut cache = Vec::new();
        for (x, name) in [("k", "key"), ("v", "value")] {
            let (past, present) = (format!("past_key_values.0.{name}"), format!("present.0.{name}"));
            nodes.push(node("Reshape", &["x", "shape4"], &[&format!("{x}_new")], &[]));
            nodes.push(node("Concat", &[&past, &format!("{x}_new")], &[&present], &[("axis", 2)]));
            nodes.extend(repeat(x, &present));
            cache.push((past, present));
        }
        nodes.push(mha);
        let mut g = graph_with(nodes, repeat_inits());
        for (past, present) in cache {
            let dims = [Dim::Param("b"), Dim::Value(2), Dim::Param("p"), Dim::Value(8)];
            g.input.push(tensor_input(&past, DataType::FLOAT, &dims));
            let mut out = ValueInfoProto::new();
            out.name = present;
            g.output.push(out);
        }
        let done = causal_attention(&mut g, &mut Vec::new());
        assert_eq!(done, Rewritten { nodes: 1, with_past: 1, kept: 0 });
        prune(&mut g);
        let gqa = g.node.iter().find(|n| n.op_type == "GroupQueryAttention").unwrap();
        assert_eq!(&gqa.input[3..5], ["past_key_values.0.key", "past_key_values.0.value"]);
        assert_eq!(gqa.output, vec!["y", "present.0.key", "present.0.value"]);
        assert!(!g.node.iter().any(|n| n.op_type == "Concat"), "the attention concatenates the past itself");
        drop_cache(&mut g);
        let gqa = g.node.iter().find(|n| n.op_type == "GroupQueryAttention").unwrap();
        assert_eq!((gqa.output.len(), gqa.input[3].as_str()), (1, ""));
        assert!(
            !g.input.iter().any(|i| i.name.starts_with("past"))
                && !g.output.iter().any(|o| o.name.starts_with("present"))
        );
    }

    #[test]
    fn repeated_key_value_heads_are_read_unrepeated() {
        let mut nodes = Vec::new();
        for x in ["k", "v"] {
            nodes.push(node("Reshape", &["x", "shape4"], &[&format!("{x}2")], &[]));
            nodes.extend(repeat(x, &format!("{x}2")));
        }
        nodes.push(causal_mha());
        let mut g = graph_with(nodes, repeat_inits());
        assert_eq!(causal_attention(&mut g, &mut Vec::new()).nodes, 1);
        prune(&mut g);
        let gqa = g.node.iter().find(|n| n.op_type == "GroupQueryAttention").unwrap();
        assert_eq!(int_attr(gqa, "kv_num_heads"), Some(2));
        assert!(!g.node.iter().any(|n| n.op_type == "Tile"), "the repeat is gone");
    }
}
