//! Phase 1, sync: what changed on disk, and each changed file read, decoded and chunked. The
//! steps per file ([`prepare`]) touch no store, so a pool of workers runs them; only the
//! writer's thread applies their results. [`super::estimate`] shares the same steps.

use std::path::PathBuf;

use anyhow::Result;

use super::{FileOutcome, Progress, Report, Writer};
use crate::scan::{self, Found, Skip, Within};
use crate::store::docs::{DocOp, DocState, NewChunk, NewDocument, PassedOver};
use crate::text::chunk::{self, Sizer};
use crate::text::frontmatter::{self, Frontmatter};
use crate::text::kind::Kind;
use crate::text::pdf::PdfError;
use crate::text::{self, Readable, Unreadable};

/// A file whose size or mtime differs from what the store has (or that it lacks).
pub(super) struct Work {
    pub root_id: i64,
    pub found: Found,
    pub state: Option<DocState>,
}

/// A document's text as chunks ready to store, each with the hash of the text it is embedded as.
/// With a tokenizer, the document is tokenized once and chunks are sized from that.
pub(super) fn chunk_text(
    text: &str,
    kind: Kind,
    tokenizer: Option<&tokenizers::Tokenizer>,
    settings: chunk::Settings,
) -> Vec<NewChunk> {
    let chunks = match tokenizer {
        Some(t) => chunk::split_tokens(text, kind, settings, t),
        None => chunk::split(text, kind, settings, Sizer::Approx),
    };
    chunks.into_iter().map(NewChunk::from).collect()
}

/// What became of a changed file, and what the store should do about it (in order).
pub(super) struct Prepared {
    pub ops: Vec<DocOp>,
    pub outcome: FileOutcome,
}

/// Reads, hashes, decodes and chunks one changed file: the work a pool of threads shares. An
/// error means the file could not be read.
pub(super) fn prepare(
    work: &Work,
    tokenizer: Option<&tokenizers::Tokenizer>,
    settings: chunk::Settings,
) -> Result<Prepared> {
    let found = &work.found;
    let bytes = std::fs::read(&found.path)?;
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let size = bytes.len() as u64;
    if let Some(s) = work.state.as_ref().filter(|s| s.hash == hash) {
        let op = DocOp::Touch { id: s.id, size, mtime_ns: found.mtime_ns };
        return Ok(Prepared { ops: vec![op], outcome: FileOutcome::Unchanged });
    }
    // Read and not indexed: remembered, so it is not read again until it changes.
    let passed_over = |failed, reason: String| PassedOver {
        root_id: work.root_id,
        path: found.path.clone(),
        size,
        mtime_ns: found.mtime_ns,
        failed,
        reason,
    };
    let Readable { text, lossy, mut note, title: own_title } = match text::readable(&bytes, found.kind) {
        Ok(readable) => readable,
        // A broken PDF may be mid-write or damaged: what the index has of it is kept.
        Err(Unreadable::Pdf(e @ PdfError::Broken(_))) => {
            let kept = if work.state.is_some() { "; the version indexed before stays searchable" } else { "" };
            let why = format!("{e}{kept}");
            return Ok(Prepared {
                ops: vec![DocOp::PassOver(passed_over(true, why.clone()))],
                outcome: FileOutcome::Failed(why),
            });
        }
        Err(e) => {
            let skip = match e {
                Unreadable::Binary => Skip::Binary,
                e @ (Unreadable::Pdf(_) | Unreadable::Minified { .. }) => Skip::NoText(e.to_string()),
            };
            // No text now: a stored text version of it goes.
            let delete = work.state.as_ref().map(|s| DocOp::Delete { id: s.id });
            let ops = delete.into_iter().chain([DocOp::PassOver(passed_over(false, skip.to_string()))]).collect();
            return Ok(Prepared { ops, outcome: FileOutcome::Skipped(skip) });
        }
    };
    drop(bytes);
    let file_name = found.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let Frontmatter { title, tags, date_ns, error } =
        if found.kind == Kind::Markdown { frontmatter::of_note(&text) } else { Frontmatter::default() };
    if let Some(why) = error {
        note = Some(format!("{why}: the title and tags it holds are not used"));
    }
    // The frontmatter's title, else the first heading (an HTML page's is cleaner than its
    // <title>: "Install" rather than "Install — Foo 1.2 documentation"), else the <title>.
    let title = title.or_else(|| chunk::first_heading(&text, found.kind)).or(own_title).unwrap_or(file_name);
    let chunks = chunk_text(&text, found.kind, tokenizer, settings);
    let outcome = FileOutcome::Indexed { chunks: chunks.len(), lossy, note };
    let doc = NewDocument {
        root_id: work.root_id,
        path: found.path.clone(),
        size,
        mtime_ns: found.mtime_ns,
        hash,
        kind: found.kind.as_str(),
        title,
        lossy,
        tags,
        stated_ns: date_ns,
    };
    Ok(Prepared { ops: vec![DocOp::Write { doc, chunks }], outcome })
}

