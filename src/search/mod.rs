//! Queries in, hits out. Keyword search is BM25 over SQLite FTS5; semantic search is the HNSW
//! graph; hybrid fuses both lists' standardised scores ([`fuse`]). One document may place only
//! a few hits. The searcher reads through the store's typed queries; it holds no SQL.

pub mod filter;
pub mod fuse;
pub mod phrase;
pub mod snippet;
mod types;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use crate::store::docs::Root;
use crate::store::read::{ChunkSpan, DocConditions, HitRow};
use crate::store::vectors::VectorIndex;
use crate::store::{Fingerprint, Stats, Store};
use crate::text::fts;

pub use filter::Filter;
pub use fuse::fuse;
pub use phrase::Phrases;
pub use types::{Hit, KeywordHit, KeywordOnly, MatchKind, Mode, Query, Results};

/// A word found in more chunks than this (and in more than [`COMMON_TERM_SHARE`] of them) is left
/// out of keyword queries when other words remain: ranking every chunk that has it is the slow
/// part of a keyword query on a large index, and such a word's BM25 weight is small. Small
/// indexes keep every word.
const COMMON_TERM_CHUNKS: f64 = 5_000.0;
const COMMON_TERM_SHARE: f64 = 0.05;

/// The "some of the words" list ranks by BM25 in SQLite at most about this many chunks (those
/// holding the query's rarest words): BM25 costs ~0.7 us a matching chunk, and the words of a
/// query can match 100,000 chunks of a large index (`some_words`).
pub const SOME_WORDS_RANKED: i64 = 10_000;

/// A filter allowing at most this many chunks is searched by meaning exactly, chunk by chunk,
/// rather than by a filtered walk of the graph (benches/README.md, "Filters").
const EXACT_AMONG: usize = 4_096;

/// A filter allowing at most this many chunks, when few of them are among a keyword query's best
/// matches, has SQLite rank only them (given their ids); one allowing more has more of the best
/// matches read instead (`Searcher::keyword_match`).
const IDS_TO_SQLITE_MAX: usize = 20_000;

/// With quoted phrases in the query, each list is asked for this many times its usual count:
/// the hits without the phrases are dropped after.
const QUOTED_WIDER: usize = 4;

/// Most words a searcher remembers the chunks of (see [`TermChunks`]), and most chunk ids in all.
const TERM_CHUNKS_KEPT: usize = 4_096;
const TERM_IDS_KEPT: usize = 2_000_000;

/// The chunks holding one query word: how many, and which (ids ascending; empty for a word too
/// common to be kept in a query, whose ids are not needed: its `count` is then only a floor,
/// unless it was counted in full by [`Searcher::term_count`]).
#[derive(Debug, Clone, Default)]
struct Postings {
    count: i64,
    ids: std::sync::Arc<[i64]>,
}

impl Postings {
    /// Whether every chunk holding the word is listed (else the word was too common to list).
    fn listed(&self) -> bool {
        self.ids.len() as i64 == self.count
    }

    fn holds(&self, chunk_id: i64) -> bool {
        self.ids.binary_search(&chunk_id).is_ok()
    }
}

/// Each query word's chunks, as last read, valid while SQLite's `data_version` stays `version`.
/// Reading a word's chunks reads its whole posting list, so a common word costs milliseconds on
/// a large index, and common words are the ones queries repeat.
#[derive(Default)]
struct TermChunks {
    version: i64,
    words: HashMap<String, Postings>,
    ids: usize,
}

impl TermChunks {
    /// `word`'s chunks at `version`: remembered, or read with `read` (and remembered). A new
    /// version forgets every word, and so does a full table.
    fn get(&mut self, version: i64, word: &str, read: impl FnOnce() -> Result<Postings>) -> Result<Postings> {
        if self.version != version || self.words.len() >= TERM_CHUNKS_KEPT || self.ids >= TERM_IDS_KEPT {
            *self = TermChunks { version, ..Default::default() };
        }
        if let Some(p) = self.words.get(word) {
            return Ok(p.clone());
        }
        let p = read()?;
        self.ids += p.ids.len();
        self.words.insert(word.to_string(), p.clone());
        Ok(p)
    }
}

