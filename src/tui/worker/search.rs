//! The search thread: owns the searcher, answers the newest query (keyword results at once, the
//! full answer when its vector comes), and looks for changes in the index every so often.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use anyhow::Result;

use crate::search::{KeywordOnly, Query, Searcher};
use crate::store::{DB_FILE, lock};

use super::embed::{self, EmbedHandle};
use super::{Answer, Found, Inbox, IndexInfo, IndexState, ModelState, Reply, Setup, Sink, spawn_guarded};
use crate::search::answer::{answer, keyword_answer};

pub(super) fn spawn(setup: Setup, sink: Sink, inbox: Sender<Inbox>, rx: Receiver<Inbox>) {
    let log = setup.log.clone();
    let reply = sink.clone();
    spawn_guarded("qsearch-search", sink, log, move || SearchLoop::new(setup, reply, inbox).run(rx));
}

struct Job {
    generation: u64,
    query: Query,
    sent: Instant,
}

/// What the model can do for the current index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    /// No index, or an index without embeddings: keyword search only, for this reason.
    Unavailable(KeywordOnly),
    Loading,
    Ready,
    Failed,
}

struct SearchLoop {
    setup: Setup,
    sink: Sink,
    inbox: Sender<Inbox>,
    searcher: Option<Searcher>,
    /// The last index state sent, to send only changes.
    index: Option<String>,
    writer: Option<String>,
    vectors_error: Option<String>,
    job: Option<Job>,
    /// The current job's complete answer was sent.
    done: bool,
    /// The newest query vector: its text and the vector.
    vector: Option<(String, Vec<f32>)>,
    embed: Option<EmbedHandle>,
    /// The fingerprint a model was last loaded (or tried) for.
    tried: Option<crate::store::Fingerprint>,
    epochs: u64,
    model: Model,
    last_look: Instant,
}

impl SearchLoop {
    fn new(setup: Setup, sink: Sink, inbox: Sender<Inbox>) -> Self {
        SearchLoop {
            setup,
            sink,
            inbox,
            searcher: None,
            index: None,
            writer: None,
            vectors_error: None,
            job: None,
            done: true,
            vector: None,
            embed: None,
            tried: None,
            epochs: 0,
            model: Model::Unavailable(KeywordOnly::NoIndex),
            last_look: Instant::now(),
        }
    }

