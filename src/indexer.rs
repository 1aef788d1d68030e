//! Folders in, index out. Two phases, each crash-safe on its own:
//!
//! 1. Sync: every file under the roots is compared with the store (size and mtime, then content
//!    hash); a changed file is decoded, chunked and written with its chunks in one transaction;
//!    a vanished file is removed. Keyword search works as soon as this phase commits.
//! 2. Embed: chunk texts without a vector are embedded in batches; each batch is committed with
//!    its vectors in one transaction. Vectors are keyed by chunk text, so a renamed file or an
//!    unchanged chunk of a changed file costs no model time.
//!
//! A killed run leaves committed work in place; the next run redoes only what is missing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::embed::{Embedder, InputKind};
use crate::scan;
use crate::store::docs::{NewChunk, NewDocument, VectorChanges};
use crate::store::vectors::VectorIndex;
use crate::store::{Fingerprint, Store};
use crate::text::chunk::{self, Sizer};
use crate::text::decode::{self, DecodeError};
use crate::text::kind::{self, Kind};

#[derive(Debug, Clone)]
pub struct Options {
    pub scan: scan::Options,
    pub chunk: chunk::Settings,
    /// Chunk texts per embedding call (and per commit).
    pub embed_batch: usize,
    /// How often the vector file is saved while embedding.
    pub save_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scan: scan::Options::default(),
            chunk: chunk::Settings { tokens: 384, overlap: 32 },
            embed_batch: 64,
            save_every: Duration::from_secs(60),
        }
    }
}

/// The chunk settings an embedder can take: no chunk longer than the model reads.
pub fn effective_chunking(wanted: chunk::Settings, embedder: &dyn Embedder) -> chunk::Settings {
    // Leave room for special tokens and the heading line added as context.
    let cap = embedder.max_tokens().saturating_sub(32).max(16);
    let tokens = wanted.tokens.min(cap);
    chunk::Settings { tokens, overlap: wanted.overlap.min(tokens / 4) }
}

pub fn fingerprint(embedder: &dyn Embedder, chunking: chunk::Settings) -> Fingerprint {
    Fingerprint {
        model: embedder.fingerprint(),
        dims: embedder.dims(),
        chunk_tokens: chunking.tokens,
        chunk_overlap: chunking.overlap,
        chunker_version: chunk::Settings::VERSION,
    }
}

/// Checks that the index was built with the same model and chunking, or starts it afresh when
/// `rebuild` is set. Vectors of two models never mix.
pub fn check_fingerprint(store: &mut Store, wanted: &Fingerprint, rebuild: bool) -> Result<()> {
    match store.fingerprint()? {
        Some(have) if &have == wanted => Ok(()),
        Some(have) if !rebuild => bail!(
            "this index was built with {have}\nbut this run would use {wanted}.\n\
             Vectors of different models or chunking cannot be mixed: rerun with --rebuild to re-embed \
             everything, or use --model to match the index"
        ),
        Some(_) => {
            store.clear()?;
            store.set_fingerprint(wanted)
        }
        None => {
            if store.stats()?.chunks > 0 {
                store.clear()?;
            }
            store.set_fingerprint(wanted)
        }
    }
}

#[derive(Debug, Clone)]
pub enum Progress {
    Scanned { root: PathBuf, files: usize },
    File { done: usize, total: usize },
    /// Before embedding: the work ahead, and the expected time from a first measured batch.
    Estimate { chunks: u64, tokens_per_sec: f64, eta: Duration },
    Embedded { done: u64, total: u64, tokens: u64, elapsed: Duration },
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    pub unsupported: usize,
    pub lossy: Vec<String>,
    pub chunks_written: usize,
    pub embedded: u64,
    pub tokens: u64,
    pub truncated: usize,
    pub pending: u64,
    pub interrupted: bool,
    pub sync_secs: f64,
    pub embed_secs: f64,
    /// Time inside the model (tokenising included): the rest of indexing is overhead.
    pub model_secs: f64,
}

