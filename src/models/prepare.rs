//! The model-preparation step: a decoder export (Qwen3) is rewritten once into the graph qsearch
//! runs, and kept beside the other models. Two rewrites, each checked by the fidelity tests:
//!
//! * **Causal attention.** `MultiHeadAttention` with `unidirectional=1` and a key-padding mask is
//!   replaced by `GroupQueryAttention`, which is causal by construction and takes per-row lengths
//!   instead of a mask. Inputs are then padded on the right: under causal attention a real token
//!   never sees the padding after it, so the vectors are the reference's.
//! * **The token-embedding lookup outside the graph.** The `Gather` of `input_ids` from the
//!   151,669 x 1,024 table (with its `DequantizeLinear` in int8 exports) is cut out; the graph
//!   takes `inputs_embeds` and the table goes to a flat file the embedder reads rows from. A table
//!   that large as a graph input pushes CoreML off the accelerator; without it the graph is the
//!   transformer alone, on every provider.
//!
//! When every attention node also takes the export's past keys and values, two graphs are written
//! over one weights file: `model.onnx` for documents (no key/value cache: GroupQueryAttention is
//! markedly slower when it writes one) and `model_continue.onnx` for queries, which continue
//! from the cached keys and values of the query instruction.
//!
//! What cannot be rewritten is left as it was and said in the manifest's notes. Preparation is
//! atomic: it is written to a temporary directory and renamed into place.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};
use protobuf::Enum;
use serde::{Deserialize, Serialize};

/// Bumped whenever the rewrite changes, so older preparations are redone.
pub const VERSION: u32 = 4;
const MANIFEST: &str = "prepared.json";
const MODEL: &str = "model.onnx";
const CONTINUE_MODEL: &str = "model_continue.onnx";
/// The weights both graphs share (when the export kept them inside its protobuf).
const WEIGHTS: &str = "qsearch_weights.bin";
const TABLE: &str = "embed_tokens.bin";
/// The graph input that replaces the lookup.
pub const EMBEDS_INPUT: &str = "inputs_embeds";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableType {
    F32,
    F16,
    I8,
    U8,
}

impl TableType {
    pub fn width(self) -> usize {
        match self {
            TableType::F32 => 4,
            TableType::F16 => 2,
            TableType::I8 | TableType::U8 => 1,
        }
    }
}

/// The token-embedding table, moved out of the graph: `rows x cols` values of `dtype` in `file`,
/// real value = (stored - zero_point) * scale for the integer types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    pub file: String,
    pub rows: usize,
    pub cols: usize,
    pub dtype: TableType,
    pub scale: f32,
    pub zero_point: i32,
    /// Element type of the `inputs_embeds` input: f16 for fp16 graphs, else f32.
    pub feed: TableType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub source: PathBuf,
    pub source_bytes: u64,
    pub source_modified_ns: u128,
    /// Attention nodes now causal `GroupQueryAttention`: inputs must be padded on the right.
    pub causal_attention: usize,
    /// Of those, the ones that take the graph's past keys and values (a run can continue another).
    pub past_attention: usize,
    /// Attention nodes left as they were (see `notes`).
    pub kept_attention: usize,
    /// The graph that reads and writes the key/value cache (when every attention node can).
    pub continue_model: Option<String>,
    pub table: Option<TableSpec>,
    /// What was left as it was, and why.
    pub notes: Vec<String>,
}

impl Manifest {
    pub fn right_padding(&self) -> bool {
        self.causal_attention > 0
    }

    /// Every attention node continues from past keys and values: a shared prefix (the query
    /// instruction) can be run once and reused.
    pub fn continues(&self) -> bool {
        self.continue_model.is_some()
    }
}

/// A prepared model on disk.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Prepared {
    pub fn model(&self) -> PathBuf {
        self.dir.join(MODEL)
    }
    /// The graph that continues from cached keys and values, if there is one.
    pub fn continue_model(&self) -> Option<PathBuf> {
        self.manifest.continue_model.as_ref().map(|m| self.dir.join(m))
    }
    pub fn table(&self) -> Option<PathBuf> {
        self.manifest.table.as_ref().map(|t| self.dir.join(&t.file))
    }
}

