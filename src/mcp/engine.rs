//! What the tools do, as plain blocking functions over one index: search, read a file, report
//! the index's state, refresh it. The protocol layer ([`super::tools`]) only parses arguments and
//! runs these on blocking threads, so they can be tested and timed without a client.
//!
//! One [`Searcher`] serves every call (behind a mutex; a search takes milliseconds) and looks for
//! writers' commits before each use, so a watcher writing meanwhile is simply picked up. The query
//! is embedded outside that lock, by the warm model ([`WarmModel`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};

use super::access;
use super::model::{ModelPlan, ModelState, WarmModel};
use crate::indexer::{self, Report, Writer};
use crate::search::{Filter, KeywordOnly, MatchKind, Mode, Query, Searcher};
use crate::store::TagCount;
use crate::store::lock::{self, Holder, Role};
use crate::watch;

/// Most hits one search returns, and most lines one `get` returns.
pub const MAX_K: usize = 100;
pub const MAX_LINES: usize = 1_000;

/// What the server is started with.
pub struct Setup {
    pub index_dir: PathBuf,
    pub model: ModelPlan,
    /// Results, mode and per-document cap when a call names none.
    pub k: usize,
    pub mode: Mode,
    pub per_doc: usize,
    /// How the `index` tool chunks and scans (as `qsearch index` would).
    pub index_options: indexer::Options,
}

#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    pub k: Option<usize>,
    pub mode: Option<Mode>,
    pub filter: Filter,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchOut {
    pub query: String,
    pub mode: Mode,
    pub hits: Vec<HitOut>,
    /// Chunks not embedded yet: semantic results cover only the rest.
    pub pending: u64,
    /// Why results are keyword-only or partial, when they are.
    pub notes: Vec<String>,
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
    /// This server's copy of that model.
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
    dir: PathBuf,
    searcher: Mutex<Option<Searcher>>,
    model: WarmModel,
    k: usize,
    mode: Mode,
    per_doc: usize,
    index_options: indexer::Options,
    /// One `index` call at a time.
    writing: Mutex<()>,
}

impl Engine {
    pub fn new(setup: Setup) -> Engine {
        Engine {
            dir: setup.index_dir,
            searcher: Mutex::new(None),
            model: WarmModel::new(setup.model),
            k: setup.k,
            mode: setup.mode,
            per_doc: setup.per_doc,
            index_options: setup.index_options,
            writing: Mutex::new(()),
        }
    }

    pub fn index_dir(&self) -> &Path {
        &self.dir
    }

    /// Opens the index, loads its vector graph and starts loading its model, so the first
    /// search does not wait for them. Errors are left for the calls to report.
    pub fn warm_up(&self) {
        let fp = self.with_searcher(|s| {
            let fp = s.fingerprint()?;
            if fp.is_some() {
                s.load_vectors()?;
            }
            Ok(fp)
        });
        if let Ok(Some(fp)) = fp {
            self.model.ensure(&fp);
        }
    }

    /// Runs `f` on the searcher, opened on first use and refreshed with what writers committed.
    fn with_searcher<T>(&self, f: impl FnOnce(&mut Searcher) -> Result<T>) -> Result<T> {
        let mut guard = self.searcher.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(Searcher::open(&self.dir)?);
        }
        let searcher = guard.as_mut().expect("opened above");
        searcher.refresh()?;
        f(searcher)
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchOut> {
        if req.query.trim().is_empty() {
            bail!("the query is empty");
        }
        let mode = req.mode.unwrap_or(self.mode);
        let q = Query {
            text: req.query.clone(),
            k: req.k.unwrap_or(self.k).clamp(1, MAX_K),
            mode,
            filter: req.filter.clone(),
            per_doc: self.per_doc,
        };
        let fp = self.with_searcher(|s| s.fingerprint())?;
        let mut why = None;
        let mut vector = None;
        if mode.needs_vectors() {
            match self.model.query_vector(fp.as_ref(), &q.text) {
                Ok(v) => vector = Some(v),
                Err(reason) => why = Some(reason),
            }
        }
        let results = self.with_searcher(|s| {
            if vector.is_some() && s.load_vectors().is_err() {
                why = Some(KeywordOnly::VectorFileUnreadable);
                vector = None;
            }
            s.search(&q, vector.as_deref())
        })?;
        let mut notes: Vec<String> = why.or(results.semantic_note.clone()).iter().map(ToString::to_string).collect();
        if results.pending > 0 && mode.needs_vectors() {
            notes.push(format!("{} chunks are not embedded yet: semantic results are partial", results.pending));
        }
        if let Some(note) = results.filter_note() {
            notes.push(note);
        } else if results.hits.is_empty() {
            notes.push("no results".into());
        }
        let hits = results
            .hits
            .into_iter()
            .map(|h| HitOut {
                path: h.path,
                line: h.line,
                end_line: h.end_line,
                heading: if h.heading.is_empty() { h.title } else { h.heading },
                score: h.score,
                kind: h.kind,
                snippet: h.snippet,
                chunk_id: h.chunk_id,
                tags: h.tags,
                date: h.date,
            })
            .collect();
        Ok(SearchOut { query: q.text, mode, hits, pending: results.pending, notes })
    }

