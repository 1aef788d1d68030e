//! Keeping the index fresh. The watcher first reconciles the index with the disk (the same code
//! path as `qsearch index`), then follows file-system events. Events are only a hint of *where*
//! to look: each batch (debounced) re-syncs the roots it touched, comparing size and mtime, so
//! creates, edits, deletes, renames, editors' save-by-rename, moved folders and changed ignore
//! files all end in the state a fresh index would have. Memory stays bounded in a burst: a batch
//! keeps only which roots were touched and a count.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode};
use notify::{RecursiveMode, Watcher};

use crate::indexer::{Report, Writer};
use crate::util::now_secs;

pub const STATE_FILE: &str = "watch.json";

#[derive(Debug, Clone)]
pub struct Options {
    /// Quiet time after the last event before a batch runs.
    pub debounce: Duration,
    /// A batch runs at the latest this long after its first event, even if events keep coming.
    pub max_delay: Duration,
    /// Polling interval when native events are unavailable.
    pub poll_interval: Duration,
    /// Poll even when native events are available (network file systems).
    pub force_poll: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            debounce: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            poll_interval: Duration::from_secs(2),
            force_poll: false,
        }
    }
}

/// What `qsearch status` shows about a running watcher (`watch.json` in the index directory).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub pid: u32,
    pub since: u64,
    /// "native" or "polling (why)".
    pub backend: String,
    /// The initial reconcile finished.
    pub ready: bool,
    pub last_event: Option<u64>,
    pub last_batch: Option<u64>,
    pub batches: u64,
    /// Events waiting for the next batch.
    pub queued: usize,
}

impl State {
    pub fn read(index_dir: &Path) -> Option<State> {
        serde_json::from_str(&std::fs::read_to_string(index_dir.join(STATE_FILE)).ok()?).ok()
    }

    fn write(&self, index_dir: &Path) -> Result<()> {
        let tmp = index_dir.join(".watch.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        std::fs::rename(tmp, index_dir.join(STATE_FILE))?;
        Ok(())
    }
}

/// Held only to keep the watcher running; dropping it stops the events.
#[allow(dead_code)]
enum Backend {
    Native(notify::RecommendedWatcher),
    Poll(notify::PollWatcher),
}

fn start_backend(
    roots: &[PathBuf],
    opts: &Options,
    tx: mpsc::Sender<notify::Result<notify::Event>>,
) -> Result<(Backend, String)> {
    let poll = |why: String, tx: mpsc::Sender<notify::Result<notify::Event>>| -> Result<(Backend, String)> {
        let config = notify::Config::default().with_poll_interval(opts.poll_interval);
        let mut w = notify::PollWatcher::new(tx, config).context("cannot start the polling watcher")?;
        for root in roots {
            w.watch(root, RecursiveMode::Recursive)?;
        }
        Ok((Backend::Poll(w), format!("polling every {:?} ({why})", opts.poll_interval)))
    };
    if opts.force_poll {
        return poll("asked for".into(), tx);
    }
    let native = (|| -> notify::Result<notify::RecommendedWatcher> {
        let mut w = notify::recommended_watcher(tx.clone())?;
        for root in roots {
            w.watch(root, RecursiveMode::Recursive)?;
        }
        Ok(w)
    })();
    match native {
        Ok(w) => Ok((Backend::Native(w), "native".into())),
        Err(e) => {
            let why = match e.kind {
                notify::ErrorKind::MaxFilesWatch => {
                    "the OS limit on watched folders was reached; raise fs.inotify.max_user_watches".to_string()
                }
                _ => format!("native events unavailable: {e}"),
            };
            tracing::warn!("{why}; falling back to polling");
            poll(why, tx)
        }
    }
}

/// Runs until `cancel` is set. `on_batch` hears each finished batch (the initial reconcile too).
pub fn run(
    writer: &mut Writer,
    roots: &[PathBuf],
    opts: &Options,
    cancel: &AtomicBool,
    on_batch: &mut dyn FnMut(&Report, &State),
) -> Result<()> {
    let index_dir = writer.dir().to_path_buf();
    let (tx, rx) = mpsc::channel();
    // Watch first, so nothing changed during the initial reconcile is missed.
    let (_backend, backend_name) = start_backend(roots, opts, tx)?;
    let mut state = State { pid: std::process::id(), since: now_secs(), backend: backend_name, ..State::default() };
    state.write(&index_dir)?;
    let report = writer.update(roots, &mut |_| {}, cancel)?;
    state.ready = true;
    state.last_batch = Some(now_secs());
    state.write(&index_dir)?;
    on_batch(&report, &state);

    let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while !cancel.load(Ordering::Relaxed) {
        // Idle: wake once a second (to notice a stop request); with changes pending, often.
        let wait = if first.is_some() { Duration::from_millis(20) } else { Duration::from_secs(1) };
        match rx.recv_timeout(wait) {
            Ok(event) => {
                for root in roots_touched(&event, roots, &index_dir) {
                    touched.insert(root);
                }
                if !touched.is_empty() {
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                    state.queued += 1;
                    state.last_event = Some(now_secs());
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => anyhow::bail!("the file watcher stopped"),
        }
        let due = first.is_some_and(|f| last.elapsed() >= opts.debounce || f.elapsed() >= opts.max_delay);
        if !due {
            continue;
        }
        let batch_roots: Vec<PathBuf> = std::mem::take(&mut touched).into_iter().collect();
        first = None;
        state.write(&index_dir)?;
        let report = writer.update(&batch_roots, &mut |_| {}, cancel)?;
        state.queued = 0;
        state.batches += 1;
        state.last_batch = Some(now_secs());
        state.write(&index_dir)?;
        on_batch(&report, &state);
    }
    writer.save()?;
    let _ = std::fs::remove_file(index_dir.join(STATE_FILE));
    Ok(())
}

/// The roots an event concerns; events inside the index directory itself are ignored (the
/// index may live under a watched folder).
fn roots_touched(event: &notify::Result<notify::Event>, roots: &[PathBuf], index_dir: &Path) -> Vec<PathBuf> {
    match event {
        // An error or an overflow: we do not know what changed, so look everywhere.
        Err(_) => roots.to_vec(),
        Ok(e) if e.need_rescan() => roots.to_vec(),
        // Opening or reading a file changes nothing, and the watcher's own scans cause them;
        // closing a file written to does count.
        Ok(e) if matches!(e.kind, notify::EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) => Vec::new(),
        Ok(e) => e
            .paths
            .iter()
            .filter(|p| !p.starts_with(index_dir))
            .filter_map(|p| roots.iter().find(|r| p.starts_with(r)).cloned())
            .collect(),
    }
}

/// Lowers this process's CPU priority, so embedding yields to interactive work.
pub fn lower_priority() {
    #[cfg(unix)]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}