/// Where a sync looks: a whole folder, or only some paths under it (a watcher's batch).
#[derive(Debug, Clone)]
pub struct Area {
    pub root: PathBuf,
    pub within: Option<Within>,
}

impl Area {
    pub fn whole(root: PathBuf) -> Area {
        Area { root, within: None }
    }
}

impl Writer {
    /// Scans the areas and compares them with the store: unchanged files (same size and mtime)
    /// are counted, files passed over before and unchanged since are reported as they were,
    /// documents no longer on disk are removed, and the rest is returned as work. A document
    /// outside an area's paths is not looked at.
    pub(super) fn plan(
        &mut self,
        areas: &[Area],
        report: &mut Report,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Work>> {
        let mut work = Vec::new();
        for Area { root, within } in areas {
            if !root.is_dir() {
                report.record(root.clone(), FileOutcome::Failed("folder not found (its documents are kept)".into()));
                continue;
            }
            let root_id = self.store.add_root(root)?;
            let within = within.as_ref();
            let scanned = scan::scan(root, &self.opts.scan, within);
            progress(Progress::Scanned { root: root.clone(), files: scanned.files.len() });
            report.unsupported += scanned.unsupported;
            for (path, why) in scanned.skipped {
                report.record(path, FileOutcome::Skipped(why));
            }
            let mut known = self.store.documents_of_root(root_id, within)?;
            let mut passed = self.store.passed_over_of_root(root_id, within)?;
            for found in scanned.files {
                let key = crate::util::path_bytes(&found.path);
                let state = known.remove(&key);
                let passed_before = passed.remove(&key);
                let same = |size, mtime_ns| size == found.size && mtime_ns == found.mtime_ns;
                if state.as_ref().is_some_and(|s| same(s.size, s.mtime_ns)) {
                    report.record(found.path, FileOutcome::Unchanged);
                } else if let Some(p) = passed_before.filter(|p| same(p.size, p.mtime_ns)) {
                    let outcome = if p.failed {
                        FileOutcome::Failed(p.reason)
                    } else {
                        FileOutcome::Skipped(Skip::NoText(p.reason))
                    };
                    report.record(found.path, outcome);
                } else {
                    work.push(Work { root_id, found, state });
                }
            }
            // What is left was not found on disk: removed, renamed, or now ignored. Files under a
            // folder that could not be read are kept rather than dropped.
            let unreadable = |p: &Vec<u8>| {
                let p = crate::util::path_from_bytes(p);
                scanned.errors.iter().any(|(u, _)| p.starts_with(u))
            };
            let gone: Vec<DocOp> =
                known.iter().filter(|(p, _)| !unreadable(p)).map(|(_, s)| DocOp::Delete { id: s.id }).collect();
            report.removed += gone.len();
            self.apply(&gone)?;
            let forgotten: Vec<&[u8]> = passed.keys().filter(|p| !unreadable(p)).map(Vec::as_slice).collect();
            self.store.forget_passed_over(&forgotten)?;
            for (path, why) in scanned.errors {
                report.record(path, FileOutcome::Failed(why));
            }
        }
        Ok(work)
    }
}