    /// A file's lines (or a chunk's), numbered; only files of the index under its folders.
    pub fn get(&self, req: &GetRequest) -> Result<GetOut> {
        let (requested, chunk_lines) = match (&req.path, req.chunk_id) {
            (Some(_), Some(_)) => bail!("give either a path or a chunk_id, not both"),
            (None, None) => bail!("give a path (or a chunk_id from a search hit)"),
            (Some(p), None) => (p.clone(), None),
            (None, Some(id)) => {
                let row = self.with_searcher(|s| s.chunk(id))?.with_context(|| {
                    format!("no chunk {id} in the index (its file may have changed since: search again)")
                })?;
                (row.path, Some((row.start_line, row.end_line)))
            }
        };
        let roots: Vec<PathBuf> = self.with_searcher(|s| s.roots())?.into_iter().map(|r| r.path).collect();
        let real = access::resolve(&requested, &roots)?;
        if !self.with_searcher(|s| s.has_document(&real))? {
            bail!(
                "{requested} is not in the index (ignored, skipped or not indexed yet): only indexed files can be read"
            );
        }
        let bytes = std::fs::read(&real).with_context(|| format!("cannot read {}", real.display()))?;
        // The text as indexed (HTML without tags, a PDF's pages), which chunks' lines count in.
        let kind = crate::text::kind::of(&real).unwrap_or(crate::text::kind::Kind::Text);
        let text =
            crate::text::readable(&bytes, kind).map_err(|e| anyhow::anyhow!("cannot show {requested}: {e}"))?.text;
        let (start, end) = match chunk_lines {
            Some((s, e)) => (req.start_line.unwrap_or(s), req.end_line.unwrap_or(e)),
            None => (req.start_line.unwrap_or(1), req.end_line.unwrap_or(usize::MAX)),
        };
        let (text, start_line, end_line, total_lines) = numbered(&text, start, end)?;
        Ok(GetOut { path: real.display().to_string(), start_line, end_line, total_lines, text })
    }

    pub fn status(&self) -> Result<StatusOut> {
        let (stats, folders) = self.with_searcher(|s| Ok((s.stats()?, s.roots()?)))?;
        if let Some(fp) = &stats.fingerprint {
            self.model.ensure(fp);
        }
        let writer = lock::holder(&self.dir);
        let watcher = writer.as_ref().filter(|h| h.role == Role::Watch).and_then(|_| watch::State::read(&self.dir));
        Ok(StatusOut {
            index: self.dir.clone(),
            folders: folders.into_iter().map(|r| r.display).collect(),
            files: stats.documents,
            chunks: stats.chunks,
            pending: stats.pending,
            indexed_with: stats.fingerprint.as_ref().map(ToString::to_string),
            model: self.model.state(),
            writer,
            watcher,
            tags: stats.tags,
        })
    }

    /// Brings the index's folders (or the one named, which must be one of them) up to date,
    /// through the index's [`Writer`]; when a watcher owns the index, changes nothing and says so.
    pub fn index(&self, folder: Option<&str>, cancel: &AtomicBool) -> Result<IndexOut> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let registered: Vec<PathBuf> = self.with_searcher(|s| s.roots())?.into_iter().map(|r| r.path).collect();
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
        match lock::holder(&self.dir) {
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
        let mut writer = Writer::open(&self.dir, settings, |fp| self.model.for_writer(fp))?;
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