/// Brings the documents of `roots` in line with the disk (phase 1).
pub fn sync(
    store: &mut Store,
    vectors: &mut VectorIndex,
    embedder: &dyn Embedder,
    roots: &[PathBuf],
    opts: &Options,
    report: &mut Report,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<()> {
    let start = Instant::now();
    for root in roots {
        if !root.is_dir() {
            report.failed.push((root.display().to_string(), "folder not found (its documents are kept)".into()));
            continue;
        }
        let root_id = store.add_root(root)?;
        let scanned = scan::scan(root, &opts.scan);
        progress(Progress::Scanned { root: root.clone(), files: scanned.files.len() });
        report.unsupported += scanned.unsupported;
        report.skipped.extend(scanned.skipped.iter().map(|(p, why)| (p.display().to_string(), why.clone())));
        report.failed.extend(scanned.errors.iter().map(|(p, why)| (p.display().to_string(), why.clone())));
        let mut known = store.documents_of_root(root_id)?;
        let total = scanned.files.len();
        for (i, found) in scanned.files.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                report.interrupted = true;
                return Ok(());
            }
            let state = known.remove(&crate::util::path_bytes(&found.path));
            if state.as_ref().is_some_and(|s| s.size == found.size && s.mtime_ns == found.mtime_ns) {
                report.unchanged += 1;
            } else {
                match index_file(store, vectors, embedder, root_id, found, state.as_ref(), opts, report) {
                    Ok(()) => {}
                    Err(e) => report.failed.push((found.path.display().to_string(), format!("{e:#}"))),
                }
            }
            if i % 64 == 0 || i + 1 == total {
                progress(Progress::File { done: i + 1, total });
            }
        }
        // What is left was not found on disk: removed, renamed, or now ignored. Files under a
        // folder that could not be read are kept rather than dropped.
        let unreadable: Vec<&PathBuf> = scanned.errors.iter().map(|(p, _)| p).collect();
        let gone: Vec<i64> = known
            .iter()
            .filter(|(p, _)| {
                let p = crate::util::path_from_bytes(p);
                !unreadable.iter().any(|u| p.starts_with(u))
            })
            .map(|(_, s)| s.id)
            .collect();
        report.removed += gone.len();
        let removed = store.delete_documents(&gone)?;
        vectors.apply(&VectorChanges { removed, added: Vec::new() })?;
    }
    report.sync_secs += start.elapsed().as_secs_f64();
    Ok(())
}

/// Reads, decodes, chunks and stores one file. Unchanged content only updates size and mtime.
#[allow(clippy::too_many_arguments)]
pub fn index_file(
    store: &mut Store,
    vectors: &mut VectorIndex,
    embedder: &dyn Embedder,
    root_id: i64,
    found: &scan::Found,
    state: Option<&crate::store::docs::DocState>,
    opts: &Options,
    report: &mut Report,
) -> Result<()> {
    let bytes = std::fs::read(&found.path)?;
    let hash = blake3::hash(&bytes).to_hex().to_string();
    if let Some(s) = state.filter(|s| s.hash == hash) {
        store.touch_document(s.id, bytes.len() as u64, found.mtime_ns)?;
        report.unchanged += 1;
        return Ok(());
    }
    let decoded = match decode::decode(&bytes) {
        Ok(d) => d,
        Err(DecodeError::Binary) => {
            report.skipped.push((found.path.display().to_string(), "binary content".into()));
            if let Some(s) = state {
                let removed = store.delete_documents(&[s.id])?;
                vectors.apply(&VectorChanges { removed, added: Vec::new() })?;
            }
            return Ok(());
        }
    };
    if decoded.lossy {
        report.lossy.push(found.path.display().to_string());
    }
    let text = visible_text(decoded.text, found.kind);
    let file_name = found.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let title = chunk::title(&text, found.kind, &file_name);
    let chunks = chunk_text(&text, found.kind, embedder, opts.chunk);
    let doc = NewDocument {
        root_id,
        path: &found.path,
        size: bytes.len() as u64,
        mtime_ns: found.mtime_ns,
        hash: &hash,
        kind: found.kind.as_str(),
        title: &title,
        lossy: decoded.lossy,
    };
    report.chunks_written += chunks.len();
    let changes = store.write_document(&doc, &chunks)?;
    vectors.apply(&changes)?;
    report.indexed += 1;
    Ok(())
}

