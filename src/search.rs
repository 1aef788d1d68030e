//! Queries in, hits out. Keyword search is BM25 over SQLite FTS5; semantic search is the HNSW
//! graph; hybrid fuses both rankings by reciprocal rank. One document may place only a few hits.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Result;
use rusqlite::{OptionalExtension, params_from_iter};

use crate::store::Store;
use crate::store::vectors::VectorIndex;
use crate::text::fts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Hybrid,
    Semantic,
    Keyword,
}

impl Mode {
    pub fn next(self) -> Mode {
        match self {
            Mode::Hybrid => Mode::Semantic,
            Mode::Semantic => Mode::Keyword,
            Mode::Keyword => Mode::Hybrid,
        }
    }
    pub fn needs_vectors(self) -> bool {
        self != Mode::Keyword
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Hybrid => "hybrid",
            Mode::Semantic => "semantic",
            Mode::Keyword => "keyword",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub k: usize,
    pub mode: Mode,
    pub path_glob: Option<String>,
    /// Most hits one document may place in the results.
    pub per_doc: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Keyword,
    Semantic,
    Both,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub chunk_id: i64,
    pub doc_id: i64,
    pub path: String,
    pub title: String,
    pub heading: String,
    pub line: usize,
    pub end_line: usize,
    pub score: f32,
    #[serde(rename = "match")]
    pub kind: MatchKind,
    pub snippet: String,
    /// Byte ranges in `snippet` where query words occur.
    pub marks: Vec<(usize, usize)>,
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Results {
    pub hits: Vec<Hit>,
    /// Chunks whose vectors are not computed yet: semantic results cover only the rest.
    pub pending: u64,
    /// Why semantic results are missing, when they are.
    pub semantic_note: Option<String>,
}

/// Reciprocal rank fusion constant (the usual 60).
const RRF_K: f32 = 60.0;

/// In hybrid fusion, a keyword hit that has only some of the query's words counts this much of
/// one that has all of them. Natural-language queries match nearly every chunk on some word;
/// those partial matches are weak evidence next to the semantic ranking.
const PARTIAL_KEYWORD_WEIGHT: f32 = 0.3;

/// A word found in more chunks than this (and in more than [`COMMON_TERM_SHARE`] of them) is left
/// out of keyword queries when other words remain: ranking every chunk that has it is the slow
/// part of a keyword query on a large index, and such a word's BM25 weight is small. Small
/// indexes keep every word.
const COMMON_TERM_CHUNKS: f64 = 5_000.0;
const COMMON_TERM_SHARE: f64 = 0.05;

pub struct Searcher {
    pub store: Store,
    vectors: Option<VectorIndex>,
    data_version: i64,
}

impl Searcher {
    pub fn open(dir: &Path) -> Result<Searcher> {
        let store = Store::open_read(dir)?;
        let data_version = store.conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        Ok(Searcher { store, vectors: None, data_version })
    }

    /// Loads the vector graph (needed for semantic and hybrid search).
    pub fn load_vectors(&mut self) -> Result<()> {
        if self.vectors.is_none() {
            if let Some(fp) = self.store.fingerprint()? {
                self.vectors = Some(VectorIndex::open_for_search(&self.store, fp.dims)?);
            }
        }
        Ok(())
    }

    /// Picks up what a writer committed since the last look. Returns true when something changed.
    pub fn refresh(&mut self) -> Result<bool> {
        let v: i64 = self.store.conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        if v == self.data_version {
            return Ok(false);
        }
        self.data_version = v;
        if self.vectors.is_some() {
            self.vectors = None;
            self.load_vectors()?;
        }
        Ok(true)
    }

    pub fn search(&self, q: &Query, query_vector: Option<&[f32]>) -> Result<Results> {
        let mut results = Results { pending: self.store.pending_chunks()?, ..Default::default() };
        let allowed = match &q.path_glob {
            Some(glob) => Some(self.chunks_matching(glob)?),
            None => None,
        };
        let fetch = (q.k * 4).max(40);
        let keyword = if q.mode != Mode::Semantic { self.keyword(&q.text, fetch, allowed.as_ref())? } else { Vec::new() };
        let semantic = match (q.mode.needs_vectors(), query_vector, &self.vectors) {
            (false, _, _) => Vec::new(),
            (true, Some(v), Some(index)) => {
                let filter = allowed.as_ref().map(|set| move |id: i64| set.contains(&id));
                let filter_ref: Option<&dyn Fn(i64) -> bool> = filter.as_ref().map(|f| f as &dyn Fn(i64) -> bool);
                index.search(v, fetch, filter_ref)?
            }
            (true, None, _) => {
                results.semantic_note = Some("the model is not loaded yet: keyword results only".into());
                Vec::new()
            }
            (true, Some(_), None) => {
                results.semantic_note = Some("the index has no vectors yet: keyword results only".into());
                Vec::new()
            }
        };
        let fused = fuse(&keyword, &semantic, q.mode);
        results.hits = self.hits(&fused, q)?;
        Ok(results)
    }

    /// BM25 over the keyword index: chunks with every query word first, then chunks with some
    /// of them; each list best first. Returns (chunk id, score, has every word).
    pub fn keyword(&self, text: &str, limit: usize, allowed: Option<&HashSet<i64>>) -> Result<Vec<(i64, f32, bool)>> {
        let terms = self.useful_terms(text)?;
        let all = self.keyword_match(&terms, fts::Join::All, limit, allowed)?;
        let mut out: Vec<(i64, f32, bool)> = all.iter().map(|&(id, s)| (id, s, true)).collect();
        if out.len() < limit {
            let seen: HashSet<i64> = all.iter().map(|h| h.0).collect();
            let any = if terms.len() > 1 { self.keyword_match(&terms, fts::Join::Any, limit, allowed)? } else { Vec::new() };
            out.extend(any.into_iter().filter(|h| !seen.contains(&h.0)).map(|(id, s)| (id, s, false)));
            out.truncate(limit);
        }
        Ok(out)
    }

    /// The query's words worth matching: very common ones are dropped unless nothing else is left.
    fn useful_terms(&self, text: &str) -> Result<Vec<String>> {
        let terms = fts::query_terms(text);
        if terms.len() < 2 {
            return Ok(terms);
        }
        let total: f64 = self.store.conn.query_row("SELECT coalesce(max(id), 0) FROM chunks", [], |r| r.get::<_, i64>(0))? as f64;
        // An index from before the vocabulary table (schema 1) keeps every word until its next write.
        let Ok(mut stmt) = self.store.conn.prepare_cached("SELECT doc FROM chunks_vocab WHERE term = ?1") else {
            return Ok(terms);
        };
        let mut kept = Vec::new();
        let mut rarest: Option<(i64, String)> = None;
        for t in terms {
            // CJK runs are phrases of single-character tokens: always kept.
            let df: i64 = if t.chars().any(fts::is_cjk) {
                0
            } else {
                stmt.query_row([&t], |r| r.get(0)).optional()?.unwrap_or(0)
            };
            if rarest.as_ref().is_none_or(|(d, _)| df < *d) {
                rarest = Some((df, t.clone()));
            }
            if (df as f64) <= COMMON_TERM_CHUNKS.max(COMMON_TERM_SHARE * total) {
                kept.push(t);
            }
        }
        if kept.is_empty() {
            kept.extend(rarest.map(|(_, t)| t));
        }
        Ok(kept)
    }

    fn keyword_match(&self, terms: &[String], join: fts::Join, limit: usize, allowed: Option<&HashSet<i64>>) -> Result<Vec<(i64, f32)>> {
        let Some(expr) = fts::terms_expr(terms, join) else { return Ok(Vec::new()) };
        let limit = if allowed.is_some() { limit * 20 } else { limit };
        let mut stmt = self.store.conn.prepare_cached(
            "SELECT rowid, bm25(chunks_fts, 2.0, 1.0, 0.5) AS s FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY s LIMIT ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![expr, limit as i64], |r| Ok((r.get::<_, i64>(0)?, -r.get::<_, f64>(1)? as f32)))?;
        let mut out: Vec<(i64, f32)> = rows.collect::<Result<_, _>>()?;
        if let Some(set) = allowed {
            out.retain(|(id, _)| set.contains(id));
        }
        Ok(out)
    }

    fn chunks_matching(&self, glob: &str) -> Result<HashSet<i64>> {
        let matcher = globset::GlobBuilder::new(glob).literal_separator(false).build()?.compile_matcher();
        let roots = self.store.roots()?;
        let mut stmt = self.store.conn.prepare_cached("SELECT c.id, d.display FROM chunks c JOIN documents d ON d.id = c.doc_id")?;
        let mut out = HashSet::new();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, path) = row?;
            let relative = roots.iter().find_map(|r| Path::new(&path).strip_prefix(&r.path).ok().map(Path::to_path_buf));
            if matcher.is_match(&path) || relative.is_some_and(|r| matcher.is_match(r)) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    fn hits(&self, fused: &[(i64, f32, MatchKind)], q: &Query) -> Result<Vec<Hit>> {
        if fused.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = fused.iter().map(|f| f.0).collect();
        let placeholders = vec!["?"; ids.len()].join(",");
        let sql = format!(
            "SELECT c.id, c.doc_id, d.display, d.title, c.heading, c.start_line, c.end_line, c.text
             FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({placeholders})"
        );
        let mut stmt = self.store.conn.prepare(&sql)?;
        let mut rows: HashMap<i64, (i64, String, String, String, usize, usize, String)> = HashMap::new();
        let iter = stmt.query_map(params_from_iter(ids.iter()), |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, i64>(5)? as usize, r.get::<_, i64>(6)? as usize, r.get(7)?)))
        })?;
        for row in iter {
            let (id, rest) = row?;
            rows.insert(id, rest);
        }
        let terms = fts::query_terms(&q.text);
        let mut per_doc: HashMap<i64, usize> = HashMap::new();
        let mut hits = Vec::new();
        // Chunks missing here were removed after the vector file was written: skip them.
        for &(id, score, kind) in fused {
            let Some((doc_id, path, title, heading, line, end_line, text)) = rows.remove(&id) else { continue };
            let n = per_doc.entry(doc_id).or_default();
            if *n >= q.per_doc.max(1) {
                continue;
            }
            *n += 1;
            let (snippet, marks, offset) = snippet(&text, &terms, 240);
            // Point at the first matched word when there is one, else at the chunk's start.
            let first = marks.first().map(|m| offset + m.0).unwrap_or(0);
            let line = line + text[..first].matches('\n').count();
            hits.push(Hit { chunk_id: id, doc_id, path, title, heading, line, end_line, score, kind, snippet, marks, text });
            if hits.len() == q.k {
                break;
            }
        }
        Ok(hits)
    }
}

