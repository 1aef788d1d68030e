//! One warm model per machine: a running `qsearch watch` (or `qsearch serve`) answers other
//! processes' queries for its index over a local socket, so a shell search, the TUI and the MCP
//! server do not each load the model (1-1.5 s and 0.5 GB for a full-size Qwen3) to embed one query.
//!
//! Only the query's embedding crosses the socket: the client searches with its own
//! [`Searcher`](crate::search::Searcher) (keyword and vector search are cheap) and asks the daemon
//! for the query vector ([`client::Client`], a [`Remote`](crate::session::model::Remote) of the
//! session's warm model). The daemon answers only for the index it serves, with the model whose
//! fingerprint the client read from that index; anything else (another model, a daemon loading,
//! gone or failing, a time-out) makes the client embed the query itself.
//!
//! The socket is private to the user: a folder of mode 0700 (`$XDG_RUNTIME_DIR/qsearch`, else
//! `sockets` in the data directory), the socket of mode 0600, and each connection's peer must be
//! the same user. One socket per index, named by a hash of the index's path; a lock file beside it
//! is held while a daemon serves, so a socket left by a killed one is told from a live one.
//!
//! Unix only: elsewhere searches load the model themselves.

#[cfg(unix)]
pub mod client;
pub mod protocol;
#[cfg(unix)]
pub mod server;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// How long a client waits for a query vector before embedding the query itself
/// (`QSEARCH_DAEMON_TIMEOUT_MS` moves it). A daemon shares its model with its watcher's writer,
/// so a query can wait for one batch of documents.
pub const QUERY_TIMEOUT_MS: u64 = 5_000;

/// The folders a daemon's socket may be in, the first the one a daemon binds in:
/// `$XDG_RUNTIME_DIR/qsearch` (when set), then `sockets` in the data directory.
pub fn socket_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        dirs.push(run.join("qsearch"));
    }
    dirs.push(crate::paths::data_dir().join("sockets"));
    dirs
}

/// The socket's file name for the index in `index_dir` (which must exist): a hash of its
/// canonical path, short enough for a socket's path limit (about 100 bytes).
pub fn socket_name(index_dir: &Path) -> Result<String> {
    let canonical = canonical_index(index_dir)?;
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    Ok(format!("{}.sock", &hash.to_hex()[..16]))
}

/// The index folder as the daemon and its clients both name it.
pub fn canonical_index(index_dir: &Path) -> Result<PathBuf> {
    index_dir.canonicalize().with_context(|| format!("no index folder at {}", index_dir.display()))
}

/// Where a daemon for `index_dir` binds its socket.
pub fn socket_path(index_dir: &Path) -> Result<PathBuf> {
    let dir = socket_dirs().into_iter().next().expect("the data directory is always a candidate");
    Ok(dir.join(socket_name(index_dir)?))
}

/// Whether searches of an index go through a daemon, as `status` and `doctor` say it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Probe {
    /// Not on this platform: searches load the model themselves.
    Unsupported,
    /// No daemon: where one would listen.
    None { socket: PathBuf },
    /// A socket left by a daemon that is gone (the next `serve` or `watch` replaces it).
    Stale { socket: PathBuf },
    /// A daemon answers there.
    Live { socket: PathBuf, info: protocol::Info },
    /// Something is there that does not answer as a daemon should.
    Unreachable { socket: PathBuf, error: String },
}

impl Probe {
    /// Looks for a daemon serving `index_dir`.
    pub fn of(index_dir: &Path) -> Probe {
        #[cfg(unix)]
        {
            client::probe(index_dir)
        }
        #[cfg(not(unix))]
        {
            let _ = index_dir;
            Probe::Unsupported
        }
    }

    /// In words, for `status` and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Probe::Unsupported => "not supported on this platform: each search loads the model itself".into(),
            Probe::None { socket } => format!(
                "none (a running `qsearch watch` or `qsearch serve` would listen at {}): each search loads the model itself",
                socket.display()
            ),
            Probe::Stale { socket } => format!(
                "none (a socket left by a stopped daemon at {}; the next `qsearch serve` or `watch` replaces it): \
                 each search loads the model itself",
                socket.display()
            ),
            Probe::Live { socket, info } => {
                let model = match &info.model {
                    crate::session::ModelState::Ready { model, device, .. } => format!("{model} ready on {device}"),
                    crate::session::ModelState::Loading { model, step } => format!("{model} loading ({step})"),
                    crate::session::ModelState::Failed { model, error } => format!("{model} failed: {error}"),
                    crate::session::ModelState::None => "no model (nothing embedded yet)".into(),
                };
                let through = if matches!(info.model, crate::session::ModelState::Ready { .. }) {
                    "searches embed their queries there"
                } else {
                    "searches load the model themselves until it is ready"
                };
                format!("qsearch {} (pid {}) at {}; model {model}: {through}", info.role, info.pid, socket.display())
            }
            Probe::Unreachable { socket, error } => {
                format!("{} does not answer ({error}): each search loads the model itself", socket.display())
            }
        }
    }
}
