//! The model-preparation step: a decoder export (Qwen3) is rewritten once into the graph qsearch
//! runs, and kept beside the other models. This module is the prepared-model cache: where a
//! preparation lives (`prepared/<key>/`, the key hashing the source's path, size, mtime and
//! [`VERSION`]), its manifest (`prepared.json`, which the embedder and `qsearch doctor` read),
//! and the atomic write (a temporary directory renamed into place). The two rewrites live in
//! `attention` (causal `MultiHeadAttention` -> `GroupQueryAttention`) and `token_table` (the
//! token-embedding lookup cut out of the graph); `proto` holds the protobuf helpers they share.
//!
//! When every attention node also takes the export's past keys and values, two graphs are written
//! over one weights file: `model.onnx` for documents (no key/value cache: GroupQueryAttention is
//! markedly slower when it writes one) and `model_continue.onnx` for queries, which continue
//! from the cached keys and values of the query instruction.
//!
//! A preparation is made for a [`Target`]: the CPU gets the rewrites above; CoreML gets graphs of
//! standard operators with fixed shapes, one per [`Bucket`], over one weights file (`coreml`);
//! CUDA gets the export's own graph in fp16 (`fp16`), its token table kept inside.
//!
//! What cannot be rewritten is left as it was and said in the manifest's notes.

mod attention;
mod coreml;
mod fp16;
pub(crate) mod proto;
mod shapes;
mod token_table;

pub use coreml::{COREML_OPS, outside_coreml};
pub use shapes::{BUCKETS, Bucket, pick};

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use onnx_protobuf::{Message, ModelProto};
use serde::{Deserialize, Serialize};

use attention::{causal_attention, drop_cache};
use proto::{externalize, link_external_data, prune};
use token_table::{cut_lookup, lookup, tensor_bytes};

/// Bumped whenever the rewrite changes, so older preparations are redone.
pub const VERSION: u32 = 5;
const MANIFEST: &str = "prepared.json";
const MODEL: &str = "model.onnx";
const CONTINUE_MODEL: &str = "model_continue.onnx";
/// The weights both graphs share (when the export kept them inside its protobuf).
const WEIGHTS: &str = "qsearch_weights.bin";
const TABLE: &str = "embed_tokens.bin";
/// The graph input that replaces the lookup.
pub const EMBEDS_INPUT: &str = "inputs_embeds";

/// What a preparation is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Causal GroupQueryAttention, the token table outside, a query graph with the cache.
    #[default]
    Cpu,
    /// Standard operators only, fixed shapes (one graph per bucket), fp16.
    Coreml,
    /// The export's operators and attention in fp16, the token table inside. (On an H200 the CPU
    /// rewrite made CUDA 18.6x slower; fp16 of the export ran 1.2x faster than its fp32.)
    Cuda,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Cpu => "cpu",
            Target::Coreml => "coreml",
            Target::Cuda => "cuda",
        }
    }
}

/// One graph of a fixed-shape preparation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketFile {
    pub rows: usize,
    pub tokens: usize,
    pub file: String,
}

impl BucketFile {
    pub fn bucket(&self) -> Bucket {
        Bucket { rows: self.rows, tokens: self.tokens }
    }
}

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
    #[serde(default)]
    pub target: Target,
    /// Weights and activations in f16.
    #[serde(default)]
    pub fp16: bool,
    /// Fixed-shape graphs (CoreML); empty when `model.onnx` takes any shape.
    #[serde(default)]
    pub buckets: Vec<BucketFile>,
}

