//! The embed thread: embeds the newest query text it is given with the session's warm model, for
//! as long as the search thread holds its handle. Loading the model is the session's.

use std::sync::Arc;
use std::sync::mpsc::Sender;

use super::slot::Slot;
use super::{Inbox, Sink, spawn_guarded};
use crate::session::Session;

/// The search thread's end. Dropping it lets the thread finish.
pub(super) struct EmbedHandle {
    slot: Arc<Slot<(u64, String)>>,
}

impl EmbedHandle {
    /// Asks for the vector of `text` by the model of `epoch` (the answer says which).
    pub fn request(&self, epoch: u64, text: &str) {
        self.slot.put((epoch, text.to_string()));
    }
}

impl Drop for EmbedHandle {
    fn drop(&mut self) {
        self.slot.close();
    }
}

pub(super) fn spawn(session: Arc<Session>, inbox: Sender<Inbox>, sink: Sink, log: tracing::Dispatch) -> EmbedHandle {
    let slot: Arc<Slot<(u64, String)>> = Arc::default();
    let jobs = slot.clone();
    spawn_guarded("qsearch-embed", sink, log, move || {
        while let Some((epoch, text)) = jobs.take() {
            let message = match session.model().query_vector(&text) {
                Ok(vector) => Inbox::Vector { epoch, text, vector },
                Err(why) => Inbox::EmbedFailed { epoch, why },
            };
            if inbox.send(message).is_err() {
                break;
            }
        }
    });
    EmbedHandle { slot }
}