/// Combines the two rankings. Hybrid: weighted reciprocal rank fusion (keyword hits with only
/// some of the query's words weigh less); a single mode keeps its own scores.
pub fn fuse(keyword: &[(i64, f32, bool)], semantic: &[(i64, f32)], mode: Mode) -> Vec<(i64, f32, MatchKind)> {
    match mode {
        Mode::Keyword => keyword.iter().map(|&(id, s, _)| (id, s, MatchKind::Keyword)).collect(),
        Mode::Semantic => semantic.iter().map(|&(id, s)| (id, s, MatchKind::Semantic)).collect(),
        Mode::Hybrid => {
            let mut scores: HashMap<i64, (f32, bool, bool)> = HashMap::new();
            for (rank, &(id, _, every_word)) in keyword.iter().enumerate() {
                let e = scores.entry(id).or_default();
                let weight = if every_word { 1.0 } else { PARTIAL_KEYWORD_WEIGHT };
                e.0 += weight / (RRF_K + rank as f32 + 1.0);
                e.1 = true;
            }
            for (rank, &(id, _)) in semantic.iter().enumerate() {
                let e = scores.entry(id).or_default();
                e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
                e.2 = true;
            }
            let mut out: Vec<(i64, f32, MatchKind)> = scores
                .into_iter()
                .map(|(id, (s, k, v))| {
                    let kind = match (k, v) {
                        (true, true) => MatchKind::Both,
                        (true, false) => MatchKind::Keyword,
                        _ => MatchKind::Semantic,
                    };
                    (id, s, kind)
                })
                .collect();
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out
        }
    }
}

