//! The search thread: answers the newest query through the session (keyword results at once, the
//! full answer when its vector comes), and looks for changes in the index every so often.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

use anyhow::Result;

use super::embed::{self, EmbedHandle};
use super::{Answer, Found, Inbox, IndexInfo, IndexState, ModelState, Reply, Setup, Sink, spawn_guarded};
use crate::search::{KeywordOnly, Query};
use crate::session::{Around, Session, status};
use crate::store::DB_FILE;

/// The preview shows each hit's neighbouring chunks.
const AROUND: Around = Around { lines: 0, neighbours: true };

pub(super) fn spawn(setup: Setup, session: Arc<Session>, sink: Sink, inbox: Sender<Inbox>, rx: Receiver<Inbox>) {
    let log = setup.log.clone();
    let reply = sink.clone();
    let embed = embed::spawn(session.clone(), inbox, sink.clone(), log.clone());
    spawn_guarded("qsearch-search", sink, log, move || SearchLoop::new(setup, session, reply, embed).run(rx));
}

struct Job {
    generation: u64,
    query: Query,
    sent: Instant,
}

struct SearchLoop {
    setup: Setup,
    session: Arc<Session>,
    sink: Sink,
    embed: EmbedHandle,
    /// The last index state sent, to send only changes.
    index: Option<String>,
    writer: Option<String>,
    vectors_error: Option<String>,
    /// Why there is no model to ask (no index, nothing embedded), when there is none.
    unavailable: Option<KeywordOnly>,
    job: Option<Job>,
    /// The current job's complete answer was sent.
    done: bool,
    /// The current job's vector was asked for.
    asked: bool,
    /// The newest query vector: its text and the vector.
    vector: Option<(String, Vec<f32>)>,
    /// Counts the model's loads: a vector of an earlier model is dropped.
    epoch: u64,
    last_look: Instant,
}

