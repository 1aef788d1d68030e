//! `qsearch index --estimate`: what indexing folders from scratch would take, measured without
//! writing anything. Files go through the same read, decode and chunk steps as a real run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::Options;
use super::sync::chunk_text;
use crate::embed::{Embedder, InputKind};
use crate::scan;
use crate::text::{self, Readable};

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
/// evenly spread sample of chunks to measure this machine's speed. `opts.chunk` must already be
/// capped for the embedder ([`super::effective_chunking`]).
pub fn estimate(embedder: &mut dyn Embedder, roots: &[PathBuf], opts: &Options) -> Result<Estimate> {
    let mut est = Estimate::default();
    let mut texts: Vec<String> = Vec::new();
    for root in roots {
        let scanned = scan::scan(root, &opts.scan, None);
        est.skipped += scanned.skipped.len() + scanned.errors.len();
        for found in &scanned.files {
            let Some(Readable { text, .. }) =
                std::fs::read(&found.path).ok().and_then(|b| text::readable(&b, found.kind).ok())
            else {
                est.skipped += 1;
                continue;
            };
            est.files += 1;
            for c in chunk_text(&text, found.kind, embedder.tokenizer(), opts.chunk) {
                est.text_bytes += c.text.len() as u64;
                texts.push(c.embedded_text());
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
    let dims = embedder.dims() as u64;
    est.disk_bytes = est.text_bytes * 2 + est.chunks as u64 * chunk_bytes(dims, crate::store::PAGE_SIZE);
    Ok(est)
}

/// Disk a chunk takes besides its text and keyword entries (twice the text, counted apart): its
/// vector in SQLite's pages of `page` bytes, an f16 one in the graph with its links, and its row.
pub fn chunk_bytes(dims: u64, page: u64) -> u64 {
    crate::store::blob::stored_vector_bytes(dims, page) + dims * 2 + 300
}
