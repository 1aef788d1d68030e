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
//! What cannot be rewritten is left as it was and said in the manifest's notes.

mod attention;
mod proto;
mod token_table;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use onnx_protobuf::{Message, ModelProto};
use serde::{Deserialize, Serialize};

use attention::{causal_attention, drop_cache};
use proto::{externalize, link_external_data, prune};
use token_table::{cut_lookup, lookup, tensor_bytes};

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
}