pub struct Searcher {
    store: Store,
    /// The vector graph, and the fingerprint of the index it was loaded for.
    vectors: Option<(VectorIndex, Fingerprint)>,
    data_version: i64,
    term_chunks: RefCell<TermChunks>,
    filtered: RefCell<Option<Filtered>>,
    /// [`SOME_WORDS_RANKED`], unless a test or bench sets another.
    some_words_ranked: i64,
    /// [`COMMON_TERM_CHUNKS`], unless a test sets another.
    common_term_chunks: f64,
    /// [`IDS_TO_SQLITE_MAX`], unless a test sets another.
    ids_to_sqlite_max: usize,
}

/// The last filter's chunks, valid while the index's `data_version` stays `version` (the
/// terminal UI asks again on every key).
struct Filtered {
    filter: Filter,
    version: i64,
    chunks: Arc<HashSet<i64>>,
}

impl Searcher {
    pub fn open(dir: &Path) -> Result<Searcher> {
        let store = Store::open_read(dir)?;
        let data_version = store.data_version()?;
        Ok(Searcher {
            store,
            vectors: None,
            data_version,
            term_chunks: RefCell::default(),
            filtered: RefCell::default(),
            some_words_ranked: SOME_WORDS_RANKED,
            common_term_chunks: COMMON_TERM_CHUNKS,
            ids_to_sqlite_max: IDS_TO_SQLITE_MAX,
        })
    }

    /// How many chunks SQLite ranks by BM25 for the "some of the words" list (see
    /// `some_words`): for comparing the cut with ranking them all (`i64::MAX`).
    pub fn set_some_words_ranked(&mut self, chunks: i64) {
        self.some_words_ranked = chunks;
    }

    /// The fewest chunks a word must be in to be dropped as too common (with more than
    /// [`COMMON_TERM_SHARE`] of them): for tests on small indexes.
    pub fn set_common_term_chunks(&mut self, chunks: i64) {
        self.common_term_chunks = chunks as f64;
    }

