//! One writer per index: an exclusive lock on `writer.lock`, held for the writer's lifetime and
//! released by the OS if the process dies. The file also says who holds it, for messages and
//! `qsearch status`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

pub const LOCK_FILE: &str = "writer.lock";

/// Why a process writes the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `qsearch index`.
    Index,
    /// `qsearch watch`: keeps the index fresh, so other writers are told to let it.
    Watch,
    /// `qsearch eval`, on its own index.
    Eval,
    /// `qsearch mcp`, refreshing the index when an agent asks (never while a watcher runs).
    Mcp,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Index => "index",
            Role::Watch => "watch",
            Role::Eval => "eval",
            Role::Mcp => "mcp",
        })
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub role: Role,
    pub since: u64,
}

pub struct WriterLock {
    file: File,
}

impl WriterLock {
    pub fn acquire(dir: &Path, role: Role) -> Result<WriterLock> {
        std::fs::create_dir_all(dir)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .with_context(|| format!("cannot open {}", dir.join(LOCK_FILE).display()))?;
        if let Err(e) = file.try_lock() {
            if let std::fs::TryLockError::Error(io) = e {
                return Err(io).context("cannot lock the index");
            }
            let holder = read_holder(&mut file);
            match holder {
                Some(h) if h.role == Role::Watch => bail!(
                    "a watcher (pid {}) owns this index and keeps it up to date; stop it first, or let it do the work",
                    h.pid
                ),
                Some(h) => {
                    bail!("another qsearch {} (pid {}) is writing this index; wait for it to finish", h.role, h.pid)
                }
                None => bail!("another qsearch process is writing this index"),
            }
        }
        let holder = Holder { pid: std::process::id(), role, since: crate::util::now_secs() };
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(serde_json::to_string(&holder)?.as_bytes())?;
        file.flush()?;
        Ok(WriterLock { file })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

/// Who holds the writer lock now, if anyone.
pub fn holder(dir: &Path) -> Option<Holder> {
    let mut file = File::options().read(true).write(true).open(dir.join(LOCK_FILE)).ok()?;
    if file.try_lock_shared().is_ok() {
        let _ = file.unlock();
        return None;
    }
    read_holder(&mut file)
}