impl SearchLoop {
    fn new(setup: Setup, session: Arc<Session>, sink: Sink, embed: EmbedHandle) -> Self {
        SearchLoop {
            setup,
            session,
            sink,
            embed,
            index: None,
            writer: None,
            vectors_error: None,
            unavailable: Some(KeywordOnly::NoIndex),
            job: None,
            done: true,
            asked: false,
            vector: None,
            epoch: 0,
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
                    let mut rerank = None;
                    for message in std::iter::once(first).chain(rx.try_iter()) {
                        match message {
                            Inbox::Search { generation, query, sent } => {
                                newest = Some(Job { generation, query, sent });
                                rerank = None;
                            }
                            Inbox::Rerank { generation, query, sent } => rerank = Some(Job { generation, query, sent }),
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
                    if let Some(job) = rerank {
                        self.rerank(job);
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
        match message {
            Inbox::Vector { epoch, text, vector } if epoch == self.epoch => self.vector = Some((text, vector)),
            Inbox::EmbedFailed { epoch, why } if epoch == self.epoch => {
                let error = match why {
                    KeywordOnly::ModelUnavailable(e) => e,
                    other => other.to_string(),
                };
                let model = self.session.fingerprint().ok().flatten().map(|fp| fp.model_ref().to_string());
                (self.sink)(Reply::Model(ModelState::Failed { model: model.unwrap_or_default(), error }));
                self.unavailable = Some(KeywordOnly::ModelUnavailable("the model could not be loaded".into()));
            }
            Inbox::ModelChanged => {
                if matches!(self.session.model().state(), ModelState::Loading { .. }) {
                    self.epoch += 1;
                    self.vector = None;
                    self.asked = false;
                }
            }
            _ => {}
        }
    }

    /// Opens the index, or says why it cannot.
    fn open(&mut self) {
        if !self.setup.index_dir.join(DB_FILE).exists() {
            self.set_index("missing", IndexState::Missing);
            self.set_unavailable(KeywordOnly::NoIndex);
            return;
        }
        match self.session.refresh() {
            Err(e) => {
                self.session.close();
                let why = format!("{e:#}");
                self.set_index(&why.clone(), IndexState::Broken(why));
            }
            Ok(_) => {
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
        if !self.session.is_open() {
            return self.open();
        }
        match self.session.refresh() {
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
                if writer_role(&self.setup.index_dir) != self.writer {
                    self.send_index();
                }
            }
            Err(e) => {
                self.session.close();
                let why = format!("{e:#}");
                self.set_index(&why.clone(), IndexState::Broken(why));
            }
        }
    }

    fn send_index(&mut self) {
        match self.session.status() {
            Ok(status) => {
                self.writer = status.writer.map(|h| h.role.to_string());
                let info = IndexInfo {
                    stats: status.stats,
                    writer: self.writer.clone(),
                    vectors_error: self.vectors_error.clone(),
                };
                self.index = Some("ready".into());
                (self.sink)(Reply::Index(IndexState::Ready(Box::new(info))));
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
        if self.unavailable.as_ref() != Some(&why) {
            self.unavailable = Some(why);
            self.session.model().clear();
            (self.sink)(Reply::Model(ModelState::None));
        }
    }

    /// Starts loading the model the index's vectors were made with, unless it is already there.
    fn ensure_model(&mut self) {
        match self.session.fingerprint() {
            Ok(Some(fp)) => {
                self.unavailable = None;
                self.session.model().ensure(&fp);
            }
            Ok(None) => self.set_unavailable(KeywordOnly::NoModel),
            Err(e) => self.set_unavailable(KeywordOnly::ModelUnavailable(format!("{e:#}"))),
        }
    }

    fn load_vectors(&mut self) {
        if let Err(e) = self.session.with_searcher(|s| s.load_vectors()) {
            self.vectors_error = Some(format!("{e:#}"));
            self.send_index();
        }
    }

    /// Answers the current job from scratch: completely when that needs no model, else with
    /// keyword results first and a request for the query's vector.
    fn answer_now(&mut self) {
        self.done = false;
        self.asked = false;
        let Some(job) = &self.job else { return };
        if !self.session.is_open() {
            return;
        }
        let query = job.query.clone();
        if query.text.trim().is_empty() {
            return self.send(Ok(Found::default()), true);
        }
        if !query.mode.needs_vectors() {
            let found = self.session.answer(&query, None, AROUND);
            return self.send(found, true);
        }
        if let Some(vector) = self.vector_for(&query.text) {
            let found = self.session.answer(&query, Some(vector), AROUND);
            return self.send(found, true);
        }
        if self.model_can_answer() {
            self.ask(&query.text);
            let found = self.session.keyword_answer(&query, AROUND);
            self.send(found, false);
        } else {
            self.send_keyword_only();
        }
    }

    /// Whether a vector will come: the model is ready or loading, and the vectors can be read.
    fn model_can_answer(&self) -> bool {
        self.unavailable.is_none()
            && self.vectors_error.is_none()
            && matches!(self.session.model().state(), ModelState::Loading { .. } | ModelState::Ready { .. })
    }

    /// Asks the embed thread for the vector once the model is ready.
    fn ask(&mut self, text: &str) {
        if !self.asked && matches!(self.session.model().state(), ModelState::Ready { .. }) {
            self.asked = true;
            self.embed.request(self.epoch, text);
        }
    }

    /// Finishes the current job if what it waited for came.
    fn advance(&mut self) {
        if self.done || !self.session.is_open() {
            return;
        }
        let Some(job) = &self.job else { return };
        let query = job.query.clone();
        if let Some(vector) = self.vector_for(&query.text) {
            let found = self.session.answer(&query, Some(vector), AROUND);
            self.send(found, true);
        } else if self.model_can_answer() {
            self.ask(&query.text);
        } else {
            self.send_keyword_only();
        }
    }

    /// Answers the current query again, reranked, when it is still the current one and its
    /// complete answer was sent (a semantic one with the vector it had).
    fn rerank(&mut self, job: Job) {
        let current = self.job.as_ref().is_some_and(|j| j.generation == job.generation);
        if !current || !self.done || !self.session.is_open() {
            return;
        }
        let query = job.query;
        let vector = self.vector_for(&query.text).map(<[f32]>::to_vec);
        let first = Query { k: self.session.rerank_k(query.k), ..query.clone() };
        let found = self.session.answer(&first, vector.as_deref(), AROUND).map(|mut found| {
            self.session.rerank_answer(&query.text, &mut found);
            found.results.hits.truncate(query.k);
            found.context.truncate(query.k);
            found
        });
        self.job = Some(Job { sent: job.sent, ..self.job.take().expect("current") });
        self.send(found, true);
    }

    fn send_keyword_only(&mut self) {
        let Some(job) = &self.job else { return };
        let why = match (&self.unavailable, &self.vectors_error, self.session.model().state()) {
            (_, Some(_), _) => KeywordOnly::VectorFileUnreadable,
            (Some(why), _, _) => why.clone(),
            (None, None, ModelState::Failed { error, .. }) => KeywordOnly::ModelUnavailable(error),
            _ => KeywordOnly::ModelUnavailable("the model could not be loaded".into()),
        };
        let found = self.session.keyword_answer(&job.query, AROUND).map(|mut f| {
            f.results.semantic_note = Some(why.clone());
            f.notes.insert(0, crate::session::Note::KeywordOnly(why));
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

/// The role of the writer holding the index, if any.
fn writer_role(dir: &std::path::Path) -> Option<String> {
    status::writer(dir).map(|h| h.role.to_string())
}
