//! What the tools do, as plain blocking functions over one index: search, read a file, report
//! the index's state, refresh it. The protocol layer ([`super::tools`]) only parses arguments and
//! runs these on blocking threads, so they can be tested and timed without a client.
//!
//! The searching is the query [`Session`]'s (as for the CLI and the TUI): one searcher, refreshed
//! with what writers committed before each call, and the index's model kept warm in the
//! background, keyword answers meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};

use super::access;
use crate::embed::load::Plan;
use crate::indexer::{self, Report, Writer};
use crate::rerank::Reranked;
use crate::search::{Filter, MatchKind, Mode};
use crate::session::{self, Around, HitContext, ModelState, Note, Request, Session};
use crate::store::TagCount;
use crate::store::lock::{self, Holder, Role};
use crate::watch;

/// Most hits one search returns, and most lines one `get` returns.
pub const MAX_K: usize = 100;
pub const MAX_LINES: usize = 1_000;

/// What the server is started with.
pub struct Setup {
    pub index_dir: PathBuf,
    pub model: Plan,
    /// Results, mode and per-document cap when a call names none.
    pub defaults: session::Defaults,
    /// How the `index` tool chunks and scans (as `qsearch index` would).
    pub index_options: indexer::Options,
}

#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    pub k: Option<usize>,
    pub mode: Option<Mode>,
    pub filter: Filter,
    /// Lines before and after each hit's line, and its neighbouring chunks.
    pub around: Around,
    /// Rerank the first hits (with the engine's reranker).
    pub rerank: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchOut {
    pub query: String,
    pub mode: Mode,
    pub hits: Vec<HitOut>,
    /// Chunks not embedded yet: semantic results cover only the rest.
    pub pending: u64,
    /// Why results are keyword-only or partial, when they are.
    pub notes: Vec<Note>,
    /// What reranking did, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranked: Option<Reranked>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HitOut {
    pub path: String,
    /// The first line with a query word (else where the chunk starts).
    pub line: usize,
    /// Where the chunk ends.
    pub end_line: usize,
    pub heading: String,
    pub score: f32,
    /// The reranker's score, when this hit was reranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_score: Option<f32>,
    #[serde(rename = "match")]
    pub kind: MatchKind,
    pub snippet: String,
    /// Pass to `get` to read the whole chunk.
    pub chunk_id: i64,
    /// The note's tags (frontmatter and `#tags`), for a next search's `tags`; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The note's own date, else the file's modification time (RFC 3339, local time).
    pub date: String,
    /// The lines around the hit and its neighbouring chunks, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<HitContext>,
}