fn stat(source: &Path) -> Result<(u64, u128)> {
    let meta = fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
    let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok((meta.len(), modified))
}

/// The prepared form of `source` under `root`, made now if missing or stale.
/// `on` hears what is being done (it can take tens of seconds for a full-size model).
pub fn prepared(source: &Path, root: &Path, on: &mut dyn FnMut(&str)) -> Result<Prepared> {
    let (source, dir, bytes, modified) = locate(source, root)?;
    if let Some(p) = current(&source, &dir, bytes) {
        return Ok(p);
    }
    on(&format!("preparing {} for qsearch (once; rewrites attention and the token table)", source.display()));
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let tmp = tempfile::Builder::new().prefix(".prepare-").tempdir_in(root)?;
    let manifest = prepare_into(&source, tmp.path())?;
    let manifest = Manifest { source_bytes: bytes, source_modified_ns: modified, ..manifest };
    fs::write(tmp.path().join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    if dir.exists() {
        // A stale preparation (or one finished by another process meanwhile) makes way.
        if read_manifest(&dir).is_some_and(|m| m == manifest) {
            return Ok(Prepared { dir, manifest });
        }
        fs::remove_dir_all(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    let kept = tmp.keep();
    if let Err(e) = fs::rename(&kept, &dir) {
        let _ = fs::remove_dir_all(&kept);
        if read_manifest(&dir).is_some() {
            return prepared(&source, root, on);
        }
        return Err(e).with_context(|| format!("moving the prepared model to {}", dir.display()));
    }
    remove_older(root, &dir, &source);
    Ok(Prepared { dir, manifest })
}

/// Earlier preparations of the same source (older rewrite, older file) are dead weight.
fn remove_older(root: &Path, keep: &Path, source: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        // Only the source is read: older manifests may lack later fields.
        #[derive(Deserialize)]
        struct Source {
            source: PathBuf,
        }
        let of = fs::read(dir.join(MANIFEST)).ok().and_then(|b| serde_json::from_slice::<Source>(&b).ok());
        if dir != keep && of.is_some_and(|m| m.source == source) {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// The up-to-date preparation of `source`, if one exists (nothing is made).
pub fn existing(source: &Path, root: &Path) -> Option<Prepared> {
    let (source, dir, bytes, _) = locate(source, root).ok()?;
    current(&source, &dir, bytes)
}

/// The canonical source, the directory its preparation belongs in, and the source's size and mtime.
fn locate(source: &Path, root: &Path) -> Result<(PathBuf, PathBuf, u64, u128)> {
    let source = source.canonicalize().with_context(|| format!("reading {}", source.display()))?;
    let (bytes, modified) = stat(&source)?;
    let key = blake3::hash(format!("{}\0{bytes}\0{modified}\0{VERSION}", source.display()).as_bytes()).to_hex();
    let dir = root.join(&key.as_str()[..16]);
    Ok((source, dir, bytes, modified))
}

fn current(source: &Path, dir: &Path, bytes: u64) -> Option<Prepared> {
    let manifest = read_manifest(dir)?;
    (manifest.version == VERSION && manifest.source == source && manifest.source_bytes == bytes)
        .then(|| Prepared { dir: dir.to_path_buf(), manifest })
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    serde_json::from_slice(&fs::read(dir.join(MANIFEST)).ok()?).ok()
}

/// Rewrites `source` into `out` (model, table, links to external data). The manifest's stat
/// fields are left for the caller.
pub fn prepare_into(source: &Path, out: &Path) -> Result<Manifest> {
    let bytes = fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let mut model =
        ModelProto::parse_from_bytes(&bytes).with_context(|| format!("{} is not an ONNX model", source.display()))?;
    drop(bytes);
    let src_dir = source.parent().unwrap_or(Path::new("."));
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut notes = Vec::new();

    let table = match lookup(graph) {
        Ok(found) => {
            let data = tensor_bytes(&graph.initializer[found.init], src_dir)?;
            fs::write(out.join(TABLE), &data).with_context(|| format!("writing {}", out.join(TABLE).display()))?;
            Some(cut_lookup(graph, &found))
        }
        Err(why) => {
            notes.push(format!("token table kept in the graph: {why}"));
            None
        }
    };
    let attention = causal_attention(graph, &mut notes);
    prune(graph);
    link_external_data(graph, src_dir, out)?;
    let continues = attention.nodes > 0 && attention.with_past == attention.nodes && attention.kept == 0;
    let mut continue_model = None;
    if continues {
        externalize(graph, &out.join(WEIGHTS))?;
        let file = out.join(CONTINUE_MODEL);
        fs::write(&file, model.write_to_bytes()?).with_context(|| format!("writing {}", file.display()))?;
        continue_model = Some(CONTINUE_MODEL.to_string());
        drop_cache(model.graph.as_mut().expect("checked above"));
    }
    let file = out.join(MODEL);
    fs::write(&file, model.write_to_bytes()?).with_context(|| format!("writing {}", file.display()))?;
    Ok(Manifest {
        version: VERSION,
        source: source.to_path_buf(),
        source_bytes: 0,
        source_modified_ns: 0,
        causal_attention: attention.nodes,
        past_attention: attention.with_past,
        kept_attention: attention.kept,
        continue_model,
        table,
        notes,
    })
}

/// Moves the weights kept inside the protobuf to one file beside it, so that two graphs can
/// share them.
fn externalize(graph: &mut GraphProto, file: &Path) -> Result<()> {
    use std::io::Write;
    let name = file.file_name().and_then(|n| n.to_str()).context("weights file name")?.to_string();
    let mut w = std::io::BufWriter::new(fs::File::create(file).with_context(|| format!("writing {}", file.display()))?);
    let mut offset = 0usize;
    for t in graph.initializer.iter_mut().filter(|t| t.raw_data.len() >= 1024) {
        // Page-aligned, so that ONNX Runtime may map each tensor.
        let pad = offset.next_multiple_of(4096) - offset;
        w.write_all(&vec![0u8; pad])?;
        offset += pad;
        let data = std::mem::take(&mut t.raw_data);
        w.write_all(&data)?;
        let entry = |key: &str, value: String| {
            let mut e = onnx_protobuf::StringStringEntryProto::new();
            e.key = key.into();
            e.value = value;
            e
        };
        t.external_data = vec![
            entry("location", name.clone()),
            entry("offset", offset.to_string()),
            entry("length", data.len().to_string()),
        ];
        t.data_location = DataLocation::EXTERNAL.into();
        offset += data.len();
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// The documents' graph: the same, without the key/value cache (no past inputs, no present
/// outputs), which GroupQueryAttention computes faster.
fn drop_cache(graph: &mut GraphProto) {
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

/// The lookup to cut: `Gather(table, input_ids)`, optionally followed by `DequantizeLinear`.
#[derive(Debug)]
struct Lookup {
    gather: usize,
    init: usize,
    dequantize: Option<usize>,
    /// The float tensor the rest of the graph reads.
    embeds: String,
    dtype: TableType,
    scale: f32,
    zero_point: i32,
}

fn table_type(data_type: i32) -> Option<TableType> {
    match DataType::from_i32(data_type)? {
        DataType::FLOAT => Some(TableType::F32),
        DataType::FLOAT16 => Some(TableType::F16),
        DataType::INT8 => Some(TableType::I8),
        DataType::UINT8 => Some(TableType::U8),
        _ => None,
    }
}

fn lookup(graph: &GraphProto) -> Result<Lookup, String> {
    let inits: HashMap<&str, usize> = graph.initializer.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    let gathers: Vec<usize> = (0..graph.node.len())
        .filter(|&i| {
            let n = &graph.node[i];
            n.op_type == "Gather"
                && n.input.get(1).is_some_and(|s| s == "input_ids")
                && inits.contains_key(n.input[0].as_str())
        })
        .collect();
    let [gather] = gathers[..] else {
        return Err(format!("{} lookups of input_ids from a table", gathers.len()));
    };
    let g = &graph.node[gather];
    if int_attr(g, "axis").unwrap_or(0) != 0 {
        return Err("the lookup is not along the table's rows".into());
    }
    let init = inits[g.input[0].as_str()];
    let t = &graph.initializer[init];
    if t.dims.len() != 2 {
        return Err(format!("the table has shape {:?}", t.dims));
    }
    let dtype = table_type(t.data_type).ok_or("the table's element type is not f32, f16, i8 or u8")?;
    let out = g.output[0].clone();
    let readers: Vec<usize> = consumers(graph, &out);
    if matches!(dtype, TableType::F32 | TableType::F16) {
        return Ok(Lookup { gather, init, dequantize: None, embeds: out, dtype, scale: 1.0, zero_point: 0 });
    }
    let [dq] = readers[..] else {
        return Err("the quantised table is read by more than one node".into());
    };
    let d = &graph.node[dq];
    if d.op_type != "DequantizeLinear" || d.input.len() < 2 {
        return Err(format!("the quantised table is read by {}", d.op_type));
    }
    let scalar = |name: Option<&String>| -> Option<&TensorProto> {
        let t = &graph.initializer[*inits.get(name?.as_str())?];
        (t.dims.iter().product::<i64>() == 1).then_some(t)
    };
    let scale = scalar(d.input.get(1)).ok_or("the table's scale is not one number")?;
    let scale = f32_scalar(scale).ok_or("the table's scale is not an f32")?;
    let zero_point = match d.input.get(2).filter(|s| !s.is_empty()) {
        None => 0,
        Some(name) => int8_scalar(scalar(Some(name)).ok_or("the table's zero point is not one number")?)
            .ok_or("the table's zero point is not an 8-bit integer")?,
    };
    Ok(Lookup { gather, init, dequantize: Some(dq), embeds: d.output[0].clone(), dtype, scale, zero_point })
}

fn f32_scalar(t: &TensorProto) -> Option<f32> {
    if t.data_type != DataType::FLOAT as i32 {
        return None;
    }
    t.float_data.first().copied().or_else(|| Some(f32::from_le_bytes(t.raw_data.get(..4)?.try_into().ok()?)))
}

fn int8_scalar(t: &TensorProto) -> Option<i32> {
    let byte = t.raw_data.first().copied().map(i32::from).or_else(|| t.int32_data.first().copied())?;
    match DataType::from_i32(t.data_type)? {
        DataType::INT8 => Some(byte as u8 as i8 as i32),
        DataType::UINT8 => Some(byte & 0xff),
        _ => None,
    }
}

fn cut_lookup(graph: &mut GraphProto, found: &Lookup) -> TableSpec {
    let t = &graph.initializer[found.init];
    let (rows, cols) = (t.dims[0] as usize, t.dims[1] as usize);
    let feed = if found.dtype == TableType::F16 { TableType::F16 } else { TableType::F32 };
    for node in graph.node.iter_mut() {
        for input in node.input.iter_mut() {
            if *input == found.embeds {
                *input = EMBEDS_INPUT.to_string();
            }
        }
    }
    for output in graph.output.iter_mut() {
        if output.name == found.embeds {
            output.name = EMBEDS_INPUT.to_string();
        }
    }
    let mut remove: Vec<usize> = std::iter::once(found.gather).chain(found.dequantize).collect();
    remove.sort_unstable();
    for i in remove.into_iter().rev() {
        graph.node.remove(i);
    }
    let elem = if feed == TableType::F16 { DataType::FLOAT16 } else { DataType::FLOAT };
    graph.input.push(tensor_input(
        EMBEDS_INPUT,
        elem,
        &[Dim::Param("batch_size"), Dim::Param("sequence_length"), Dim::Value(cols as i64)],
    ));
    TableSpec {
        file: TABLE.to_string(),
        rows,
        cols,
        dtype: found.dtype,
        scale: found.scale,
        zero_point: found.zero_point,
        feed,
    }
}

/// What the attention rewrite did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Rewritten {
    /// Attention nodes now `GroupQueryAttention`.
    nodes: usize,
    /// Of those, the ones that read the graph's `past_key_values` and write its `present` outputs.
    with_past: usize,
    /// Attention nodes left as they were.
    kept: usize,
}

/// Replaces causal `MultiHeadAttention` nodes by `GroupQueryAttention`.
fn causal_attention(graph: &mut GraphProto, notes: &mut Vec<String>) -> Rewritten {
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
fn rank(graph: &GraphProto, name: &str) -> Option<usize> {
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

/// Drops initializers, nodes and inputs nothing reads any more (the table, the old masks).
fn prune(graph: &mut GraphProto) {
    loop {
        let read: HashSet<String> = graph
            .node
            .iter()
            .flat_map(|n| n.input.iter().cloned())
            .chain(graph.output.iter().map(|o| o.name.clone()))
            .collect();
        let before = graph.node.len();
        graph.node.retain(|n| n.output.iter().any(|o| !o.is_empty() && read.contains(o)));
        if graph.node.len() == before {
            graph.initializer.retain(|t| read.contains(&t.name));
            // Every input the session declares must be fed: drop those nothing reads.
            graph.input.retain(|i| read.contains(&i.name));
            return;
        }
    }
}

/// The table's bytes, wherever the export keeps them.
fn tensor_bytes(t: &TensorProto, dir: &Path) -> Result<Vec<u8>> {
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
        let get = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let location = get("location").context("external tensor without a location")?;
        let offset: u64 = get("offset").map_or(Ok(0), str::parse).context("bad external offset")?;
        let length: Option<u64> = get("length").map(str::parse).transpose().context("bad external length")?;
        let path = dir.join(location);
        let mut f = fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        use std::io::{Read, Seek, SeekFrom};
        f.seek(SeekFrom::Start(offset))?;
        let mut data = Vec::new();
        match length {
            Some(n) => {
                data.resize(n as usize, 0);
                f.read_exact(&mut data)
                    .with_context(|| format!("{} is shorter than the model says", path.display()))?;
            }
            None => {
                f.read_to_end(&mut data)?;
            }
        }
        return Ok(data);
    }
    if !t.raw_data.is_empty() {
        return Ok(t.raw_data.clone());
    }
    if !t.float_data.is_empty() {
        return Ok(t.float_data.iter().flat_map(|x| x.to_le_bytes()).collect());
    }
    match table_type(t.data_type) {
        Some(TableType::F16) => Ok(t.int32_data.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect()),
        Some(TableType::I8 | TableType::U8) => Ok(t.int32_data.iter().map(|&x| x as u8).collect()),
        _ => bail!("tensor {} holds no data qsearch can read", t.name),
    }
}

/// External data stays where it is: each file is linked into the prepared directory under the
/// name the model uses (hard link, else symbolic link, else a copy).
fn link_external_data(graph: &GraphProto, src: &Path, out: &Path) -> Result<()> {
    let mut files = HashSet::new();
    for t in &graph.initializer {
        if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
            if let Some(e) = t.external_data.iter().find(|e| e.key == "location") {
                files.insert(e.value.clone());
            }
        }
    }
    for file in files {
        let (from, to) = (src.join(&file), out.join(&file));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        if fs::hard_link(&from, &to).is_ok() {
            continue;
        }
        #[cfg(unix)]
        if std::os::unix::fs::symlink(&from, &to).is_ok() {
            continue;
        }
        fs::copy(&from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

fn consumers(graph: &GraphProto, name: &str) -> Vec<usize> {
    (0..graph.node.len()).filter(|&i| graph.node[i].input.iter().any(|s| s == name)).collect()
}

fn int_attr(n: &NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], ints: &[(&str, i64)]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n.name = format!("qsearch/{}", outputs[0]);
    for &(name, value) in ints {
        let mut a = AttributeProto::new();
        a.name = name.into();
        a.type_ = AttributeType::INT.into();
        a.i = value;
        n.attribute.push(a);
    }
    n
}

fn node_ints(op: &str, inputs: &[&str], outputs: &[&str], attr: &str, values: &[i64]) -> NodeProto {
    let mut n = node(op, inputs, outputs, &[]);
    let mut a = AttributeProto::new();
    a.name = attr.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    n.attribute.push(a);
    n
}

fn int64_tensor(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = DataType::INT64 as i32;
    t.int64_data = values.to_vec();
    t
}

enum Dim<'a> {
    Param(&'a str),
    Value(i64),
}

fn tensor_input(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        dim.value = Some(match d {
            Dim::Param(p) => tensor_shape_proto::dimension::Value::DimParam(p.to_string()),
            Dim::Value(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
        });
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = elem as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_with(nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> GraphProto {
        let mut g = GraphProto::new();
        g.node = nodes;
        g.initializer = inits;
        g.input.push(tensor_input("input_ids", DataType::INT64, &[Dim::Param("b"), Dim::Param("s")]));
        g.input.push(tensor_input("attention_mask", DataType::INT64, &[Dim::Param("b"), Dim::Param("s")]));
        let mut out = ValueInfoProto::new();
        out.name = "y".into();
        g.output.push(out);
        g
    }

    fn table(name: &str, dtype: DataType, raw: Vec<u8>, dims: &[i64]) -> TensorProto {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.data_type = dtype as i32;
        t.dims = dims.to_vec();
        t.raw_data = raw;
        t
    }

    #[test]
    fn a_quantised_lookup_is_cut_with_its_dequantisation() {
        let nodes = vec![
            node("Gather", &["emb", "input_ids"], &["emb_q"], &[("axis", 0)]),
            node("DequantizeLinear", &["emb_q", "scale", "zp"], &["embeds"], &[]),
            node("Identity", &["embeds"], &["y"], &[]),
        ];
        let inits = vec![
            table("emb", DataType::INT8, vec![1, 2, 3, 4, 5, 6], &[3, 2]),
            table("scale", DataType::FLOAT, 0.5f32.to_le_bytes().to_vec(), &[]),
            table("zp", DataType::INT8, vec![(-3i8) as u8], &[]),
        ];
        let mut g = graph_with(nodes, inits);
        let found = lookup(&g).unwrap();
        assert_eq!((found.scale, found.zero_point, found.dtype), (0.5, -3, TableType::I8));
        let spec = cut_lookup(&mut g, &found);
        prune(&mut g);
        assert_eq!((spec.rows, spec.cols, spec.feed), (3, 2, TableType::F32));
        assert_eq!(g.node.len(), 1);
        assert_eq!(g.node[0].input, vec![EMBEDS_INPUT.to_string()]);
        assert!(g.initializer.is_empty(), "table, scale and zero point are gone");
        let inputs: Vec<&str> = g.input.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(inputs, vec![EMBEDS_INPUT], "input_ids is read by nothing now, nor the mask here");
    }

    #[test]
    fn a_per_channel_scale_keeps_the_table_in_the_graph() {
        let nodes = vec![
            node("Gather", &["emb", "input_ids"], &["emb_q"], &[]),
            node("DequantizeLinear", &["emb_q", "scale"], &["y"], &[]),
        ];
        let inits = vec![
            table("emb", DataType::UINT8, vec![0; 6], &[3, 2]),
            table("scale", DataType::FLOAT, vec![0; 12], &[3]),
        ];
        let g = graph_with(nodes, inits);
        assert!(lookup(&g).unwrap_err().contains("scale"));
    }

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

    #[test]
    fn a_new_preparation_removes_older_ones_of_the_same_source_only() {
        let root = tempfile::tempdir().unwrap();
        let manifest = |source: &str| Manifest {
            version: 1,
            source: source.into(),
            source_bytes: 1,
            source_modified_ns: 1,
            causal_attention: 0,
            past_attention: 0,
            kept_attention: 0,
            continue_model: None,
            table: None,
            notes: vec![],
        };
        for (dir, source) in [("old", "/m/a.onnx"), ("new", "/m/a.onnx"), ("other", "/m/b.onnx")] {
            fs::create_dir(root.path().join(dir)).unwrap();
            fs::write(root.path().join(dir).join(MANIFEST), serde_json::to_vec(&manifest(source)).unwrap()).unwrap();
        }
        // A manifest from an older rewrite, without today's fields.
        fs::write(root.path().join("old").join(MANIFEST), r#"{"version": 1, "source": "/m/a.onnx"}"#).unwrap();
        remove_older(root.path(), &root.path().join("new"), Path::new("/m/a.onnx"));
        let mut left: Vec<String> =
            fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, vec!["new", "other"]);
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