/// The text a person reads in a file of this kind (HTML without its tags).
fn visible_text(decoded: String, kind: Kind) -> String {
    match kind {
        Kind::Html => kind::html_to_text(&decoded),
        _ => decoded,
    }
}

/// A document's text as chunks ready to store, each with the hash of the text it is embedded as.
pub fn chunk_text(text: &str, kind: Kind, embedder: &dyn Embedder, settings: chunk::Settings) -> Vec<NewChunk> {
    let sizer = embedder.tokenizer().map(Sizer::Tokenizer).unwrap_or(Sizer::Approx);
    chunk::split(text, kind, settings, sizer)
        .into_iter()
        .map(|c| {
            let heading = c.heading_path();
            let embed = chunk::embed_text(&heading, &c.text);
            NewChunk {
                seq: c.seq,
                hash: blake3::hash(embed.as_bytes()).to_hex().to_string(),
                heading,
                start_byte: c.start_byte,
                end_byte: c.end_byte,
                start_line: c.start_line,
                end_line: c.end_line,
                text: c.text,
            }
        })
        .collect()
}

/// What indexing `roots` from scratch would take, measured without writing anything.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Estimate {
    pub files: usize,
    pub skipped: usize,
    pub chunks: usize,
    pub tokens: u64,
    pub text_bytes: u64,
    /// Chunks embedded to measure the speed.
    pub sample_chunks: usize,
    pub tokens_per_sec: f64,
    pub embed_secs: f64,
    pub disk_bytes: u64,
}

/// Scans and chunks everything (tokens counted with the model's tokenizer), then embeds an
/// evenly spread sample of chunks to measure this machine's speed.
pub fn estimate(embedder: &mut dyn Embedder, roots: &[PathBuf], opts: &Options) -> Result<Estimate> {
    let mut est = Estimate::default();
    let mut texts: Vec<String> = Vec::new();
    for root in roots {
        let scanned = scan::scan(root, &opts.scan);
        est.skipped += scanned.skipped.len() + scanned.errors.len();
        for found in &scanned.files {
            let Ok(bytes) = std::fs::read(&found.path) else {
                est.skipped += 1;
                continue;
            };
            let Ok(decoded) = decode::decode(&bytes) else {
                est.skipped += 1;
                continue;
            };
            est.files += 1;
            let text = visible_text(decoded.text, found.kind);
            for c in chunk_text(&text, found.kind, &*embedder, opts.chunk) {
                est.text_bytes += c.text.len() as u64;
                texts.push(chunk::embed_text(&c.heading, &c.text));
            }
        }
    }
    est.chunks = texts.len();
    est.tokens = texts
        .iter()
        .map(|t| match embedder.tokenizer() {
            Some(tk) => tk.encode_fast(t.as_str(), false).map(|e| e.len()).unwrap_or(t.len() / 4) as u64 + 1,
            None => t.len().div_ceil(4) as u64,
        })
        .sum();
    if !texts.is_empty() {
        embedder.embed(&["warm up"], InputKind::Document)?;
        let step = (texts.len() / 32).max(1);
        let sample: Vec<&str> = texts.iter().step_by(step).take(32).map(String::as_str).collect();
        let t = Instant::now();
        let out = embedder.embed(&sample, InputKind::Document)?;
        est.sample_chunks = sample.len();
        est.tokens_per_sec = out.tokens as f64 / t.elapsed().as_secs_f64().max(1e-6);
        est.embed_secs = est.tokens as f64 / est.tokens_per_sec.max(1e-6);
    }
    // Text and keyword index in SQLite, an f32 vector in SQLite and an f16 one in the graph
    // with its links.
    let dims = embedder.dims() as u64;
    est.disk_bytes = est.text_bytes * 2 + est.chunks as u64 * (dims * 4 + dims * 2 + 300);
    Ok(est)
}