#[derive(Debug, Clone, Default)]
pub struct GetRequest {
    pub path: Option<String>,
    pub chunk_id: Option<i64>,
    pub start_line: Option<usize>,
    pub end_line: Option<usize>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GetOut {
    pub path: String,
    pub start_line: usize,
    pub end_line: usize,
    pub total_lines: usize,
    /// The lines, each as `number<TAB>text`.
    pub text: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusOut {
    pub index: PathBuf,
    pub folders: Vec<String>,
    pub files: u64,
    pub chunks: u64,
    /// Chunks waiting for their embedding.
    pub pending: u64,
    /// What the index's vectors were made with (none before anything was embedded).
    pub indexed_with: Option<String>,
    /// Where a writer (`qsearch index`, the watcher) last ran the model.
    pub indexed_on: Option<String>,
    /// This server's copy of that model (where it runs, when ready).
    pub model: ModelState,
    /// The process holding the writer lock, if any.
    pub writer: Option<Holder>,
    /// A running watcher's state.
    pub watcher: Option<watch::State>,
    /// The most used tags (a search's `tags` filter), with how many files carry each.
    pub tags: Vec<TagCount>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexOut {
    /// False when nothing was done (a watcher owns the index).
    pub refreshed: bool,
    pub folders: Vec<String>,
    pub note: String,
    pub report: Option<Report>,
}

pub struct Engine {
    session: Session,
    index_options: indexer::Options,
    /// One `index` call at a time.
    writing: Mutex<()>,
}

impl Engine {
    pub fn new(setup: Setup) -> Engine {
        let session = Session::new(
            session::Setup { index_dir: setup.index_dir, model: setup.model, defaults: setup.defaults },
            None,
        );
        Engine { session, index_options: setup.index_options, writing: Mutex::new(()) }
    }

    pub fn index_dir(&self) -> &Path {
        self.session.index_dir()
    }

    /// The query session every call goes through (to give it a reranker).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Opens the index, loads its vector graph and starts loading its model, so the first
    /// search does not wait for them. Errors are left for the calls to report.
    pub fn warm_up(&self) {
        let _ = self.session.warm_up();
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchOut> {
        let request = Request {
            text: req.query.clone(),
            k: Some(req.k.unwrap_or(self.session.defaults().k).clamp(1, MAX_K)),
            mode: req.mode,
            filter: req.filter.clone(),
            per_doc: None,
            around: req.around,
            rerank: req.rerank,
        };
        let answer = self.session.search(&request)?;
        let hits = answer
            .results
            .hits
            .into_iter()
            .zip(answer.context)
            .map(|(h, context)| HitOut {
                path: h.path,
                line: h.line,
                end_line: h.end_line,
                heading: if h.heading.is_empty() { h.title } else { h.heading },
                score: h.score,
                rerank_score: h.rerank_score,
                kind: h.kind,
                snippet: h.snippet,
                chunk_id: h.chunk_id,
                tags: h.tags,
                date: h.date,
                context,
            })
            .collect();
        Ok(SearchOut {
            query: answer.query,
            mode: answer.mode,
            hits,
            pending: answer.results.pending,
            notes: answer.notes,
            reranked: answer.reranked.map(|r| *r),
        })
    }

    /// A file's lines (or a chunk's), numbered; only files of the index under its folders.
    pub fn get(&self, req: &GetRequest) -> Result<GetOut> {
        self.session.refresh()?;
        let (requested, chunk_lines) = match (&req.path, req.chunk_id) {
            (Some(_), Some(_)) => bail!("give either a path or a chunk_id, not both"),
            (None, None) => bail!("give a path (or a chunk_id from a search hit)"),
            (Some(p), None) => (p.clone(), None),
            (None, Some(id)) => {
                let row = self.session.with_searcher(|s| s.chunk(id))?.with_context(|| {
                    format!("no chunk {id} in the index (its file may have changed since: search again)")
                })?;
                (row.path, Some((row.start_line, row.end_line)))
            }
        };
        let roots: Vec<PathBuf> = self.session.with_searcher(|s| s.roots())?.into_iter().map(|r| r.path).collect();
        let real = access::resolve(&requested, &roots)?;
        if !self.session.with_searcher(|s| s.has_document(&real))? {
            bail!(
                "{requested} is not in the index (ignored, skipped or not indexed yet): only indexed files can be read"
            );
        }
        // The text as indexed (HTML without tags, a PDF's pages), which chunks' lines count in.
        let text = session::context::indexed_text(&real)?;
        let (start, end) = match chunk_lines {
            Some((s, e)) => (req.start_line.unwrap_or(s), req.end_line.unwrap_or(e)),
            None => (req.start_line.unwrap_or(1), req.end_line.unwrap_or(usize::MAX)),
        };
        let (text, start_line, end_line, total_lines) = numbered(&text, start, end)?;
        Ok(GetOut { path: real.display().to_string(), start_line, end_line, total_lines, text })
    }

    pub fn status(&self) -> Result<StatusOut> {
        self.session.refresh()?;
        let status = self.session.status()?;
        let folders = self.session.with_searcher(|s| s.roots())?;
        match &status.stats.fingerprint {
            Some(fp) => self.session.model().ensure(fp),
            None => self.session.model().clear(),
        }
        let stats = status.stats;
        Ok(StatusOut {
            index: status.index,
            folders: folders.into_iter().map(|r| r.display).collect(),
            files: stats.documents,
            chunks: stats.chunks,
            pending: stats.pending,
            indexed_with: stats.fingerprint.as_ref().map(ToString::to_string),
            indexed_on: status.device,
            model: self.session.model().state(),
            writer: status.writer,
            watcher: status.watcher,
            tags: stats.tags,
        })
    }

    /// Brings the index's folders (or the one named, which must be one of them) up to date,
    /// through the index's [`Writer`]; when a watcher owns the index, changes nothing and says so.
    pub fn index(&self, folder: Option<&str>, cancel: &AtomicBool) -> Result<IndexOut> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.session.refresh()?;
        let registered: Vec<PathBuf> = self.session.with_searcher(|s| s.roots())?.into_iter().map(|r| r.path).collect();
        let roots = match folder.map(str::trim).filter(|f| !f.is_empty()) {
            None => registered,
            Some(f) => {
                let real = std::fs::canonicalize(f).ok().filter(|p| registered.contains(p));
                let listed = registered.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
                vec![real.with_context(|| {
                    format!("{f} is not an indexed folder (indexed: {listed}); new folders are added with `qsearch index PATH`")
                })?]
            }
        };
        let folders = roots.iter().map(|r| r.display().to_string()).collect();
        let dir = self.index_dir();
        match lock::holder(dir) {
            Some(h) if h.role == Role::Watch => {
                return Ok(IndexOut {
                    refreshed: false,
                    folders,
                    note: format!(
                        "a watcher (pid {}) owns this index and keeps it up to date: nothing was changed",
                        h.pid
                    ),
                    report: None,
                });
            }
            Some(h) => {
                bail!("another qsearch {} (pid {}) is writing this index: try again when it is done", h.role, h.pid)
            }
            None => {}
        }
        let settings =
            indexer::Settings { role: Role::Mcp, rebuild: indexer::Rebuild::No, options: self.index_options.clone() };
        let mut writer = Writer::open(dir, settings, |fp| self.session.model().for_writer(fp))?;
        let report = writer.update(&roots, &mut |_| {}, cancel)?;
        drop(writer);
        let note = match &report.embed_error {
            Some(e) => format!(
                "the files are indexed, but the model stopped ({e}): {} chunks wait for their vectors and are found by keyword meanwhile; index again to embed them",
                report.pending
            ),
            None if report.interrupted => "interrupted: the work done so far is kept".into(),
            None => "the index is up to date".into(),
        };
        Ok(IndexOut { refreshed: true, folders, note, report: Some(report) })
    }
}

/// Lines `start..=end` of `text` (1-based, at most [`MAX_LINES`]), each numbered as
/// `cat -n` does; returns the text, the range shown and the number of lines.
pub fn numbered(text: &str, start: usize, end: usize) -> Result<(String, usize, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    let start = start.max(1);
    if total == 0 {
        return Ok((String::new(), 0, 0, 0));
    }
    if start > total {
        bail!("line {start} is past the end: the file has {total} lines");
    }
    if end < start {
        bail!("end_line {end} is before start_line {start}");
    }
    let end = end.min(total).min(start + MAX_LINES - 1);
    let width = end.to_string().len().max(4);
    let mut out = String::new();
    for (i, line) in lines[start - 1..end].iter().enumerate() {
        out.push_str(&format!("{:>width$}\t{line}\n", start + i));
    }
    Ok((out, start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_lines_are_clamped_and_checked() {
        let text = "a\nb\nc\n";
        assert_eq!(numbered(text, 2, 3).unwrap(), ("   2\tb\n   3\tc\n".into(), 2, 3, 3));
        assert_eq!(numbered(text, 1, usize::MAX).unwrap().2, 3);
        assert!(numbered(text, 4, 5).unwrap_err().to_string().contains("has 3 lines"));
        assert!(numbered(text, 3, 2).is_err());
        let long: String = (0..3000).map(|i| format!("{i}\n")).collect();
        let (_, s, e, total) = numbered(&long, 1, usize::MAX).unwrap();
        assert_eq!((s, e, total), (1, MAX_LINES, 3000));
    }
}
