//! The query session: what the CLI's `search`, the terminal UI and the MCP server share to
//! answer queries over one index. It owns the [`Searcher`] and the index's warm model
//! ([`model::WarmModel`], one loader and one [`ModelState`] for all three), answers with typed
//! hits and typed [`Note`]s (keyword results, and why, while the model loads or when it cannot),
//! gives each hit the context asked for ([`context`]), and reads the index's [`Status`].
//!
//! It takes plain inputs (an index folder, a model [`Plan`], default counts), never the
//! configuration: the binary turns its flags into those once.

pub mod context;
pub mod model;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Result, bail};

use std::time::Duration;

use crate::embed::load::Plan;
use crate::rerank::{self, Cost, Reranked, Reranker};
use crate::search::{Filter, KeywordOnly, Mode, Query, Results, Searcher};
use crate::store::Fingerprint;

pub use context::{Around, HitContext};
pub use model::{Listener, ModelState, Via, WarmModel};
pub use status::Status;

/// What a session is started with.
pub struct Setup {
    pub index_dir: PathBuf,
    /// How the index's model is chosen and loaded.
    pub model: Plan,
    /// What a request that names none gets.
    pub defaults: Defaults,
}

#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub k: usize,
    pub mode: Mode,
    pub per_doc: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { k: 10, mode: Mode::Hybrid, per_doc: 2 }
    }
}

/// One search, as any client asks it; what it leaves out is the session's default.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub text: String,
    pub k: Option<usize>,
    pub mode: Option<Mode>,
    pub filter: Filter,
    pub per_doc: Option<usize>,
    /// What to give with each hit besides its snippet.
    pub around: Around,
    /// Rerank the first hits (with the session's reranker, within its budget).
    pub rerank: bool,
}

/// Something a client shows beside the hits. Each has one wording, wherever it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Semantic or hybrid was asked for, and keyword results are all there is, for this reason.
    KeywordOnly(KeywordOnly),
    /// Chunks not embedded yet: semantic results cover only the rest.
    Pending(u64),
    /// The filter (in words) holds no indexed file: nothing was searched.
    NoFileMatches(String),
    /// Reranking was asked for and did not happen, and why: the first stage's order stands.
    NotReranked(String),
    /// No hit holds the query's quoted phrases (given in quotes): the hits shown are without them.
    PhrasesMissing(String),
    /// Nothing was found.
    NoResults,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::KeywordOnly(why) => write!(f, "{why}"),
            Note::Pending(n) => write!(f, "{n} chunks are not embedded yet: semantic results are partial"),
            Note::NoFileMatches(filter) => {
                write!(f, "no indexed file matches the filter ({filter}): nothing was searched")
            }
            Note::NotReranked(why) => write!(f, "not reranked ({why}): hits in first-stage order"),
            Note::PhrasesMissing(p) => write!(f, "nothing holds {p}: these hits are without the quoted words"),
            Note::NoResults => f.write_str("no results"),
        }
    }
}

impl serde::Serialize for Note {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A query answered: the hits, what to say about them, and each hit's context when asked for.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub query: String,
    pub mode: Mode,
    pub results: Results,
    pub notes: Vec<Note>,
    /// Per hit, in hit order: its context (None when none was asked for or it could not be read).
    pub context: Vec<Option<HitContext>>,
    /// What reranking did, when it did (boxed: an answer travels in the TUI's messages).
    pub reranked: Option<Box<Reranked>>,
}

impl Answer {
    /// The notes a client shows, in words.
    pub fn note_texts(&self) -> Vec<String> {
        self.notes.iter().map(ToString::to_string).collect()
    }
}

pub struct Session {
    dir: PathBuf,
    searcher: Mutex<Option<Searcher>>,
    model: WarmModel,
    defaults: Defaults,
    reranker: Mutex<Option<Rerank>>,
}

/// The session's reranker, what it was seen to cost, and the time it may take a query.
struct Rerank {
    reranker: Box<dyn Reranker>,
    cost: Cost,
    budget: Duration,
}