/// Embeds every pending chunk text (phase 2).
pub fn embed_pending(
    store: &mut Store,
    vectors: &mut VectorIndex,
    embedder: &mut dyn Embedder,
    opts: &Options,
    report: &mut Report,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<()> {
    let total = store.pending_texts()?;
    let start = Instant::now();
    let mut last_save = Instant::now();
    let mut done = 0u64;
    let mut estimated = false;
    loop {
        if cancel.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        let batch = store.pending(opts.embed_batch)?;
        if batch.is_empty() {
            break;
        }
        let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
        let t0 = Instant::now();
        let out = embedder.embed(&texts, InputKind::Document)?;
        report.model_secs += t0.elapsed().as_secs_f64();
        let batch_bytes: usize = texts.iter().map(|t| t.len()).sum();
        let items: Vec<(String, Vec<f32>)> = batch.into_iter().map(|p| p.hash).zip(out.vectors).collect();
        let changes = store.attach_vectors(&items)?;
        vectors.apply(&changes)?;
        done += items.len() as u64;
        report.embedded += items.len() as u64;
        report.tokens += out.tokens as u64;
        report.truncated += out.truncated;
        if !estimated {
            // The first batch is the measurement: its seconds per byte of text, times the bytes
            // still to embed.
            estimated = true;
            let secs = t0.elapsed().as_secs_f64();
            let rate = out.tokens as f64 / secs.max(1e-6);
            let left = store.pending_bytes()? as f64;
            progress(Progress::Estimate {
                chunks: total,
                tokens_per_sec: rate,
                eta: Duration::from_secs_f64(secs / batch_bytes.max(1) as f64 * left),
            });
        }
        progress(Progress::Embedded { done, total, tokens: report.tokens, elapsed: start.elapsed() });
        if last_save.elapsed() >= opts.save_every {
            vectors.save(store)?;
            last_save = Instant::now();
        }
    }
    report.embed_secs += start.elapsed().as_secs_f64();
    Ok(())
}

/// The whole job: open the vector index, then [`update`].
pub fn run(
    store: &mut Store,
    embedder: &mut dyn Embedder,
    roots: &[PathBuf],
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Report> {
    let mut vectors = VectorIndex::open(store, embedder.dims())?;
    store.set_meta("vector_index", &vectors.describe().to_string())?;
    update(store, &mut vectors, embedder, roots, opts, progress, cancel)
}

/// Sync `roots`, embed what is new, drop unused vectors, save the vector file. The watcher runs
/// this for each batch of changes, with its vector index kept open between batches.
pub fn update(
    store: &mut Store,
    vectors: &mut VectorIndex,
    embedder: &mut dyn Embedder,
    roots: &[PathBuf],
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Report> {
    let mut report = Report::default();
    sync(store, vectors, &*embedder, roots, opts, &mut report, progress, cancel)?;
    if !report.interrupted {
        embed_pending(store, vectors, embedder, opts, &mut report, progress, cancel)?;
    }
    if !report.interrupted {
        store.collect_garbage()?;
    }
    vectors.save(store)?;
    report.pending = store.pending_chunks()?;
    Ok(report)
}

/// Absolute, normalised root paths.
pub fn canonical_roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| {
            std::fs::canonicalize(p).map_err(|e| anyhow::anyhow!("cannot index {}: {e}", Path::new(p).display()))
        })
        .collect()
}