/// A window of about `width` bytes around the first query word, the ranges of query words in
/// it, and where the window starts in `text`.
pub fn snippet(text: &str, terms: &[String], width: usize) -> (String, Vec<(usize, usize)>, usize) {
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths; fall back to no marks when it does.
    let same_len = lower.len() == text.len();
    let mut found: Vec<(usize, usize)> = Vec::new();
    if same_len {
        for t in terms.iter().filter(|t| !t.is_empty()) {
            for (i, _) in lower.match_indices(t.as_str()) {
                found.push((i, i + t.len()));
            }
        }
    }
    found.sort();
    let center = found.first().map(|m| m.0).unwrap_or(0);
    let mut start = center.saturating_sub(width / 3);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    if let Some(nl) = text[..center.min(text.len())].rfind('\n').filter(|&nl| nl + 1 >= start && nl + 1 <= center) {
        start = nl + 1;
    }
    let mut end = (start + width).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let window = &text[start..end];
    let marks = found.into_iter().filter(|&(s, e)| s >= start && e <= end).map(|(s, e)| (s - start, e - start)).collect();
    (window.to_string(), marks, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let kw = vec![(1, 9.0, true), (2, 8.0, true), (3, 7.0, true)];
        let sem = vec![(3, 0.9), (4, 0.8), (1, 0.7)];
        let fused = fuse(&kw, &sem, Mode::Hybrid);
        assert_eq!(fused[0].0, 1);
        assert_eq!(fused[0].2, MatchKind::Both);
        assert_eq!(fused[1].0, 3);
        assert_eq!(fused.len(), 4);
        // A partial keyword match is outweighed by agreement elsewhere.
        let kw = vec![(5, 9.0, false), (3, 7.0, false)];
        let fused = fuse(&kw, &sem, Mode::Hybrid);
        assert_eq!(fused[0].0, 3);
    }

    #[test]
    fn snippet_marks_words() {
        let text = "Intro line.\nThe borrow checker rejects this. More text follows here.";
        let (s, marks, offset) = snippet(text, &["borrow".into(), "checker".into()], 40);
        assert_eq!(offset, 12);
        assert!(s.starts_with("The borrow"));
        let marked: Vec<&str> = marks.iter().map(|&(a, b)| &s[a..b]).collect();
        assert_eq!(marked, vec!["borrow", "checker"]);
    }
}