impl Session {
    /// A session over the index in `setup.index_dir`; nothing is opened or loaded until asked.
    /// `listener` hears every change of the model's state.
    /// Queries are embedded by the daemon while it serves the index's model, when the process
    /// asked for that ([`model::ask_remote_first`]).
    pub fn new(setup: Setup, listener: Option<Listener>) -> Session {
        let remote = model::remote_factory().and_then(|make| make(&setup.index_dir, &setup.model));
        Session {
            dir: setup.index_dir,
            searcher: Mutex::new(None),
            model: WarmModel::new(setup.model, listener).with_remote(remote),
            defaults: setup.defaults,
            reranker: Mutex::new(None),
        }
    }

    /// Gives the session a reranker, for requests that ask for one, with the time it may take
    /// a query.
    pub fn set_reranker(&self, reranker: Box<dyn Reranker>, budget: Duration) {
        *self.reranker.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Rerank { reranker, cost: Cost::default(), budget });
    }

    /// The session's reranker as named, when it has one.
    pub fn reranker(&self) -> Option<String> {
        self.reranker.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|r| r.reranker.id())
    }

    pub fn index_dir(&self) -> &Path {
        &self.dir
    }

    pub fn defaults(&self) -> Defaults {
        self.defaults
    }

    pub fn model(&self) -> &WarmModel {
        &self.model
    }

    /// Runs `f` on the searcher, opened on first use.
    pub fn with_searcher<T>(&self, f: impl FnOnce(&mut Searcher) -> Result<T>) -> Result<T> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(Searcher::open(&self.dir)?);
        }
        f(guard.as_mut().expect("opened above"))
    }

    fn lock(&self) -> MutexGuard<'_, Option<Searcher>> {
        self.searcher.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the index is open.
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Closes the index (it broke or went away); the next call opens it again.
    pub fn close(&self) {
        *self.lock() = None;
    }

    /// Picks up what writers committed since the last look; true when something changed.
    pub fn refresh(&self) -> Result<bool> {
        self.with_searcher(|s| s.refresh())
    }

    /// What the index's vectors were made with; `None` before anything was embedded.
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>> {
        self.with_searcher(|s| s.fingerprint())
    }

    /// Opens the index, loads its vector graph and starts loading its model, so that the first
    /// search does not wait for them. Returns the fingerprint (None: keyword search only).
    pub fn warm_up(&self) -> Result<Option<Fingerprint>> {
        let fp = self.with_searcher(|s| {
            let fp = s.fingerprint()?;
            if fp.is_some() {
                s.load_vectors()?;
            }
            Ok(fp)
        })?;
        match &fp {
            Some(fp) => self.model.ensure(fp),
            None => self.model.clear(),
        }
        Ok(fp)
    }

    /// The query a request asks, with the session's defaults filled in.
    pub fn query(&self, req: &Request) -> Query {
        Query {
            text: req.text.clone(),
            k: req.k.unwrap_or(self.defaults.k),
            mode: req.mode.unwrap_or(self.defaults.mode),
            filter: req.filter.clone(),
            per_doc: req.per_doc.unwrap_or(self.defaults.per_doc),
        }
    }

    /// Answers a request whole: the index refreshed, the query embedded by the warm model when
    /// it is ready (else keyword results and why), each hit's context when asked for. The model is
    /// never waited for here: [`WarmModel::load_now`] first when that is wanted.
    pub fn search(&self, req: &Request) -> Result<Answer> {
        if req.text.trim().is_empty() {
            bail!("the query is empty");
        }
        self.refresh()?;
        let query = self.query(req);
        let mut vector = None;
        let mut why = None;
        if query.mode.needs_vectors() {
            match self.fingerprint()? {
                None => why = Some(KeywordOnly::NoModel),
                Some(fp) => {
                    self.model.ensure(&fp);
                    match self.model.query_vector(&query.text) {
                        Ok(v) => vector = Some(v),
                        Err(reason) => why = Some(reason),
                    }
                }
            }
        }
        if vector.is_some() && self.with_searcher(|s| s.load_vectors()).is_err() {
            why = Some(KeywordOnly::VectorFileUnreadable);
            vector = None;
        }
        // The first stage is asked for as many hits as the reranker may take.
        let first_k = if req.rerank { self.rerank_k(query.k) } else { query.k };
        let mut answer = self.answer(&Query { k: first_k, ..query.clone() }, vector.as_deref(), req.around)?;
        if let Some(why) = why {
            answer.results.semantic_note = Some(why);
            answer.notes = notes(&answer.results, query.mode);
        }
        if req.rerank {
            self.rerank_answer(&query.text, &mut answer);
        }
        answer.results.hits.truncate(query.k);
        answer.context.truncate(query.k);
        Ok(answer)
    }

    /// How many first hits to ask for to rerank the first `k`: as many as the reranker may take.
    pub fn rerank_k(&self, k: usize) -> usize {
        match self.reranker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(r) => k.max(r.cost.fit(r.budget, rerank::MAX_CANDIDATES)),
            None => k,
        }
    }

    /// Reranks `answer`'s hits in place (their contexts follow them) with the session's reranker,
    /// within its budget; without a reranker, or when it fails, a note says why and the first
    /// order stands. [`Session::search`] does it when asked; the TUI when typing pauses.
    pub fn rerank_answer(&self, text: &str, answer: &mut Answer) {
        let mut guard = self.reranker.lock().unwrap_or_else(|p| p.into_inner());
        let Some(r) = guard.as_mut() else {
            answer.notes.push(Note::NotReranked("no reranker is set: see `qsearch search --help`".into()));
            return;
        };
        if answer.results.hits.is_empty() {
            return;
        }
        let before: Vec<i64> = answer.results.hits.iter().map(|h| h.chunk_id).collect();
        let hits = &mut answer.results.hits;
        match rerank::rerank(r.reranker.as_mut(), &mut r.cost, r.budget, text, hits) {
            Ok(done) => {
                // Contexts follow their hits.
                let mut context: std::collections::HashMap<i64, Option<HitContext>> =
                    before.into_iter().zip(answer.context.drain(..)).collect();
                answer.context = hits.iter().map(|h| context.remove(&h.chunk_id).flatten()).collect();
                answer.reranked = Some(Box::new(done));
            }
            Err(e) => answer.notes.push(Note::NotReranked(format!("{e:#}"))),
        }
    }

    /// The searcher's answer to `query` with `vector` (None: semantic and hybrid fall back to
    /// what words alone find), and each hit's context as asked. The TUI calls this once it has
    /// the vector; [`Session::search`] does it all.
    pub fn answer(&self, query: &Query, vector: Option<&[f32]>, around: Around) -> Result<Answer> {
        self.with_searcher(|s| {
            let results = s.search(query, vector)?;
            let context = context::of_hits(s, &results.hits, around);
            Ok(Answer {
                query: query.text.clone(),
                mode: query.mode,
                notes: notes(&results, query.mode),
                results,
                context,
                reranked: None,
            })
        })
    }

    /// The keyword results shown at once, while the query's embedding is on its way.
    pub fn keyword_answer(&self, query: &Query, around: Around) -> Result<Answer> {
        let mut answer = self.answer(&Query { mode: Mode::Keyword, ..query.clone() }, None, around)?;
        answer.mode = query.mode;
        Ok(answer)
    }

    /// The index's state and this session's model.
    pub fn status(&self) -> Result<Status> {
        self.with_searcher(|s| Status::read(s))
    }
}

/// What to say beside `results` of a query in `mode`.
fn notes(results: &Results, mode: Mode) -> Vec<Note> {
    let mut notes = Vec::new();
    if let Some(why) = &results.semantic_note {
        notes.push(Note::KeywordOnly(why.clone()));
    }
    if results.pending > 0 && mode.needs_vectors() {
        notes.push(Note::Pending(results.pending));
    }
    if let Some(phrases) = &results.phrases_missing {
        notes.push(Note::PhrasesMissing(phrases.clone()));
    }
    if let Some(filter) = &results.no_file_matches {
        notes.push(Note::NoFileMatches(filter.clone()));
    } else if results.hits.is_empty() {
        notes.push(Note::NoResults);
    }
    notes
}
