//! What the index holds and who is writing it: one reader for `qsearch status`, the TUI's
//! status line and the MCP `status` tool.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::search::Searcher;
use crate::store::Stats;
use crate::store::lock::{self, Holder, Role};
use crate::watch;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub index: PathBuf,
    pub stats: Stats,
    /// The process holding the writer lock, if any.
    pub writer: Option<Holder>,
    /// A running watcher's state.
    pub watcher: Option<watch::State>,
    /// The server the index's `openai:` model is asked (none for a local model).
    pub endpoint: Option<String>,
    /// Where the model last ran for a writer (`CPU`, `CUDA`, `CPU (CUDA unavailable: ...)`).
    pub device: Option<String>,
}

impl Status {
    pub fn read(searcher: &Searcher) -> Result<Status> {
        let dir = searcher.dir().to_path_buf();
        let stats = searcher.stats()?;
        let endpoint = match &stats.fingerprint {
            Some(fp) if fp.model_ref().is_served() => searcher.endpoint()?,
            _ => None,
        };
        let writer = writer(&dir);
        let watcher = writer.as_ref().filter(|h| h.role == Role::Watch).and_then(|_| watch::State::read(&dir));
        let device = searcher.device()?;
        Ok(Status { index: dir, stats, writer, watcher, endpoint, device })
    }
}

/// The writer holding the index, if any. The lock file is empty when none does, so it is only
/// locked (briefly, shared) when it names someone: never in a writer's way.
pub fn writer(dir: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(dir.join(lock::LOCK_FILE)).ok()?;
    if text.trim().is_empty() {
        return None;
    }
    lock::holder(dir)
}
