//! Phase 1, sync: the documents of the roots brought in line with the disk. Also the steps every
//! file goes through (read, decode, chunk), shared with [`super::estimate`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;

use super::{FileOutcome, Progress, Report, Writer};
use crate::embed::Embedder;
use crate::scan::{self, Skip};
use crate::store::docs::{DocState, NewChunk, NewDocument};
use crate::text::chunk::{self, Sizer};
use crate::text::decode::{self, DecodeError};
use crate::text::kind::{self, Kind};

/// A file's text as qsearch reads it.
pub(super) struct Text {
    pub text: String,
    /// Invalid bytes were replaced.
    pub lossy: bool,
}

/// The text a person reads in a file of this kind (HTML without its tags), or `None` for binary
/// content.
pub(super) fn readable_text(bytes: &[u8], kind: Kind) -> Option<Text> {
    let decoded = match decode::decode(bytes) {
        Ok(d) => d,
        Err(DecodeError::Binary) => return None,
    };
    let text = match kind {
        Kind::Html => kind::html_to_text(&decoded.text),
        _ => decoded.text,
    };
    Some(Text { text, lossy: decoded.lossy })
}

/// A document's text as chunks ready to store, each with the hash of the text it is embedded as.
pub(super) fn chunk_text(text: &str, kind: Kind, embedder: &dyn Embedder, settings: chunk::Settings) -> Vec<NewChunk> {
    let sizer = embedder.tokenizer().map(Sizer::Tokenizer).unwrap_or(Sizer::Approx);
    chunk::split(text, kind, settings, sizer).into_iter().map(NewChunk::from).collect()
}

impl Writer {
    /// Brings the documents of `roots` in line with the disk.
    pub(super) fn sync(
        &mut self,
        roots: &[PathBuf],
        report: &mut Report,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<()> {
        let start = Instant::now();
        for root in roots {
            if !root.is_dir() {
                report.record(root.clone(), FileOutcome::Failed("folder not found (its documents are kept)".into()));
                continue;
            }
            let root_id = self.store.add_root(root)?;
            let scanned = scan::scan(root, &self.opts.scan);
            progress(Progress::Scanned { root: root.clone(), files: scanned.files.len() });
            report.unsupported += scanned.unsupported;
            for (path, why) in &scanned.skipped {
                report.record(path.clone(), FileOutcome::Skipped(why.clone()));
            }
            for (path, why) in &scanned.errors {
                report.record(path.clone(), FileOutcome::Failed(why.clone()));
            }
            let mut known = self.store.documents_of_root(root_id)?;
            let total = scanned.files.len();
            for (i, found) in scanned.files.iter().enumerate() {
                if cancel.load(Ordering::Relaxed) {
                    report.interrupted = true;
                    return Ok(());
                }
                let state = known.remove(&crate::util::path_bytes(&found.path));
                let outcome = if state.as_ref().is_some_and(|s| s.size == found.size && s.mtime_ns == found.mtime_ns) {
                    FileOutcome::Unchanged
                } else {
                    self.index_file(root_id, found, state.as_ref()).unwrap_or_else(|e| FileOutcome::Failed(format!("{e:#}")))
                };
                report.record(found.path.clone(), outcome);
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
            self.delete_documents(&gone)?;
        }
        report.sync_secs += start.elapsed().as_secs_f64();
        Ok(())
    }

    /// Reads, decodes, chunks and stores one file. Unchanged content only updates size and mtime.
    fn index_file(&mut self, root_id: i64, found: &scan::Found, state: Option<&DocState>) -> Result<FileOutcome> {
        let bytes = std::fs::read(&found.path)?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if let Some(s) = state.filter(|s| s.hash == hash) {
            self.store.touch_document(s.id, bytes.len() as u64, found.mtime_ns)?;
            return Ok(FileOutcome::Unchanged);
        }
        let Some(Text { text, lossy }) = readable_text(&bytes, found.kind) else {
            if let Some(s) = state {
                self.delete_documents(&[s.id])?;
            }
            return Ok(FileOutcome::Skipped(Skip::Binary));
        };
        let file_name = found.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let title = chunk::title(&text, found.kind, &file_name);
        let chunks = chunk_text(&text, found.kind, self.embedder.as_ref(), self.opts.chunk);
        let doc = NewDocument {
            root_id,
            path: &found.path,
            size: bytes.len() as u64,
            mtime_ns: found.mtime_ns,
            hash: &hash,
            kind: found.kind.as_str(),
            title: &title,
            lossy,
        };
        self.write_document(&doc, &chunks)?;
        Ok(FileOutcome::Indexed { chunks: chunks.len(), lossy })
    }
}