    fn run(mut self, rx: Receiver<Inbox>) {
        (self.sink)(Reply::Index(IndexState::Opening));
        self.open();
        loop {
            let wait = self.setup.refresh_every.saturating_sub(self.last_look.elapsed());
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    let mut newest = None;
                    for message in std::iter::once(first).chain(rx.try_iter()) {
                        match message {
                            Inbox::Search { generation, query, sent } => newest = Some(Job { generation, query, sent }),
                            Inbox::Stop => return,
                            other => self.on_model_message(other),
                        }
                    }
                    match newest {
                        Some(job) => {
                            self.job = Some(job);
                            self.answer_now();
                        }
                        None => self.advance(),
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.last_look.elapsed() >= self.setup.refresh_every {
                self.look();
                self.last_look = Instant::now();
            }
        }
    }

    fn on_model_message(&mut self, message: Inbox) {
        let current = self.embed.as_ref().map(|e| e.epoch);
        match message {
            Inbox::Vector { epoch, text, vector } if Some(epoch) == current => self.vector = Some((text, vector)),
            Inbox::ModelReady { epoch } if Some(epoch) == current => self.model = Model::Ready,
            Inbox::ModelFailed { epoch } if Some(epoch) == current => self.model = Model::Failed,
            Inbox::EmbedFailed { epoch, error } if Some(epoch) == current => {
                self.model = Model::Failed;
                (self.sink)(Reply::Model(ModelState::Failed(error)));
            }
            _ => {}
        }
    }

    /// Opens the index, or says why it cannot.
    fn open(&mut self) {
        let dir = self.setup.index_dir.clone();
        if !dir.join(DB_FILE).exists() {
            self.set_index("missing", IndexState::Missing);
            self.set_unavailable(KeywordOnly::NoIndex);
            return;
        }
        match Searcher::open(&dir) {
            Err(e) => {
                let why = format!("{e:#}");
                self.set_index(&why.clone(), IndexState::Broken(why));
            }
            Ok(searcher) => {
                self.searcher = Some(searcher);
                if let Some(job) = self.job.as_mut() {
                    job.sent = Instant::now();
                }
                self.vectors_error = None;
                self.send_index();
                self.ensure_model();
                self.answer_now();
                self.load_vectors();
            }
        }
    }

    /// Looks for changes: a writer committed, a watcher started or stopped.
    fn look(&mut self) {
        let Some(searcher) = self.searcher.as_mut() else { return self.open() };
        match searcher.refresh() {
            Ok(true) => {
                // The answer that follows measures this refresh, not the old keystroke.
                if let Some(job) = self.job.as_mut() {
                    job.sent = Instant::now();
                }
                self.send_index();
                self.ensure_model();
                self.load_vectors();
                self.answer_now();
            }
            Ok(false) => {
                if writer(&self.setup.index_dir) != self.writer {
                    self.send_index();
                }
            }
            Err(e) => {
                self.searcher = None;
                let why = format!("{e:#}");
                self.set_index(&why.clone(), IndexState::Broken(why));
            }
        }
    }

    fn send_index(&mut self) {
        let Some(searcher) = &self.searcher else { return };
        match searcher.stats() {
            Ok(stats) => {
                self.writer = writer(&self.setup.index_dir);
                let info = IndexInfo { stats, writer: self.writer.clone(), vectors_error: self.vectors_error.clone() };
                self.index = Some("ready".into());
                (self.sink)(Reply::Index(IndexState::Ready(info)));
            }
            Err(e) => {
                let why = format!("{e:#}");
                self.set_index(&why.clone(), IndexState::Broken(why));
            }
        }
    }

    /// Sends a state that is not `Ready` when it differs from the last one sent.
    fn set_index(&mut self, key: &str, state: IndexState) {
        if self.index.as_deref() != Some(key) {
            self.index = Some(key.to_string());
            (self.sink)(Reply::Index(state));
        }
    }

    fn set_unavailable(&mut self, why: KeywordOnly) {
        if self.model != Model::Unavailable(why.clone()) {
            self.model = Model::Unavailable(why.clone());
            self.embed = None;
            self.tried = None;
            (self.sink)(Reply::Model(ModelState::Waiting(why.to_string())));
        }
    }

    /// Starts loading the model the index's vectors were made with, unless it is already there.
    fn ensure_model(&mut self) {
        let Some(searcher) = &self.searcher else { return };
        let fingerprint = match searcher.fingerprint() {
            Ok(Some(fp)) => fp,
            Ok(None) => return self.set_unavailable(KeywordOnly::NoModel),
            Err(e) => return self.set_unavailable(KeywordOnly::ModelUnavailable(format!("{e:#}"))),
        };
        if self.tried.as_ref() == Some(&fingerprint) {
            return;
        }
        self.tried = Some(fingerprint.clone());
        self.embed = None;
        match (self.setup.model)(&fingerprint) {
            Err(e) => {
                self.model = Model::Failed;
                (self.sink)(Reply::Model(ModelState::Failed(format!("{e:#}"))));
            }
            Ok(settings) => {
                self.epochs += 1;
                self.vector = None;
                self.model = Model::Loading;
                let log = self.setup.log.clone();
                self.embed = Some(embed::spawn(settings, self.epochs, self.inbox.clone(), self.sink.clone(), log));
            }
        }
    }

    fn load_vectors(&mut self) {
        let Some(searcher) = self.searcher.as_mut() else { return };
        if let Err(e) = searcher.load_vectors() {
            self.vectors_error = Some(format!("{e:#}"));
            self.send_index();
        }
    }

    /// Answers the current job from scratch: completely when that needs no model, else with
    /// keyword results first and a request for the query's vector.
    fn answer_now(&mut self) {
        self.done = false;
        let (Some(searcher), Some(job)) = (&self.searcher, &self.job) else { return };
        let query = &job.query;
        if query.text.trim().is_empty() {
            return self.send(Ok(Found::default()), true);
        }
        if !query.mode.needs_vectors() {
            let found = answer(searcher, query, None);
            return self.send(found, true);
        }
        if let Some(vector) = self.vector_for(&query.text) {
            let found = answer(searcher, query, Some(vector));
            return self.send(found, true);
        }
        match (&self.model, &self.embed) {
            (Model::Loading | Model::Ready, Some(embed)) if self.vectors_error.is_none() => {
                embed.request(&query.text);
                let found = keyword_answer(searcher, query);
                self.send(found, false);
            }
            _ => self.send_keyword_only(),
        }
    }

    /// Finishes the current job if what it waited for came.
    fn advance(&mut self) {
        if self.done || self.searcher.is_none() {
            return;
        }
        let Some(job) = &self.job else { return };
        if let Some(vector) = self.vector_for(&job.query.text) {
            let found = answer(self.searcher.as_ref().expect("checked"), &job.query, Some(vector));
            self.send(found, true);
        } else if matches!(self.model, Model::Failed | Model::Unavailable(_)) {
            self.send_keyword_only();
        }
    }

    fn send_keyword_only(&mut self) {
        let (Some(searcher), Some(job)) = (&self.searcher, &self.job) else { return };
        let why = match (&self.model, &self.vectors_error) {
            (_, Some(_)) => KeywordOnly::VectorFileUnreadable,
            (Model::Unavailable(why), _) => why.clone(),
            _ => KeywordOnly::ModelUnavailable("the model could not be loaded".into()),
        };
        let found = keyword_answer(searcher, &job.query).map(|mut f| {
            f.results.semantic_note = Some(why);
            f
        });
        self.send(found, true);
    }

    fn vector_for(&self, text: &str) -> Option<&[f32]> {
        self.vector.as_ref().filter(|(t, _)| t == text).map(|(_, v)| v.as_slice())
    }

    fn send(&mut self, found: Result<Found>, complete: bool) {
        let Some(job) = &self.job else { return };
        self.done = complete;
        (self.sink)(Reply::Answer(Answer {
            generation: job.generation,
            complete,
            latency: job.sent.elapsed(),
            outcome: found.map_err(|e| format!("{e:#}")),
        }));
    }
}

/// The role of the writer holding the index, if any. The lock file is empty when none does, so
/// it is only locked (briefly, shared) when it names someone: never in a writer's way.
fn writer(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(lock::LOCK_FILE)).ok()?;
    if text.trim().is_empty() {
        return None;
    }
    lock::holder(dir).map(|h| h.role.to_string())
}