impl Manifest {
    pub fn right_padding(&self) -> bool {
        self.causal_attention > 0 || !self.buckets.is_empty()
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
    /// The fixed-shape graphs, if this is such a preparation.
    pub fn buckets(&self) -> Vec<(Bucket, PathBuf)> {
        self.manifest.buckets.iter().map(|b| (b.bucket(), self.dir.join(&b.file))).collect()
    }
}

/// Nodes of `model` (a graph file) outside CoreML's operator list, and nodes in all.
pub fn coreml_coverage(model: &Path) -> Result<(usize, usize)> {
    let bytes = fs::read(model).with_context(|| format!("reading {}", model.display()))?;
    let graph = ModelProto::parse_from_bytes(&bytes)?.graph.into_option().context("no graph")?;
    Ok((outside_coreml(&graph).iter().map(|(_, n)| n).sum(), graph.node.len()))
}

/// What a preparation is, in a few lines for `doctor` and `model prepare`.
pub fn describe(p: &Prepared) -> Vec<String> {
    let table = if p.manifest.table.is_some() { "token table outside the graph" } else { "token table in the graph" };
    let mut lines = match p.manifest.target {
        Target::Cpu => vec![format!(
            "{}: {} attention nodes causal, {table}{}",
            p.model().display(),
            p.manifest.causal_attention,
            if p.manifest.continues() { ", queries continue from the cached instruction" } else { "" }
        )],
        Target::Coreml => {
            let mut lines = vec![format!(
                "{} fixed-shape graphs, {}, {table}, in {}",
                p.manifest.buckets.len(),
                if p.manifest.fp16 { "fp16" } else { "fp32" },
                p.dir.display()
            )];
            for (bucket, file) in p.buckets() {
                let coverage = match coreml_coverage(&file) {
                    Ok((0, all)) => format!("all {all} nodes are CoreML operators"),
                    Ok((outside, all)) => format!("{outside} of {all} nodes are not CoreML operators"),
                    Err(e) => format!("unreadable: {e:#}"),
                };
                lines.push(format!("  {} x {} tokens: {coverage}", bucket.rows, bucket.tokens));
            }
            lines
        }
        Target::Cuda => vec![format!(
            "{}: the export's attention, {}, {table}",
            p.model().display(),
            if p.manifest.fp16 { "fp16" } else { "fp32" }
        )],
    };
    lines.extend(p.manifest.notes.iter().map(|n| format!("note: {n}")));
    lines
}

fn stat(source: &Path) -> Result<(u64, u128)> {
    let meta = fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
    let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok((meta.len(), modified))
}

/// The prepared form of `source` for `target` under `root`, made now if missing or stale.
/// `on` hears what is being done (it can take tens of seconds for a full-size model).
pub fn prepared(source: &Path, root: &Path, target: Target, on: &mut dyn FnMut(&str)) -> Result<Prepared> {
    let (source, dir, bytes, modified) = locate(source, root, target)?;
    if let Some(p) = current(&source, &dir, bytes, target) {
        return Ok(p);
    }
    let what = match target {
        Target::Cpu => "rewrites attention and the token table",
        Target::Coreml => "standard operators, fixed shapes, fp16",
        Target::Cuda => "fp16",
    };
    on(&format!("preparing {} for {} (once; {what})", source.display(), target.name()));
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let tmp = tempfile::Builder::new().prefix(".prepare-").tempdir_in(root)?;
    let manifest = prepare_into(&source, tmp.path(), target)?;
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
            return prepared(&source, root, target, on);
        }
        return Err(e).with_context(|| format!("moving the prepared model to {}", dir.display()));
    }
    remove_older(root, &dir, &source, target);
    Ok(Prepared { dir, manifest })
}

