//! Keeping the index fresh. The watcher first reconciles the index with the disk (the same code
//! path as `qsearch index`), then follows file-system events. Events are only a hint of *where*
//! to look: each batch (debounced) re-syncs the paths it touched, comparing size and mtime, so
//! creates, edits, deletes, renames, editors' save-by-rename, moved folders and changed ignore
//! files all end in the state a fresh index would have. A changed ignore file re-syncs its
//! folder; an event that says events were lost, the whole root. Memory stays bounded in a
//! burst: past [`MAX_PATHS`] paths a root is re-synced whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode};
use notify::{RecursiveMode, Watcher};

use crate::indexer::{Area, Report, Writer};
use crate::scan::{IGNORE_FILE, Within};
use crate::util::now_secs;

pub const STATE_FILE: &str = "watch.json";

/// Paths a batch keeps per root; past that, the root is re-synced whole (a checkout of a
/// branch, say, where walking it is as cheap as looking at each path).
pub const MAX_PATHS: usize = 1_000;

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
    /// After the model failed (its server down, say), the texts left pending are tried again
    /// this long after, events or not; the wait doubles at each failure, up to 5 minutes.
    pub retry: Duration,
}

/// The longest wait between tries of a model that keeps failing.
const RETRY_MAX: Duration = Duration::from_secs(300);

