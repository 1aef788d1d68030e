//! A Qwen3-Reranker export keeps the whole output projection: 151,669 columns a token, of which
//! the score reads two. Preparing keeps the columns of "no" and "yes" alone, so that `logits`
//! is `[batch, seq, 2]` = `[no, yes]` (what [`super::local`] reads first), and the projection
//! costs two dot products a token instead of 151,669.
//!
//! The head is the node that makes `logits`, back through `Cast`, `Identity` and the `Mul` or
//! `Add` of a scale: a `MatMul` whose weights are an initializer `[hidden, vocab]` (or the
//! `Transpose` of the token table, tied), or the `MatMulInteger` of a dynamically quantized
//! export (int8 weights `[hidden, vocab]`, a zero point of one value or one a column). Anything
//! else is left as it is, and said.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{Message, ModelProto, NodeProto, TensorProto};
use protobuf::Enum;

/// The graph at `model` with its head cut to the `[no, yes]` columns, written under `dir` (kept:
/// a second call finds it); `Ok(None)` when the head is two wide already.
pub fn two_columns(model: &Path, dir: &Path, output: &str, no: usize, yes: usize) -> Result<Option<PathBuf>> {
    let meta = std::fs::metadata(model).with_context(|| format!("cannot read {}", model.display()))?;
    let stamp = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    let key = format!("{}-{}-{no}-{yes}", meta.len(), stamp.as_secs());
    let out = dir.join(format!("reranker-{key}")).join("model.onnx");
    if out.is_file() {
        return Ok(Some(out));
    }
    if crate::models::source::references_external_data(model) {
        bail!("{} keeps weights in another file: run as it is", model.display());
    }
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    let mut proto = ModelProto::parse_from_bytes(&bytes).with_context(|| format!("{} is not ONNX", model.display()))?;
    drop(bytes);
    if !cut(&mut proto, output, no, yes)? {
        return Ok(None);
    }
    let parent = out.parent().expect("a file in a folder");
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let part = out.with_extension("part");
    std::fs::write(&part, proto.write_to_bytes()?).with_context(|| format!("cannot write {}", part.display()))?;
    std::fs::rename(&part, &out)?;
    Ok(Some(out))
}

/// Cuts the head of `model` in place; false when it is two wide already.
pub fn cut(model: &mut ModelProto, output: &str, no: usize, yes: usize) -> Result<bool> {
    let graph = model.graph.as_mut().context("no graph")?;
    let Some(declared) = graph.output.iter().find(|o| o.name == output) else { return Ok(false) };
    let last = declared.type_.tensor_type().shape.dim.last().map(|d| d.dim_value()).unwrap_or(0);
    if (1..=2).contains(&last) {
        // [no, yes] already, or a cross-encoder's one logit.
        return Ok(false);
    }
    let producer = |graph: &onnx_protobuf::GraphProto, name: &str| {
        graph.node.iter().position(|n| n.output.iter().any(|o| o == name))
    };
    // Back from the output to the projection, through what keeps the last axis as it is.
    let mut name = output.to_string();
    let mut path = vec![name.clone()];
    let head = loop {
        let at = producer(graph, &name).with_context(|| format!("nothing makes `{name}`"))?;
        let node = &graph.node[at];
        match node.op_type.as_str() {
            "MatMul" | "MatMulInteger" => break at,
            "Cast" | "Identity" | "Mul" | "Add" => {
                name = node.input.first().context("a node without inputs")?.clone();
                path.push(name.clone());
            }
            other => bail!("the reranker's `{output}` comes from a {other}, not a projection qsearch knows"),
        }
    };
    let node: NodeProto = graph.node[head].clone();
    let weights = node.input.get(1).context("a projection without weights")?.clone();
    let (tensor, transposed) = match graph.initializer.iter().position(|t| t.name == weights) {
        Some(i) => (graph.initializer[i].clone(), false),
        None => {
            // The tied table, transposed by a node.
            let t = producer(graph, &weights).map(|i| &graph.node[i]).filter(|n| n.op_type == "Transpose");
            let table = t.and_then(|t| t.input.first()).context("the projection's weights are not an initializer")?;
            let i = graph.initializer.iter().position(|x| &x.name == table).context("no table")?;
            (graph.initializer[i].clone(), true)
        }
    };
    let dims: Vec<usize> = tensor.dims.iter().map(|&d| d as usize).collect();
    let [a, b] = dims[..] else { bail!("the projection's weights have shape {dims:?}") };
    let (hidden, vocab) = if transposed { (b, a) } else { (a, b) };
    if vocab <= 2 {
        // [no, yes] already, or a cross-encoder's one logit.
        return Ok(false);
    }
    if no.max(yes) >= vocab {
        bail!("the projection has {vocab} columns: no column {} for yes or no", no.max(yes));
    }
    let elem = tensor.data_type;
    let size = match DataType::from_i32(elem) {
        Some(DataType::FLOAT) => 4,
        Some(DataType::INT8 | DataType::UINT8) => 1,
        other => bail!("the projection's weights are {other:?}"),
    };
    let raw: Vec<u8> = if !tensor.raw_data.is_empty() {
        tensor.raw_data.clone()
    } else if !tensor.float_data.is_empty() {
        tensor.float_data.iter().flat_map(|x| x.to_le_bytes()).collect()
    } else {
        bail!("the projection's weights are kept elsewhere")
    };
    anyhow::ensure!(raw.len() == hidden * vocab * size, "the projection's weights are {} bytes", raw.len());
    // [hidden, 2]: column `no` then `yes` of [hidden, vocab], or of the table's rows when tied.
    let mut kept = Vec::with_capacity(hidden * 2 * size);
    for h in 0..hidden {
        for &c in &[no, yes] {
            let at = if transposed { (c * hidden + h) * size } else { (h * vocab + c) * size };
            kept.extend_from_slice(&raw[at..at + size]);
        }
    }
    let mut head_weights = TensorProto::new();
    head_weights.name = format!("{weights}.no_yes");
    head_weights.data_type = elem;
    head_weights.dims = vec![hidden as i64, 2];
    head_weights.raw_data = kept;
    graph.node[head].input[1] = head_weights.name.clone();
    graph.initializer.push(head_weights);
    // A zero point a column keeps its two.
    if node.op_type == "MatMulInteger"
        && let Some(zp) = node.input.get(3).filter(|z| !z.is_empty())
        && let Some(i) = graph.initializer.iter().position(|t| &t.name == zp)
        && graph.initializer[i].dims.iter().product::<i64>() == vocab as i64
    {
        let z = &graph.initializer[i];
        let two = vec![z.raw_data[no], z.raw_data[yes]];
        let mut zt = TensorProto::new();
        zt.name = format!("{zp}.no_yes");
        zt.data_type = z.data_type;
        zt.dims = vec![2];
        zt.raw_data = two;
        graph.node[head].input[3] = zt.name.clone();
        graph.initializer.push(zt);
    }
    // Shapes along the way say 2 now, or nothing.
    graph.value_info.retain(|v| !path.contains(&v.name));
    for o in graph.output.iter_mut().filter(|o| o.name == output) {
        let dims = &mut o.type_.mut_or_insert_default().mut_tensor_type().shape.mut_or_insert_default().dim;
        if let Some(last) = dims.last_mut() {
            last.set_dim_value(2);
        }
    }
    // The whole projection goes; the graph keeps the inputs it was exported with.
    crate::models::prepare::proto::prune_nodes(graph);
    Ok(true)
}
