//! The embed thread: loads the model (reporting each step), warms it with one query, then embeds
//! the newest query text it is given, for as long as the search thread holds its handle.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::embed::load::{self, Settings};
use crate::models::catalog::DEFAULT_MODEL;
use crate::models::choice::Choice;
use crate::models::source::Event;

use super::slot::Slot;
use super::{Inbox, ModelState, Reply, Sink, spawn_guarded};
use crate::search::answer::embed_query;

/// The search thread's end. Dropping it lets the thread finish.
pub(super) struct EmbedHandle {
    slot: Arc<Slot<String>>,
    /// Tells this model's messages apart from those of one it replaced.
    pub epoch: u64,
}

impl EmbedHandle {
    pub fn request(&self, text: &str) {
        self.slot.put(text.to_string());
    }
}

impl Drop for EmbedHandle {
    fn drop(&mut self) {
        self.slot.close();
    }
}

pub(super) fn spawn(
    settings: Settings,
    epoch: u64,
    inbox: Sender<Inbox>,
    sink: Sink,
    log: tracing::Dispatch,
) -> EmbedHandle {
    let slot: Arc<Slot<String>> = Arc::default();
    let jobs = slot.clone();
    let reply = sink.clone();
    spawn_guarded("qsearch-embed", sink, log, move || run(&settings, epoch, &jobs, &inbox, &reply));
    EmbedHandle { slot, epoch }
}

fn run(settings: &Settings, epoch: u64, jobs: &Slot<String>, inbox: &Sender<Inbox>, sink: &Sink) {
    let id = match &settings.choice {
        Choice::Named(id) => id.clone(),
        Choice::Default => DEFAULT_MODEL.to_string(),
    };
    let loading = |step: String| sink(Reply::Model(ModelState::Loading { id: id.clone(), step }));
    loading("starting".into());
    let mut last_progress: Option<Instant> = None;
    let mut on = |event: Event| match event {
        Event::Message(m) => loading(m.to_string()),
        Event::Bytes { file, done, total } => {
            if last_progress.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                last_progress = Some(Instant::now());
                loading(match total {
                    Some(t) if t > 0 => format!("{file} {}%", done * 100 / t),
                    _ => format!("{file} {} MB", done / 1_000_000),
                });
            }
        }
    };
    let failed = |e: anyhow::Error| {
        sink(Reply::Model(ModelState::Failed(format!("{e:#}"))));
        let _ = inbox.send(Inbox::ModelFailed { epoch });
    };
    let loaded = match load::load(settings, &mut on) {
        Ok(loaded) => loaded,
        Err(e) => return failed(e),
    };
    let mut embedder = loaded.embedder;
    loading("warming up".into());
    if let Err(e) = embed_query(embedder.as_mut(), "warm up") {
        return failed(e);
    }
    sink(Reply::Model(ModelState::Ready {
        id: embedder.model_id().to_string(),
        device: embedder.device().to_string(),
        notes: loaded.notes.iter().map(ToString::to_string).collect(),
    }));
    let _ = inbox.send(Inbox::ModelReady { epoch });
    while let Some(text) = jobs.take() {
        let message = match embed_query(embedder.as_mut(), &text) {
            Ok(vector) => Inbox::Vector { epoch, text, vector },
            Err(e) => Inbox::EmbedFailed { epoch, error: format!("{e:#}") },
        };
        if inbox.send(message).is_err() {
            break;
        }
    }
}