impl Default for Options {
    fn default() -> Self {
        Options {
            debounce: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            poll_interval: Duration::from_secs(2),
            force_poll: false,
            retry: Duration::from_secs(10),
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
    /// Why the model failed the last batch (its texts wait as pending), until one succeeds.
    pub model_error: Option<String>,
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
    let mut retry = next_retry(&report, None, opts);
    state.model_error = report.embed_error.clone();
    state.write(&index_dir)?;
    on_batch(&report, &state);

    let mut touched = Touched::default();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while !cancel.load(Ordering::Relaxed) {
        // Idle: wake once a second (to notice a stop request); with changes pending, often.
        let wait = if first.is_some() { Duration::from_millis(20) } else { Duration::from_secs(1) };
        match rx.recv_timeout(wait) {
            Ok(event) => {
                for (root, place) in places_touched(&event, roots, &index_dir) {
                    touched.add(root, place);
                }
                if !touched.0.is_empty() {
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
        let due = first.is_some_and(|f| last.elapsed() >= opts.debounce || f.elapsed() >= opts.max_delay)
            || retry.is_some_and(|(at, _)| Instant::now() >= at);
        if !due {
            continue;
        }
        let areas: Vec<Area> =
            std::mem::take(&mut touched).0.into_iter().map(|(root, within)| Area { root, within }).collect();
        first = None;
        state.write(&index_dir)?;
        let report = writer.update_areas(&areas, &mut |_| {}, cancel)?;
        state.queued = 0;
        state.batches += 1;
        state.last_batch = Some(now_secs());
        retry = next_retry(&report, retry, opts);
        state.model_error = report.embed_error.clone();
        state.write(&index_dir)?;
        on_batch(&report, &state);
    }
    writer.save()?;
    let _ = std::fs::remove_file(index_dir.join(STATE_FILE));
    Ok(())
}

/// When to try the pending texts again, and the wait that led there: none after a batch the
/// model finished, else the last wait doubled (the first: `opts.retry`).
fn next_retry(report: &Report, last: Option<(Instant, Duration)>, opts: &Options) -> Option<(Instant, Duration)> {
    report.embed_error.as_ref()?;
    let wait = last.map_or(opts.retry, |(_, wait)| (wait * 2).min(RETRY_MAX));
    Some((Instant::now() + wait, wait))
}

/// Where a batch re-syncs: per root, some paths under it, or the whole root (None).
#[derive(Default)]
struct Touched(BTreeMap<PathBuf, Option<Within>>);

impl Touched {
    fn add(&mut self, root: PathBuf, place: Place) {
        let entry = self.0.entry(root).or_insert_with(|| Some(Within::default()));
        match place {
            Place::Whole => *entry = None,
            Place::At(path) => {
                if let Some(within) = entry {
                    within.insert(path);
                    if within.len() > MAX_PATHS {
                        *entry = None;
                    }
                }
            }
        }
    }
}

/// What under a root an event asks to look at again.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    Whole,
    /// A file or a folder (all under it).
    At(PathBuf),
}

/// The places an event concerns. Events inside the index directory (the index may live under a
/// watched folder) and inside `.git` (never read) are dropped, except a change to
/// `.git/info/exclude`, whose rules cover its repository.
fn places_touched(event: &notify::Result<notify::Event>, roots: &[PathBuf], index_dir: &Path) -> Vec<(PathBuf, Place)> {
    let everywhere = || roots.iter().map(|r| (r.clone(), Place::Whole)).collect();
    match event {
        // An error or an overflow: we do not know what changed, so look everywhere.
        Err(_) => everywhere(),
        Ok(e) if e.need_rescan() => everywhere(),
        // Opening or reading a file changes nothing, and the watcher's own scans cause them;
        // closing a file written to does count.
        Ok(e) if matches!(e.kind, notify::EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) => {
            Vec::new()
        }
        Ok(e) => e
            .paths
            .iter()
            .filter(|p| !p.starts_with(index_dir))
            .filter_map(|p| {
                let root = roots.iter().find(|r| p.starts_with(r))?;
                Some((root.clone(), place_of(root, p)?))
            })
            .collect(),
    }
}

/// What a change at `path` (under `root`) asks to look at again, if anything.
fn place_of(root: &Path, path: &Path) -> Option<Place> {
    let rel = path.strip_prefix(root).ok()?;
    if let Some(git) = rel.components().position(|c| c.as_os_str() == ".git") {
        // Git's own files are never read, but its exclude file is a set of ignore rules for the
        // repository's folder. A `.git` or `.git/info` that appears brings one along, whose own
        // event can come before the new folder is watched (`git init`, a repository moved in).
        let repo: PathBuf = root.join(rel.components().take(git).collect::<PathBuf>());
        let inside: PathBuf = rel.components().skip(git + 1).collect();
        let rules = [Path::new(""), Path::new("info"), Path::new("info/exclude")].contains(&inside.as_path());
        return rules.then(|| at(root, repo));
    }
    let name = path.file_name()?;
    if name == ".gitignore" || name == ".ignore" || name == IGNORE_FILE {
        // Its rules cover its folder.
        return Some(at(root, path.parent()?.to_path_buf()));
    }
    Some(at(root, path.to_path_buf()))
}

fn at(root: &Path, path: PathBuf) -> Place {
    if path == root { Place::Whole } else { Place::At(path) }
}

/// Lowers this process's CPU priority, so embedding yields to interactive work.
pub fn lower_priority() {
    #[cfg(unix)]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_asks_to_look_where_its_rules_reach() {
        let root = Path::new("/r");
        let place = |p: &str| place_of(root, Path::new(p));
        assert_eq!(place("/r/notes/a.md"), Some(Place::At("/r/notes/a.md".into())));
        assert_eq!(place("/r/notes/.gitignore"), Some(Place::At("/r/notes".into())));
        assert_eq!(place("/r/notes/.qsearchignore"), Some(Place::At("/r/notes".into())));
        assert_eq!(place("/r/.ignore"), Some(Place::Whole));
        assert_eq!(place("/r/.git/index"), None, "git's own files are never read");
        assert_eq!(place("/r/.git/info/exclude"), Some(Place::Whole));
        assert_eq!(place("/r/.git"), Some(Place::Whole), "a repository appearing brings its exclude file");
        assert_eq!(place("/r/repos/x/.git/info"), Some(Place::At("/r/repos/x".into())));
        assert_eq!(place("/r/.git/objects/info"), None);
        assert_eq!(place("/r/repos/x/.git/info/exclude"), Some(Place::At("/r/repos/x".into())));
        assert_eq!(place("/r"), Some(Place::Whole));
    }

    #[test]
    fn a_burst_past_the_cap_looks_at_the_whole_root() {
        let mut touched = Touched::default();
        let root = PathBuf::from("/r");
        for i in 0..MAX_PATHS {
            touched.add(root.clone(), Place::At(root.join(format!("f{i}.md"))));
        }
        assert_eq!(touched.0[&root].as_ref().map(Within::len), Some(MAX_PATHS));
        touched.add(root.clone(), Place::At(root.join("f0.md")));
        assert!(touched.0[&root].is_some(), "a path seen again is not counted twice");
        touched.add(root.clone(), Place::At(root.join("one-more.md")));
        assert!(touched.0[&root].is_none());
        touched.add(root.clone(), Place::At(root.join("after.md")));
        assert!(touched.0[&root].is_none(), "whole stays whole");
    }
}
