//! The background side of the UI. Two threads, so a keystroke never waits on the model:
//!
//! - the search thread answers queries through the query [`Session`] (the one the CLI and the
//!   MCP server use). For each query it answers with keyword results at once, then asks for the
//!   query's embedding and answers again with semantic or hybrid results when the vector comes
//!   back. Queries that piled up while it was busy are skipped: only the newest is computed.
//!   Every second or so it looks whether the index changed underneath (a watcher, `qsearch index`
//!   elsewhere) and answers the current query again.
//! - the embed thread embeds the newest query text it is given with the session's warm model
//!   ([`slot::Slot`]: a request replaces the one still waiting). The model itself is loaded by
//!   the session, in the background; its states come to the UI as they change.
//!
//! Every answer carries the generation number of the query it answers; the app drops those that
//! are not its current generation.

mod embed;
mod search;
pub mod slot;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use crate::embed::load::Plan;
use crate::search::{KeywordOnly, Query};
pub use crate::session::Answer as Found;
pub use crate::session::ModelState;
use crate::session::{self, Session};
use crate::store::Stats;

/// Where the worker's replies go.
pub type Sink = Arc<dyn Fn(Reply) + Send + Sync>;

pub struct Setup {
    pub index_dir: PathBuf,
    /// How the index's model is chosen and loaded.
    pub model: Plan,
    /// How often to look for changes in the index.
    pub refresh_every: Duration,
    /// Where the worker's log lines go (never the terminal the UI draws on).
    pub log: tracing::Dispatch,
}

/// A reranker for [`Worker::rerank`], and the time it may take a list.
pub type Reranking = (Box<dyn crate::rerank::Reranker>, Duration);

#[derive(Debug, Clone)]
pub enum Reply {
    Index(IndexState),
    Model(ModelState),
    Answer(Answer),
    /// A worker thread panicked; the UI stays up and says so.
    Crashed(String),
}

#[derive(Debug, Clone)]
pub enum IndexState {
    Opening,
    /// No index file yet.
    Missing,
    /// The index exists but cannot be read.
    Broken(String),
    /// Boxed: the index's figures would make every message the size of the largest.
    Ready(Box<IndexInfo>),
}

#[derive(Debug, Clone)]
pub struct IndexInfo {
    pub stats: Stats,
    /// The role of the process holding the writer lock: "watch" or "index".
    pub writer: Option<String>,
    /// Why semantic search cannot use the vector file, when it cannot.
    pub vectors_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub generation: u64,
    /// False for the keyword results shown while the query's embedding is computed.
    pub complete: bool,
    /// From the keystroke (the request) to this answer.
    pub latency: Duration,
    pub outcome: Result<Found, String>,
}

/// Messages into the search thread.
enum Inbox {
    Search {
        generation: u64,
        query: Query,
        sent: Instant,
    },
    /// The same query's results reranked (its complete answer was shown).
    Rerank {
        generation: u64,
        query: Query,
        sent: Instant,
    },
    /// The query vector of `text`, by the model of `epoch`.
    Vector {
        epoch: u64,
        text: String,
        vector: Vec<f32>,
    },
    EmbedFailed {
        epoch: u64,
        why: KeywordOnly,
    },
    /// The model's state changed (the session's listener).
    ModelChanged,
    Stop,
}

/// The UI's handle. Dropping it stops the threads (after the work in hand).
pub struct Worker {
    inbox: Sender<Inbox>,
}

impl Worker {
    pub fn spawn(setup: Setup, sink: Sink) -> Worker {
        Worker::spawn_reranking(setup, sink, None)
    }

    /// As [`Worker::spawn`], with a reranker for [`Worker::rerank`].
    pub fn spawn_reranking(setup: Setup, sink: Sink, reranker: Option<Reranking>) -> Worker {
        let (tx, rx) = channel();
        let listener: session::Listener = {
            let (sink, tx) = (sink.clone(), tx.clone());
            Arc::new(move |state: &ModelState| {
                sink(Reply::Model(state.clone()));
                let _ = tx.send(Inbox::ModelChanged);
            })
        };
        let session = Session::new(
            session::Setup {
                index_dir: setup.index_dir.clone(),
                model: setup.model.clone(),
                defaults: session::Defaults::default(),
            },
            Some(listener),
        );
        if let Some((reranker, budget)) = reranker {
            session.set_reranker(reranker, budget);
        }
        search::spawn(setup, Arc::new(session), sink, tx.clone(), rx);
        Worker { inbox: tx }
    }

    /// Asks for `query`'s results; answers carry `generation`.
    pub fn search(&self, generation: u64, query: Query) {
        let _ = self.inbox.send(Inbox::Search { generation, query, sent: Instant::now() });
    }

    /// Asks for `query`'s results reranked; answered (complete, carrying `generation`) unless a
    /// newer query came meanwhile.
    pub fn rerank(&self, generation: u64, query: Query) {
        let _ = self.inbox.send(Inbox::Rerank { generation, query, sent: Instant::now() });
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.inbox.send(Inbox::Stop);
    }
}

/// Runs `body` on a named thread; a panic there becomes a [`Reply::Crashed`], not a dead UI.
fn spawn_guarded(name: &str, sink: Sink, log: tracing::Dispatch, body: impl FnOnce() + Send + 'static) {
    let thread_name = name.to_string();
    let report = sink.clone();
    let spawned = std::thread::Builder::new().name(thread_name.clone()).spawn(move || {
        let _log = tracing::dispatcher::set_default(&log);
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            sink(Reply::Crashed(format!("{thread_name}: {}", panic_message(payload.as_ref()))));
        }
    });
    if let Err(e) = spawned {
        report(Reply::Crashed(format!("cannot start the {name} thread: {e}")));
    }
}

pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}
