//! The client's side: asks the daemon of an index for query vectors, as the session's
//! [`Remote`]. Every failure is an error the session answers by loading its own model; nothing
//! here waits long (the socket is local, and each read has a time-out).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Probe;
use super::protocol::{self, Ask, Info, Reply, VERSION};
use crate::embed::load::Plan;
use crate::session::ModelState;
use crate::session::model::Remote;
use crate::store::Fingerprint;

/// How long `info` may take (the daemon answers it without the model).
const INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// The daemon of one index, as a session's [`Remote`].
pub struct Client {
    index: PathBuf,
    /// Where its socket may be, the first found to answer remembered.
    sockets: Vec<PathBuf>,
    found: Mutex<Option<PathBuf>>,
    task: Option<String>,
    timeout: Duration,
}

/// The [`Remote`] of `index_dir` for a session with `plan` (what the binary gives
/// [`ask_remote_first`](crate::session::model::ask_remote_first)).
pub fn remote(index_dir: &Path, plan: &Plan) -> Option<Arc<dyn Remote>> {
    Client::new(index_dir, plan).ok().map(|c| Arc::new(c) as Arc<dyn Remote>)
}

impl Client {
    pub fn new(index_dir: &Path, plan: &Plan) -> Result<Client> {
        let index = super::canonical_index(index_dir)?;
        let name = super::socket_name(&index)?;
        let timeout = std::env::var("QSEARCH_DAEMON_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(super::QUERY_TIMEOUT_MS);
        Ok(Client {
            index,
            sockets: super::socket_dirs().into_iter().map(|d| d.join(&name)).collect(),
            found: Mutex::new(None),
            task: plan.options.task.clone(),
            timeout: Duration::from_millis(timeout),
        })
    }

    /// The daemon's `info`, from the first socket that answers.
    pub fn info(&self) -> Result<(PathBuf, Info)> {
        let mut last = None;
        for socket in &self.sockets {
            match ask(socket, &Ask::Info { v: VERSION }, INFO_TIMEOUT) {
                Ok(Reply::Info(info)) => return Ok((socket.clone(), info)),
                Ok(other) => last = Some(anyhow::anyhow!("{}: {}", socket.display(), unexpected(&other))),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no socket to ask")))
    }

    /// Why the daemon that answered `info` cannot embed queries for `fp` (None: it can).
    fn refuses(&self, info: &Info, fp: &Fingerprint) -> Option<String> {
        if info.v != VERSION {
            return Some(format!("it speaks protocol {}, not {VERSION}", info.v));
        }
        if info.index != self.index {
            return Some(format!("it serves {}", info.index.display()));
        }
        if info.fingerprint.as_ref() != Some(fp) {
            return Some("its index's vectors are another model's".into());
        }
        if info.task != self.task {
            return Some(format!("it embeds with the instruction {:?}, not {:?}", info.task, self.task));
        }
        if !matches!(info.model, ModelState::Ready { .. }) {
            return Some("its model is not ready".into());
        }
        None
    }
}

impl Remote for Client {
    fn serves(&self, fp: &Fingerprint) -> Option<String> {
        match self.info() {
            Ok((socket, info)) => match self.refuses(&info, fp) {
                None => {
                    *self.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(socket);
                    Some(format!("qsearch {} (pid {})", info.role, info.pid))
                }
                Some(why) => {
                    tracing::debug!("the daemon at {} is not asked: {why}", socket.display());
                    None
                }
            },
            Err(e) => {
                tracing::debug!("no daemon: {e:#}");
                None
            }
        }
    }

    fn query_vector(&self, fp: &Fingerprint, text: &str) -> Result<Vec<f32>> {
        let socket = self.found.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let socket = socket.as_ref().unwrap_or(&self.sockets[0]);
        let embed = Ask::Embed {
            v: VERSION,
            index: self.index.clone(),
            fingerprint: fp.clone(),
            task: self.task.clone(),
            text: text.to_string(),
        };
        match ask(socket, &embed, self.timeout)? {
            Reply::Vector { dims, f32le, .. } if dims == fp.dims => protocol::decode_vector(dims, &f32le),
            Reply::Vector { dims, .. } => bail!("the daemon gave {dims} dimensions, the index has {}", fp.dims),
            Reply::Refused { why, .. } => bail!("the daemon refused: {why}"),
            other => bail!("{}", unexpected(&other)),
        }
    }
}

fn unexpected(reply: &Reply) -> String {
    format!("unexpected answer: {}", serde_json::to_string(reply).unwrap_or_default())
}

/// One ask over a fresh connection to `socket`, its answer within `timeout`.
pub fn ask(socket: &Path, ask: &Ask, timeout: Duration) -> Result<Reply> {
    let dir = socket.parent().context("a socket path has a folder")?;
    check_private(dir)?;
    let stream = UnixStream::connect(socket).with_context(|| format!("cannot connect to {}", socket.display()))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if let Some(uid) = super::server::peer_uid(&stream)
        && uid != me
    {
        bail!("{} is served by user {uid}, not this user", socket.display());
    }
    let mut line = serde_json::to_string(ask)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).context("cannot send to the daemon")?;
    let mut answer = String::new();
    let read = BufReader::new(&stream).read_line(&mut answer);
    match read {
        Ok(0) => bail!("the daemon closed the connection without an answer"),
        Ok(_) => {}
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            bail!("the daemon did not answer within {} ms", timeout.as_millis())
        }
        Err(e) => return Err(e).context("cannot read the daemon's answer"),
    }
    serde_json::from_str(&answer).with_context(|| format!("cannot read the daemon's answer {:?}", answer.trim_end()))
}

/// A socket's folder must be this user's alone: another's could hold a socket that lies.
fn check_private(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("no folder {}", dir.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        bail!("{} is not a private folder of this user's (mode {:o})", dir.display(), meta.mode() & 0o7777);
    }
    Ok(())
}

/// Whether a daemon serves `index_dir`, for `status` and `doctor`.
pub fn probe(index_dir: &Path) -> Probe {
    let Ok(client) = Client::new(index_dir, &Plan::default()) else {
        // No index folder yet: no daemon can serve it.
        let socket = super::socket_path(index_dir).unwrap_or_else(|_| super::socket_dirs().remove(0));
        return Probe::None { socket };
    };
    if let Ok((socket, info)) = client.info() {
        return Probe::Live { socket, info };
    }
    // None answered: a socket file there is stale (nothing listens) or unreachable.
    for socket in &client.sockets {
        if std::fs::symlink_metadata(socket).is_err() {
            continue;
        }
        return match ask(socket, &Ask::Info { v: VERSION }, INFO_TIMEOUT) {
            Err(e) if e.chain().any(is_refused) => Probe::Stale { socket: socket.clone() },
            Err(e) => Probe::Unreachable { socket: socket.clone(), error: format!("{e:#}") },
            Ok(other) => Probe::Unreachable { socket: socket.clone(), error: unexpected(&other) },
        };
    }
    Probe::None { socket: client.sockets[0].clone() }
}

fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
}
