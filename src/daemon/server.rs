//! The daemon's side: binds the index's socket (refusing when another daemon holds it, replacing
//! a socket a killed one left), then answers each connection on a thread of its own with the
//! warm model it was given. `qsearch serve` runs it in the foreground; `qsearch watch` beside its
//! watcher, with the model its writer embeds documents with (so a query waits at most for the
//! batch of documents the model is on).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::protocol::{self, Ask, Info, Reply, VERSION};
use crate::search::KeywordOnly;
use crate::session::WarmModel;
use crate::store::{Fingerprint, Store};

/// How long a connection may sit idle before the daemon closes it.
const IDLE: Duration = Duration::from_secs(30);

/// A bound socket, held until dropped: the lock that says a daemon serves the index, and the
/// socket file, removed on drop (when it is still the one bound here).
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, so a socket another daemon bound since is left alone.
    ino: (u64, u64),
    _lock: File,
}

/// Binds the socket of the index in `index_dir`. Refuses when another daemon serves it (its pid
/// in the error); a socket left by one that was killed is replaced.
pub fn bind(index_dir: &Path) -> Result<Server> {
    let path = super::socket_path(index_dir)?;
    let dir = path.parent().expect("a socket path has a folder");
    private_dir(dir)?;
    let lock_path = path.with_extension("lock");
    let mut lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode_0600()
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    // SAFETY: flock on a file descriptor this function owns.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut pid = String::new();
        let _ = lock.read_to_string(&mut pid);
        bail!(
            "a daemon (pid {}) already answers queries for this index at {}",
            pid.trim().parse::<u32>().map_or("unknown".into(), |p| p.to_string()),
            path.display()
        );
    }
    lock.set_len(0)?;
    write!(lock, "{}", std::process::id())?;
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!("replaced the socket a stopped daemon left at {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove the old socket {}", path.display())),
    }
    let listener = UnixListener::bind(&path).with_context(|| format!("cannot listen at {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let meta = std::fs::symlink_metadata(&path)?;
    Ok(Server { listener, path, ino: (meta.dev(), meta.ino()), _lock: lock })
}

trait Private {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Private for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// Makes `dir` (mode 0700) or checks it: ours, and no one else's to enter.
pub fn private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot make {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot make {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me {
        bail!("{} is not a folder of this user's: the daemon's socket is not put there", dir.display());
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl Server {
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// Answers connections until `stop` is set (looked at every quarter second).
    pub fn run(&self, served: Arc<Served>, stop: &AtomicBool) -> Result<()> {
        let fd = self.listener.as_raw_fd();
        while !stop.load(Ordering::Relaxed) {
            let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, 250) };
            if ready <= 0 {
                continue;
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let served = served.clone();
                    let spawned = std::thread::Builder::new()
                        .name("qsearch-daemon".into())
                        .spawn(move || served.connection(stream));
                    if let Err(e) = spawned {
                        tracing::warn!("daemon: cannot start a thread for a connection: {e}");
                    }
                }
                Err(e) => tracing::warn!("daemon: accept failed: {e}"),
            }
        }
        Ok(())
    }

    /// Runs the server on a thread of its own; the handle stops it (and removes the socket) when
    /// dropped.
    pub fn spawn(self, served: Arc<Served>) -> Result<Handle> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("qsearch-daemon-accept".into()).spawn(move || {
            if let Err(e) = self.run(served, &flag) {
                tracing::warn!("daemon stopped: {e:#}");
            }
        })?;
        Ok(Handle { stop, thread: Some(thread) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A server running on its own thread: dropping it stops it and removes its socket.
pub struct Handle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a daemon answers with: its index, its warm model, who it is.
pub struct Served {
    index: PathBuf,
    role: &'static str,
    since: u64,
    model: WarmModel,
    /// The index, read for its fingerprint at each query (an `index --rebuild` may change it).
    store: Mutex<Option<Store>>,
}

impl Served {
    /// `role`: "watch" or "serve". `model` is the warm model to embed queries with (the watcher's
    /// writer may share it).
    pub fn new(index_dir: &Path, role: &'static str, model: WarmModel) -> Result<Served> {
        Ok(Served {
            index: super::canonical_index(index_dir)?,
            role,
            since: crate::util::now_secs(),
            model,
            store: Mutex::new(None),
        })
    }

    pub fn model(&self) -> &WarmModel {
        &self.model
    }

    /// The index's fingerprint now.
    fn fingerprint(&self) -> Result<Option<Fingerprint>> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if store.is_none() {
            *store = Some(Store::open_read(&self.index)?);
        }
        let read = store.as_ref().expect("opened above").fingerprint();
        if read.is_err() {
            *store = None;
        }
        read
    }

    pub fn info(&self) -> Info {
        Info {
            v: VERSION,
            pid: std::process::id(),
            role: self.role.into(),
            index: self.index.clone(),
            since: self.since,
            fingerprint: self.fingerprint().ok().flatten(),
            task: self.model.plan().options.task.clone(),
            model: self.model.state(),
        }
    }

    /// One client: its asks, one answer a line, until it closes, goes quiet or is not this user.
    fn connection(&self, stream: UnixStream) {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        match peer_uid(&stream) {
            Some(uid) if uid == me => {}
            Some(uid) => {
                tracing::warn!("daemon: refused a connection from user {uid}");
                return;
            }
            None => {} // The socket's mode and its folder's keep others out.
        }
        let _ = stream.set_read_timeout(Some(IDLE));
        let _ = stream.set_write_timeout(Some(IDLE));
        let Ok(read_half) = stream.try_clone() else { return };
        let mut reader = BufReader::new(read_half);
        let mut out = stream;
        loop {
            let mut line = String::new();
            match (&mut reader).take(protocol::MAX_LINE).read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let too_long = !line.ends_with('\n') && line.len() as u64 >= protocol::MAX_LINE;
            let reply = if too_long { Reply::refused("the request is too long") } else { self.answer(&line) };
            let mut text = serde_json::to_string(&reply).expect("a reply serializes");
            text.push('\n');
            if out.write_all(text.as_bytes()).is_err() || too_long {
                return;
            }
        }
    }

    /// The reply to one line.
    pub fn answer(&self, line: &str) -> Reply {
        match protocol::version_of(line) {
            Some(v) if v == VERSION as u64 => {}
            Some(v) => return Reply::refused(format!("protocol version {v}: this daemon speaks {VERSION}")),
            None => return Reply::refused(format!("not a request of protocol version {VERSION}")),
        }
        match serde_json::from_str::<Ask>(line) {
            Err(e) => Reply::refused(format!("cannot read the request: {e}")),
            Ok(Ask::Info { .. }) => Reply::Info(self.info()),
            Ok(Ask::Embed { index, fingerprint, task, text, .. }) => self.embed(&index, &fingerprint, &task, &text),
        }
    }

    fn embed(&self, index: &Path, fp: &Fingerprint, task: &Option<String>, text: &str) -> Reply {
        if index.canonicalize().ok().as_deref() != Some(self.index.as_path()) {
            return Reply::refused(format!("this daemon serves {}, not {}", self.index.display(), index.display()));
        }
        if task != &self.model.plan().options.task {
            return Reply::refused(format!(
                "this daemon embeds queries with the instruction {:?}, not {task:?}",
                self.model.plan().options.task
            ));
        }
        let now = match self.fingerprint() {
            Ok(Some(now)) => now,
            Ok(None) => return Reply::refused("nothing is embedded in the index yet"),
            Err(e) => return Reply::refused(format!("cannot read the index: {e:#}")),
        };
        if &now != fp {
            return Reply::refused(format!("the index's vectors are {now}, not {fp}"));
        }
        // Loads the index's model in the background when it changed (an `index --rebuild`).
        self.model.ensure(&now);
        match self.model.query_vector(text) {
            Ok(vector) => Reply::vector(&vector),
            Err(KeywordOnly::ModelLoading) => Reply::refused("the daemon's model is loading"),
            Err(why) => Reply::refused(why.to_string()),
        }
    }
}

/// The connecting process's user, where the platform says it.
pub fn peer_uid(stream: &UnixStream) -> Option<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes of the sizes given.
        let got = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        (got == 0).then_some(cred.uid)
    }
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    ))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: `uid` and `gid` are valid for writes.
        let got = unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) };
        (got == 0).then_some(uid)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )))]
    {
        let _ = stream;
        None
    }
}
