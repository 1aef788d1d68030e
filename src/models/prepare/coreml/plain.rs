//! The CoreML rewrite of an export in standard operators only ([`Layout::Plain`], as `torch.onnx`
//! or `optimum` write Qwen3): see the parent module's documentation for what it does.

use super::*;

/// How an export spells its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::models::prepare) enum Layout {
    /// ONNX Runtime's contrib operators (the hub export): RotaryEmbedding, MultiHeadAttention,
    /// SimplifiedLayerNormalization...
    Contrib,
    /// Standard operators only (torch.onnx, optimum).
    Plain,
}

/// The layout of `graph`, from its nodes: any contrib operator makes it [`Layout::Contrib`].
pub(in crate::models::prepare) fn layout(graph: &GraphProto) -> Layout {
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
pub(super) fn plain_graph(
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
    let activations = depends_on(graph, super::super::EMBEDS_INPUT);
    let (norms, in_norms) = rms_norms(graph, &scalars, src);
    let nodes = std::mem::take(&mut graph.node);
    let inits = graph.initializer.clone();
    for (i, n) in nodes.into_iter().enumerate() {
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
            ("", "Cast") if precision == Precision::F16 && casts_to_f32(&n) => b.push(cast_to_f16(n)),
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
    let activations = depends_on(graph, super::super::EMBEDS_INPUT);
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
        match super::super::proto::consumers(graph, name)[..] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_read_from_the_nodes_and_both_spellings_of_rmsnorm_are_found() {
        use crate::models::prepare::proto::graph_with;
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
}
