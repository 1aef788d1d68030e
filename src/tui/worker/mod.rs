//! The background side of the UI. Two threads, so a keystroke never waits on the model:
//!
//! - the search thread owns the [`Searcher`](crate::search::Searcher). For each query it answers
//!   with keyword results at once, then asks for the query's embedding and answers again with
//!   semantic or hybrid results when the vector comes back. Queries that piled up while it was
//!   busy are skipped: only the newest is computed. Every second or so it looks whether the index
//!   changed underneath (a watcher, `qsearch index` elsewhere) and answers the current query again.
//! - the embed thread loads the model (its progress is shown) and then keeps it warm, embedding
//!   the newest query text it is given ([`slot::Slot`]: a request replaces the one still waiting).
//!
//! Every answer carries the generation number of the query it answers; the app drops those that
//! are not its current generation. The answers themselves come from [`crate::search::answer`].

mod embed;
mod search;
pub mod slot;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::embed::load::Settings;
use crate::search::Query;
pub use crate::search::answer::Found;
use crate::store::{Fingerprint, Stats};

/// How the model for an index is chosen (the binary's policy: flags, config, the index's own).
pub type ModelPlan = Arc<dyn Fn(&Fingerprint) -> Result<Settings> + Send + Sync>;

/// Where the worker's replies go.
pub type Sink = Arc<dyn Fn(Reply) + Send + Sync>;

pub struct Setup {
    pub index_dir: PathBuf,
    pub model: ModelPlan,
    /// How often to look for changes in the index.
    pub refresh_every: Duration,
    /// Where the worker's log lines go (never the terminal the UI draws on).
    pub log: tracing::Dispatch,
}

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
    Ready(IndexInfo),
}

#[derive(Debug, Clone)]
pub struct IndexInfo {
    pub stats: Stats,
    /// The role of the process holding the writer lock: "watch" or "index".
    pub writer: Option<String>,
    /// Why semantic search cannot use the vector file, when it cannot.
    pub vectors_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelState {
    /// Nothing to load yet, and why.
    Waiting(String),
    Loading {
        id: String,
        step: String,
    },
    Ready {
        id: String,
        device: String,
        notes: Vec<String>,
    },
    Failed(String),
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
    Search { generation: u64, query: Query, sent: Instant },
    Vector { epoch: u64, text: String, vector: Vec<f32> },
    EmbedFailed { epoch: u64, error: String },
    ModelReady { epoch: u64 },
    ModelFailed { epoch: u64 },
    Stop,
}

/// The UI's handle. Dropping it stops the threads (after the work in hand).
pub struct Worker {
    inbox: Sender<Inbox>,
}

impl Worker {
    pub fn spawn(setup: Setup, sink: Sink) -> Worker {
        let (tx, rx) = channel();
        search::spawn(setup, sink, tx.clone(), rx);
        Worker { inbox: tx }
    }

    /// Asks for `query`'s results; answers carry `generation`.
    pub fn search(&self, generation: u64, query: Query) {
        let _ = self.inbox.send(Inbox::Search { generation, query, sent: Instant::now() });
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