    /// The most chunks a filter may allow for SQLite to be given their ids when keyword search
    /// ranks only those (see `keyword_match`): for tests on small indexes.
    pub fn set_ids_to_sqlite_max(&mut self, chunks: usize) {
        self.ids_to_sqlite_max = chunks;
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// What the index's vectors were made with; `None` before anything was embedded.
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>> {
        self.store.fingerprint()
    }

    pub fn stats(&self) -> Result<Stats> {
        self.store.stats()
    }

    /// Where the index's model last ran for a writer.
    pub fn device(&self) -> Result<Option<String>> {
        self.store.device()
    }

    /// The embedding server the index's `openai:` model was asked (`--endpoint`).
    pub fn endpoint(&self) -> Result<Option<String>> {
        self.store.endpoint()
    }

    /// Chunks without a vector yet (what semantic search cannot find).
    pub fn pending_chunks(&self) -> Result<u64> {
        self.store.pending_chunks()
    }

    /// The vector graph as loaded (for benchmarks that measure its recall).
    pub fn vectors(&self) -> Option<&VectorIndex> {
        self.vectors.as_ref().map(|(v, _)| v)
    }

    /// Loads the vector graph (needed for semantic and hybrid search).
    pub fn load_vectors(&mut self) -> Result<()> {
        if self.vectors.is_none()
            && let Some(fp) = self.store.fingerprint()?
        {
            self.vectors = Some((VectorIndex::open_for_search(&self.store, fp.dims)?, fp));
        }
        Ok(())
    }

    /// Picks up what a writer committed since the last look. Returns true when something changed.
    pub fn refresh(&mut self) -> Result<bool> {
        let v = self.store.data_version()?;
        if v == self.data_version {
            return Ok(false);
        }
        self.data_version = v;
        // The same model and chunking: what changed is added and removed; else (a rebuild)
        // the graph is loaded again.
        let fp = self.store.fingerprint()?;
        match (&mut self.vectors, fp) {
            (Some((vectors, loaded)), Some(fp)) if *loaded == fp => vectors.refresh(&self.store)?,
            (Some(_), _) => {
                self.vectors = None;
                self.load_vectors()?;
            }
            (None, _) => {}
        }
        Ok(true)
    }

    pub fn search(&self, q: &Query, query_vector: Option<&[f32]>) -> Result<Results> {
        let mut results = Results { pending: self.store.pending_chunks()?, ..Default::default() };
        let allowed = if q.filter.is_empty() { None } else { Some(self.chunks_allowed(&q.filter)?) };
        if allowed.as_ref().is_some_and(|a| a.is_empty()) {
            results.no_file_matches = Some(q.filter.describe());
            return Ok(results);
        }
        let allowed = allowed.as_deref();
        let phrases = Phrases::of(&q.text);
        // Quoted phrases drop the hits without them, so each list is asked for more.
        let fetch = (q.k * 4).max(40) * if phrases.required.is_empty() { 1 } else { QUOTED_WIDER };
        let wants_keyword = q.mode != Mode::Semantic;
        let keyword_side = || if wants_keyword { self.keyword(&q.text, fetch, allowed) } else { Ok(Vec::new()) };
        let (keyword, semantic) = match (q.mode.needs_vectors(), query_vector, self.vectors()) {
            (false, _, _) => (keyword_side()?, Vec::new()),
            (true, Some(v), Some(index)) => {
                let nearest = || match allowed {
                    // Few chunks allowed: compare with each of them (a filtered walk of the graph
                    // visits most of it to find them: 115 ms for 10 of 100,000 chunks).
                    Some(set) if set.len() <= EXACT_AMONG => index.search_among(v, fetch, set),
                    Some(set) => index.search(v, fetch, Some(&|id: i64| set.contains(&id))),
                    None => index.search(v, fetch, None),
                };
                // Hybrid: the graph is walked on a second thread while SQLite ranks the words
                // (the two lists do not depend on each other, and each takes milliseconds).
                let (keyword, semantic) =
                    if wants_keyword { both(keyword_side, nearest) } else { (Ok(Vec::new()), nearest()) };
                (keyword?, semantic?)
            }
            (true, None, _) => {
                results.semantic_note = Some(KeywordOnly::ModelLoading);
                (keyword_side()?, Vec::new())
            }
            (true, Some(_), None) => {
                results.semantic_note = Some(KeywordOnly::NoVectors);
                (keyword_side()?, Vec::new())
            }
        };
        let (mut keyword, mut semantic) = (keyword, semantic);
        let (rows, missing) = self.check_phrases(&phrases, &mut keyword, &mut semantic)?;
        results.phrases_missing = missing;
        let fused = fuse(&keyword, &semantic, q.mode, phrases.whole.len());
        results.hits = self.hits(&fused, q, rows)?;
        Ok(results)
    }

    /// Marks the keyword hits that hold the whole query as a phrase (among the first of them
    /// holding every word: only those can), and with quoted phrases in the query, drops every
    /// hit of either list without them; when that leaves nothing, the lists stay whole and the
    /// phrases are returned (in quotes) to say so. Also returns the rows it read, for
    /// [`Searcher::hits`].
    fn check_phrases(
        &self,
        phrases: &Phrases,
        keyword: &mut Vec<KeywordHit>,
        semantic: &mut Vec<(i64, f32)>,
    ) -> Result<(HashMap<i64, HitRow>, Option<String>)> {
        let ids: Vec<i64> = if !phrases.required.is_empty() {
            keyword.iter().map(|h| h.chunk_id).chain(semantic.iter().map(|h| h.0)).collect()
        } else if phrases.has_whole() {
            keyword.iter().take(fuse::HEAD).filter(|h| h.every_word).map(|h| h.chunk_id).collect()
        } else {
            Vec::new()
        };
        let rows = self.store.hit_rows(&ids)?;
        let words: HashMap<i64, Vec<String>> = rows.iter().map(|(&id, row)| (id, phrase::words(&row.text))).collect();
        let held = |id: i64| words.get(&id).is_none_or(|w| phrases.required_in(w));
        let mut missing = None;
        if !phrases.required.is_empty() {
            if keyword.iter().any(|h| held(h.chunk_id)) || semantic.iter().any(|h| held(h.0)) {
                keyword.retain(|h| held(h.chunk_id));
                semantic.retain(|h| held(h.0));
            } else if !keyword.is_empty() || !semantic.is_empty() {
                missing = Some(
                    phrases.required.iter().map(|p| format!("\"{}\"", p.join(" "))).collect::<Vec<_>>().join(" and "),
                );
            }
        }
        if phrases.has_whole() {
            for h in keyword.iter_mut().filter(|h| h.every_word) {
                h.phrase = words.get(&h.chunk_id).is_some_and(|w| phrase::holds(w, &phrases.whole));
            }
        }
        Ok((rows, missing))
    }

    /// BM25 over the keyword index: chunks with every query word first, then chunks with some
    /// of them; each list best first.
    pub fn keyword(&self, text: &str, limit: usize, allowed: Option<&HashSet<i64>>) -> Result<Vec<KeywordHit>> {
        let weighted = self.useful_terms(text)?;
        let terms: Vec<fts::Term> = weighted.iter().map(|w| w.0.clone()).collect();
        let all = self.keyword_match(&terms, fts::Join::All, limit, allowed)?;
        let mut out: Vec<KeywordHit> = all
            .iter()
            .map(|&(chunk_id, score)| KeywordHit { chunk_id, score, every_word: true, coverage: 1.0, phrase: false })
            .collect();
        if out.len() < limit && terms.len() > 1 {
            let seen: HashSet<i64> = all.iter().map(|h| h.0).collect();
            let mut some = self.some_words(&weighted, limit, allowed)?;
            some.retain(|h| !seen.contains(&h.0));
            some.truncate(limit - out.len());
            let ids: Vec<i64> = some.iter().map(|h| h.0).collect();
            let coverage = self.coverage(&weighted, &ids)?;
            out.extend(some.into_iter().map(|(chunk_id, score)| KeywordHit {
                chunk_id,
                score,
                every_word: false,
                coverage: coverage.get(&chunk_id).copied().unwrap_or(0.0),
                phrase: false,
            }));
        }
        Ok(out)
    }

    /// Chunks holding some of the query's words, best BM25 first. Where the words' chunks are
    /// too many to rank them all, SQLite ranks those holding the rarest words (up to
    /// [`SOME_WORDS_RANKED`] of them); each of the other words a chunk holds adds its IDF (its
    /// BM25 weight for one occurrence in a chunk of average length), and chunks holding two or
    /// more of the other words only are found from their chunk lists and scored the same way.
    /// A chunk holding one common word and nothing else is what this leaves out.
    fn some_words(
        &self,
        weighted: &[(fts::Term, Postings)],
        limit: usize,
        allowed: Option<&HashSet<i64>>,
    ) -> Result<Vec<(i64, f32)>> {
        let listed = weighted.iter().all(|(_, p)| p.listed());
        let total: i64 = weighted.iter().map(|(_, p)| p.count).sum();
        if !listed || total <= self.some_words_ranked {
            let terms: Vec<fts::Term> = weighted.iter().map(|w| w.0.clone()).collect();
            return self.keyword_match(&terms, fts::Join::Any, limit, allowed);
        }
        let mut order: Vec<&(fts::Term, Postings)> = weighted.iter().collect();
        order.sort_by_key(|(_, p)| p.count);
        let ranked = ranked_words(&order.iter().map(|(_, p)| p.count).collect::<Vec<_>>(), self.some_words_ranked);
        let (rare, rest) = order.split_at(ranked);
        let rare: Vec<fts::Term> = rare.iter().map(|(t, _)| t.clone()).collect();
        let chunks = self.store.max_chunk_id()?.max(1) as f64;
        let idf = |p: &Postings| bm25_idf(chunks, p.count);
        let mut hits = self.keyword_match(&rare, fts::Join::Any, limit, allowed)?;
        for h in &mut hits {
            h.1 += rest.iter().filter(|(_, p)| p.holds(h.0)).map(|(_, p)| idf(p)).sum::<f32>();
        }
        let found: HashSet<i64> = hits.iter().map(|h| h.0).collect();
        let lists: Vec<&[i64]> = rest.iter().map(|(_, p)| &p.ids[..]).collect();
        for (id, held) in held_by_several(&lists) {
            if found.contains(&id) || allowed.is_some_and(|a| !a.contains(&id)) {
                continue;
            }
            let score = (0..rest.len()).filter(|i| held & (1 << i) != 0).map(|i| idf(&rest[i].1)).sum();
            hits.push((id, score));
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(limit);
        Ok(hits)
    }

    /// For each of `ids`, the share of the query's words it holds, each word weighted by its
    /// rarity (BM25's IDF, from the number of chunks holding it).
    fn coverage(&self, weighted: &[(fts::Term, Postings)], ids: &[i64]) -> Result<HashMap<i64, f32>> {
        let total = self.store.max_chunk_id()?.max(1) as f64;
        let idf = |chunks: i64| bm25_idf(total, chunks) as f64;
        let sum: f64 = weighted.iter().map(|w| idf(w.1.count)).sum();
        let mut out: HashMap<i64, f32> = HashMap::new();
        for (_, postings) in weighted {
            let share = (idf(postings.count) / sum) as f32;
            for &id in ids.iter().filter(|&&id| postings.holds(id)) {
                *out.entry(id).or_default() += share;
            }
        }
        Ok(out)
    }

    /// The chunk with its neighbours in its document, for a preview; `None` when it is gone.
    pub fn neighbours(&self, chunk_id: i64) -> Result<Option<Vec<ChunkSpan>>> {
        let spans = self.store.neighbours(chunk_id)?;
        Ok((!spans.is_empty()).then_some(spans))
    }

    /// One chunk's row (path, heading, line range, text); `None` when it is gone.
    pub fn chunk(&self, chunk_id: i64) -> Result<Option<HitRow>> {
        Ok(self.store.hit_rows(&[chunk_id])?.remove(&chunk_id))
    }

    /// The folders the index was given.
    pub fn roots(&self) -> Result<Vec<Root>> {
        self.store.roots()
    }

    /// Whether a file (by its absolute path) is a document of the index.
    pub fn has_document(&self, path: &Path) -> Result<bool> {
        self.store.has_document(path)
    }

    /// The query's words worth matching, each with the chunks holding it: stopwords and very
    /// common words are dropped unless nothing else is left.
    fn useful_terms(&self, text: &str) -> Result<Vec<(fts::Term, Postings)>> {
        let mut terms = fts::query_keys(text);
        if terms.iter().any(|t| !fts::is_stopword(&t.word)) {
            terms.retain(|t| !fts::is_stopword(&t.word));
        }
        if terms.len() < 2 {
            // One word: nothing to weigh it against.
            return Ok(terms.into_iter().map(|t| (t, Postings::default())).collect());
        }
        let common = self.common_term_chunks.max(COMMON_TERM_SHARE * self.store.max_chunk_id()? as f64) as i64;
        let mut counted = Vec::new();
        for t in terms {
            let postings = self.term_chunks(&t, common)?;
            counted.push((t, postings));
        }
        // CJK runs and identifiers are phrases of several tokens: always kept.
        let (mut kept, too_common): (Vec<_>, Vec<_>) =
            counted.into_iter().partition(|(t, p)| t.is_compound() || p.listed());
        if kept.is_empty() {
            // Every word is too common: the rarest one is kept, which needs each counted in full
            // (a scan of its whole list; only such queries pay it).
            let mut rarest: Option<(fts::Term, Postings)> = None;
            for (t, _) in too_common {
                let p = self.term_count(&t)?;
                if rarest.as_ref().is_none_or(|r| p.count < r.1.count) {
                    rarest = Some((t, p));
                }
            }
            kept.extend(rarest);
        }
        Ok(kept)
    }

    /// The chunks holding a query word (stemmed and phrased as the index matches it), read when
    /// they are at most `keep` (or the word is compound); remembered until a writer commits.
    fn term_chunks(&self, term: &fts::Term, keep: i64) -> Result<Postings> {
        let Some(expr) = fts::terms_expr(std::slice::from_ref(term), fts::Join::Any) else {
            return Ok(Postings::default());
        };
        let version = self.store.data_version()?;
        self.term_chunks.borrow_mut().get(version, &expr, || {
            // Compound terms are kept however common, so their ids are always needed. Another
            // word's chunks are counted first, up to `keep`: a word in more is too common to be
            // kept, and neither its ids nor (unless every word of the query is as common) how
            // many there are is wanted; counting them all would scan its whole list (a word in
            // most of a million chunks: 20-60 ms).
            if !term.is_compound() {
                let count = self.store.count_matching(&expr, keep as usize + 1)?;
                if count > keep {
                    return Ok(Postings { count, ids: Vec::new().into() });
                }
            }
            let ids = self.store.matching_chunks(&expr)?;
            Ok(Postings { count: ids.len() as i64, ids: ids.into() })
        })
    }

    /// How many chunks hold a query word, counted in full (inside SQLite, which counts faster
    /// than it hands over rows); remembered until a writer commits.
    fn term_count(&self, term: &fts::Term) -> Result<Postings> {
        let Some(expr) = fts::terms_expr(std::slice::from_ref(term), fts::Join::Any) else {
            return Ok(Postings::default());
        };
        let version = self.store.data_version()?;
        // A key no word's expression can be (a NUL after it).
        let key = format!("{expr}\0count");
        self.term_chunks.borrow_mut().get(version, &key, || {
            Ok(Postings { count: self.store.count_matching(&expr, usize::MAX >> 1)?, ids: Vec::new().into() })
        })
    }

    fn keyword_match(
        &self,
        terms: &[fts::Term],
        join: fts::Join,
        limit: usize,
        allowed: Option<&HashSet<i64>>,
    ) -> Result<Vec<(i64, f32)>> {
        let Some(expr) = fts::terms_expr(terms, join) else { return Ok(Vec::new()) };
        let Some(set) = allowed else { return self.store.keyword_match(&expr, limit, None) };
        // The index's best matches, then the allowed ones among them: those are the allowed
        // chunks' best too, as long as `limit` of them are left (or every match was seen).
        let mut wide = limit * 20;
        loop {
            let mut out = self.store.keyword_match(&expr, wide, None)?;
            let every_match = out.len() < wide;
            out.retain(|(id, _)| set.contains(id));
            if out.len() >= limit || every_match {
                out.truncate(limit);
                return Ok(out);
            }
            // A narrow filter: only its chunks are ranked, SQLite given their ids. A wide one's
            // ids cost more to hand over (SQLite indexes them: ~0.9 us an id, 450 ms for half of
            // a million chunks) than ranking more matches (~0.7 us a match): more are read.
            if set.len() <= self.ids_to_sqlite_max {
                return self.store.keyword_match(&expr, limit, Some(set));
            }
            wide *= 8;
        }
    }

    /// The chunks `filter` allows: SQLite narrows the documents by time and tag, each one's path
    /// and type are checked here, then their chunks are looked up. Kept until the filter or the
    /// index changes.
    fn chunks_allowed(&self, filter: &Filter) -> Result<Arc<HashSet<i64>>> {
        if let Some(kept) = self.filtered.borrow().as_ref()
            && kept.filter == *filter
            && kept.version == self.data_version
        {
            return Ok(kept.chunks.clone());
        }
        let matcher = match &filter.path {
            Some(glob) => Some(globset::GlobBuilder::new(glob).literal_separator(false).build()?.compile_matcher()),
            None => None,
        };
        let roots = self.store.roots()?;
        let when = DocConditions { since_ns: filter.since_ns, until_ns: filter.until_ns, tags: &filter.tags };
        let docs: Vec<i64> = self
            .store
            .docs_where(&when)?
            .into_iter()
            .filter(|d| {
                let path = Path::new(&d.path);
                let by_path = matcher.as_ref().is_none_or(|m| {
                    m.is_match(path)
                        || roots.iter().find_map(|r| path.strip_prefix(&r.path).ok()).is_some_and(|r| m.is_match(r))
                });
                by_path && (filter.types.is_empty() || filter.types.iter().any(|t| t.matches(&d.kind, &d.path)))
            })
            .map(|d| d.id)
            .collect();
        let out: HashSet<i64> = self.store.chunks_of(&docs)?.into_iter().collect();
        let out = Arc::new(out);
        *self.filtered.borrow_mut() =
            Some(Filtered { filter: filter.clone(), version: self.data_version, chunks: out.clone() });
        Ok(out)
    }

    /// The hits for the fused ranking, `known` rows reused (the rest read a batch at a time).
    fn hits(&self, fused: &[(i64, f32, MatchKind)], q: &Query, mut known: HashMap<i64, HitRow>) -> Result<Vec<Hit>> {
        let terms = fts::query_terms(&q.text);
        let mut per_doc: HashMap<i64, usize> = HashMap::new();
        let mut hits = Vec::new();
        // Rows are read a batch at a time, best first, until k hits are placed: most searches
        // need only the first batch.
        let batch = (q.k * 2).max(20);
        for part in fused.chunks(batch) {
            let ids: Vec<i64> = part.iter().map(|f| f.0).filter(|id| !known.contains_key(id)).collect();
            known.extend(self.store.hit_rows(&ids)?);
            let rows = &mut known;
            // Chunks missing here were removed after the vector file was written: skip them.
            for &(id, score, kind) in part {
                let Some(row) = rows.remove(&id) else { continue };
                let n = per_doc.entry(row.doc_id).or_default();
                if *n >= q.per_doc.max(1) {
                    continue;
                }
                *n += 1;
                let shown = snippet::snippet(&row.text, &terms, 240);
                // Point at the first matched word when there is one, else at the chunk's start.
                let first = shown.marks.first().map(|m| shown.offset + m.0).unwrap_or(0);
                let line = row.start_line + row.text[..first].matches('\n').count();
                hits.push(Hit {
                    chunk_id: id,
                    doc_id: row.doc_id,
                    path: row.path,
                    title: row.title,
                    heading: row.heading,
                    line,
                    end_line: row.end_line,
                    score,
                    rerank_score: None,
                    kind,
                    snippet: shown.text,
                    marks: shown.marks,
                    tags: row.tags,
                    date: local_date(row.date_ns),
                    text: row.text,
                });
                if hits.len() == q.k {
                    return Ok(hits);
                }
            }
        }
        Ok(hits)
    }
}

/// Nanoseconds since the epoch as RFC 3339 in local time, to the second.
fn local_date(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Runs `a` here and `b` on a scoped thread at once (both here, one after the other, when no
/// thread can be started).
fn both<A, B: Send>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    let b = std::sync::Mutex::new(Some(b));
    let take = || b.lock().unwrap_or_else(|p| p.into_inner()).take().expect("run once");
    std::thread::scope(|scope| {
        match std::thread::Builder::new().name("qsearch-nearest".into()).spawn_scoped(scope, || take()()) {
            Ok(handle) => {
                let a = a();
                let b = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (a, b)
            }
            Err(e) => {
                tracing::debug!("searching on one thread: {e}");
                (a(), take()())
            }
        }
    })
}

/// How many of a query's words, rarest first (`counts` ascending), SQLite ranks by BM25: as many
/// as hold at most `budget` chunks together, and at least the rarest.
fn ranked_words(counts: &[i64], budget: i64) -> usize {
    let mut sum = 0;
    let within = counts.iter().take_while(|&&c| {
        sum += c;
        sum <= budget
    });
    within.count().max(1).min(counts.len())
}

/// FTS5's BM25 weight of a word held by `holding` of `chunks` chunks.
fn bm25_idf(chunks: f64, holding: i64) -> f32 {
    ((chunks - holding as f64 + 0.5) / (holding as f64 + 0.5)).ln().max(1e-6) as f32
}

/// The ids found in two or more of `lists` (each ascending; at most 32 lists), each with a bit
/// set for every list holding it, ids ascending.
fn held_by_several(lists: &[&[i64]]) -> Vec<(i64, u32)> {
    let mut all: Vec<(i64, u32)> =
        lists.iter().take(32).enumerate().flat_map(|(i, l)| l.iter().map(move |&id| (id, 1u32 << i))).collect();
    all.sort_unstable();
    let mut out: Vec<(i64, u32)> = Vec::new();
    for (id, bit) in all {
        match out.last_mut() {
            Some(last) if last.0 == id => last.1 |= bit,
            _ => out.push((id, bit)),
        }
    }
    out.retain(|(_, held)| held.count_ones() >= 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_chunks_are_read_again_after_a_commit_and_forgotten_when_too_many() {
        let mut words = TermChunks::default();
        let mut reads = 0;
        let mut get = |words: &mut TermChunks, version: i64, word: &str, count: i64| {
            words
                .get(version, word, || {
                    reads += 1;
                    Ok(Postings { count, ids: (0..count).collect::<Vec<_>>().into() })
                })
                .unwrap()
                .count
        };
        assert_eq!(get(&mut words, 1, "rust", 10), 10);
        assert_eq!(get(&mut words, 1, "rust", 99), 10, "remembered while nothing was committed");
        assert_eq!(get(&mut words, 2, "rust", 99), 99, "a commit makes it read again");
        for i in 0..TERM_CHUNKS_KEPT {
            get(&mut words, 2, &format!("w{i}"), 1);
        }
        assert!(words.words.len() <= TERM_CHUNKS_KEPT);
        assert_eq!(get(&mut words, 2, "rust", 7), 7, "a full table starts over");
        get(&mut words, 2, "huge", TERM_IDS_KEPT as i64);
        assert_eq!(get(&mut words, 2, "rust", 8), 8, "so does a table holding too many ids");
        let _ = get;
        assert_eq!(reads, 5 + TERM_CHUNKS_KEPT);
    }

    #[test]
    fn the_rarest_words_within_the_budget_are_ranked_by_sqlite_and_always_one() {
        assert_eq!(ranked_words(&[10, 3_000, 6_000, 45_000], 10_000), 3);
        assert_eq!(ranked_words(&[10, 3_000, 7_000], 10_000), 2, "10,010 is over");
        assert_eq!(ranked_words(&[20_000, 45_000], 10_000), 1, "the rarest, however common");
        assert_eq!(ranked_words(&[1, 2], 10_000), 2);
    }

    #[test]
    fn ids_held_by_two_lists_or_more_with_which() {
        let (a, b, c) = ([1i64, 4, 7, 9], [2i64, 4, 9], [4i64, 5, 7]);
        assert_eq!(held_by_several(&[&a, &b, &c]), vec![(4, 0b111), (7, 0b101), (9, 0b011)]);
        assert!(held_by_several(&[&a]).is_empty());
    }

    #[test]
    fn both_runs_each_side_once_and_returns_each_result() {
        let here = std::thread::current().id();
        let (a, b) = both(|| (std::thread::current().id(), 1), || (std::thread::current().id(), 2));
        assert_eq!((a.0, a.1, b.1), (here, 1, 2));
        assert_ne!(b.0, here, "the second side runs on its own thread");
    }
}