/// Earlier preparations of the same source for the same target (older rewrite, older file) are
/// dead weight.
fn remove_older(root: &Path, keep: &Path, source: &Path, target: Target) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        // Only the source is read: older manifests may lack later fields.
        #[derive(Deserialize)]
        struct Source {
            source: PathBuf,
            #[serde(default)]
            target: Target,
        }
        let of = fs::read(dir.join(MANIFEST)).ok().and_then(|b| serde_json::from_slice::<Source>(&b).ok());
        if dir != keep && of.is_some_and(|m| m.source == source && m.target == target) {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// The up-to-date preparation of `source` for `target`, if one exists (nothing is made).
pub fn existing(source: &Path, root: &Path, target: Target) -> Option<Prepared> {
    let (source, dir, bytes, _) = locate(source, root, target).ok()?;
    current(&source, &dir, bytes, target)
}

/// The canonical source, the directory its preparation belongs in, and the source's size and mtime.
fn locate(source: &Path, root: &Path, target: Target) -> Result<(PathBuf, PathBuf, u64, u128)> {
    let source = source.canonicalize().with_context(|| format!("reading {}", source.display()))?;
    let (bytes, modified) = stat(&source)?;
    // The CPU key is the one of before there were targets, so existing preparations stay valid.
    let of = match target {
        Target::Cpu => String::new(),
        other => format!("\0{}", other.name()),
    };
    let key = blake3::hash(format!("{}\0{bytes}\0{modified}\0{VERSION}{of}", source.display()).as_bytes()).to_hex();
    let dir = root.join(&key.as_str()[..16]);
    Ok((source, dir, bytes, modified))
}

fn current(source: &Path, dir: &Path, bytes: u64, target: Target) -> Option<Prepared> {
    let manifest = read_manifest(dir)?;
    (manifest.version == VERSION
        && manifest.source == source
        && manifest.source_bytes == bytes
        && manifest.target == target)
        .then(|| Prepared { dir: dir.to_path_buf(), manifest })
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    serde_json::from_slice(&fs::read(dir.join(MANIFEST)).ok()?).ok()
}

/// Rewrites `source` into `out` for `target` (graphs, table, links to external data). The
/// manifest's stat fields are left for the caller.
pub fn prepare_into(source: &Path, out: &Path, target: Target) -> Result<Manifest> {
    let bytes = fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let mut model =
        ModelProto::parse_from_bytes(&bytes).with_context(|| format!("{} is not an ONNX model", source.display()))?;
    drop(bytes);
    let src_dir = source.parent().unwrap_or(Path::new("."));
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut manifest = Manifest {
        version: VERSION,
        source: source.to_path_buf(),
        source_bytes: 0,
        source_modified_ns: 0,
        causal_attention: 0,
        past_attention: 0,
        kept_attention: 0,
        continue_model: None,
        table: None,
        notes: Vec::new(),
        target,
        fp16: false,
        buckets: Vec::new(),
    };
    match lookup(graph) {
        // A GPU looks its rows up itself (and has the memory for the table).
        _ if target == Target::Cuda => {}
        Ok(found) => {
            let data = tensor_bytes(&graph.initializer[found.init], src_dir)?;
            fs::write(out.join(TABLE), &data).with_context(|| format!("writing {}", out.join(TABLE).display()))?;
            manifest.table = Some(cut_lookup(graph, &found));
        }
        Err(why) if target == Target::Coreml => {
            bail!("cannot prepare for CoreML: the token table cannot leave the graph ({why})")
        }
        Err(why) => manifest.notes.push(format!("token table kept in the graph: {why}")),
    }
    match target {
        Target::Cpu => cpu_graphs(&mut model, src_dir, out, &mut manifest)?,
        Target::Coreml => coreml_graphs(&mut model, src_dir, out, &mut manifest)?,
        Target::Cuda => cuda_graph(&mut model, src_dir, out, &mut manifest)?,
    }
    Ok(manifest)
}

/// The operator an export quantised to integers has (int8 kernels are CPU ones; neither CoreML
/// nor an fp16 GPU graph takes them).
fn quantised(graph: &onnx_protobuf::GraphProto) -> Option<&str> {
    const QUANTISED: &[&str] =
        &["MatMulInteger", "DynamicQuantizeLinear", "DequantizeLinear", "QuantizeLinear", "MatMulNBits"];
    graph.node.iter().map(|n| n.op_type.as_str()).find(|op| QUANTISED.contains(op))
}

/// The export's graph with every float in f16 (weights, constants, past keys and values, the
/// hidden states out), over one weights file.
fn cuda_graph(model: &mut ModelProto, src_dir: &Path, out: &Path, manifest: &mut Manifest) -> Result<()> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    if let Some(op) = quantised(graph) {
        bail!(
            "the export is quantised ({op}), and CUDA's int8 kernels are few: use qwen3-embedding-0.6b-fp32 (the default on CUDA)"
        );
    }
    fp16::whole_graph(graph, src_dir).map_err(|why| anyhow::anyhow!("cannot turn the export to fp16: {why}"))?;
    // The f16 weights are inside now; anything else kept outside stays where it is.
    link_external_data(graph, src_dir, out)?;
    manifest.fp16 = true;
    externalize(graph, &out.join(WEIGHTS))?;
    let file = out.join(MODEL);
    fs::write(&file, model.write_to_bytes()?).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

fn cpu_graphs(model: &mut ModelProto, src_dir: &Path, out: &Path, manifest: &mut Manifest) -> Result<()> {
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let attention = causal_attention(graph, &mut manifest.notes);
    prune(graph);
    link_external_data(graph, src_dir, out)?;
    let continues = attention.nodes > 0 && attention.with_past == attention.nodes && attention.kept == 0;
    if continues {
        externalize(graph, &out.join(WEIGHTS))?;
        let file = out.join(CONTINUE_MODEL);
        fs::write(&file, model.write_to_bytes()?).with_context(|| format!("writing {}", file.display()))?;
        manifest.continue_model = Some(CONTINUE_MODEL.to_string());
        drop_cache(model.graph.as_mut().expect("checked above"));
    }
    let file = out.join(MODEL);
    fs::write(&file, model.write_to_bytes()?).with_context(|| format!("writing {}", file.display()))?;
    manifest.causal_attention = attention.nodes;
    manifest.past_attention = attention.with_past;
    manifest.kept_attention = attention.kept;
    Ok(())
}

/// One graph per bucket over one weights file, in f16 unless the export is already quantised
/// (then CoreML would refuse it anyway, and the notes say so).
fn coreml_graphs(model: &mut ModelProto, src_dir: &Path, out: &Path, manifest: &mut Manifest) -> Result<()> {
    let opset =
        model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(17, |o| o.version);
    let graph = model.graph.as_mut().context("the model has no graph")?;
    if let Some(op) = quantised(graph) {
        bail!(
            "cannot prepare for CoreML: the export is quantised ({op}); use its fp32 or fp16 export \
             (qwen3-embedding-0.6b-fp32, the default on CoreML)"
        );
    }
    // The weights are read where they are: only what stays outside after the f16 conversion is
    // linked in (a 2.4 GB fp32 file would otherwise sit beside its f16 copy, or be copied where
    // a hard link cannot be made).
    fp16::initializers(graph, src_dir).map_err(anyhow::Error::msg)?;
    link_external_data(graph, src_dir, out)?;
    manifest.fp16 = true;
    if let Some(table) = manifest.table.as_mut() {
        table.feed = TableType::F16;
    }
    externalize(graph, &out.join(WEIGHTS))?;
    let whole = model.clone();
    for &bucket in BUCKETS {
        let mut m = whole.clone();
        let g = m.graph.as_mut().expect("checked above");
        coreml::standard_graph(g, bucket, coreml::Precision::F16, opset, out)
            .map_err(|why| anyhow::anyhow!("cannot prepare for CoreML: {why}"))?;
        let left = outside_coreml(g);
        if !left.is_empty() {
            manifest.notes.push(format!("{}x{}: operators CoreML does not take: {left:?}", bucket.rows, bucket.tokens));
        }
        let file = format!("coreml-{}x{}.onnx", bucket.rows, bucket.tokens);
        fs::write(out.join(&file), m.write_to_bytes()?).with_context(|| format!("writing {file}"))?;
        manifest.buckets.push(BucketFile { rows: bucket.rows, tokens: bucket.tokens, file });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            target: Target::Cpu,
            fp16: false,
            buckets: vec![],
        };
        for (dir, source) in [("old", "/m/a.onnx"), ("new", "/m/a.onnx"), ("other", "/m/b.onnx")] {
            fs::create_dir(root.path().join(dir)).unwrap();
            fs::write(root.path().join(dir).join(MANIFEST), serde_json::to_vec(&manifest(source)).unwrap()).unwrap();
        }
        // A manifest from an older rewrite, without today's fields.
        fs::write(root.path().join("old").join(MANIFEST), r#"{"version": 1, "source": "/m/a.onnx"}"#).unwrap();
        remove_older(root.path(), &root.path().join("new"), Path::new("/m/a.onnx"), Target::Cpu);
        let mut left: Vec<String> =
            fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, vec!["new", "other"]);
    }
}
