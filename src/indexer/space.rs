//! A full disk, said plainly. SQLite says only "database or disk is full"; a writer that meets a
//! full disk (SQLite's `SQLITE_FULL`, `ENOSPC` from a file write) answers with [`DiskFull`]
//! instead: the index's folder and the disk it is on, the space free there, roughly what the run
//! still needs (the estimate of `estimate.rs`: text and keyword index twice the text, and per
//! chunk a vector in SQLite's pages, an f16 one in the graph and 300 bytes), and that nothing
//! was lost: every transaction is whole or absent, and a vector file is written beside the last
//! one and renamed, so the last committed state stands.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Writer;
use super::sync::Area;
use crate::scan;

/// The disk holding an index is full.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskFull {
    /// The index's folder.
    pub dir: PathBuf,
    /// Where the disk holding it is mounted.
    pub mount: PathBuf,
    /// Bytes free for this user there, once the run stopped.
    pub free: Option<u64>,
    /// Roughly the bytes the run still needs (the files left to read and the vectors left to
    /// attach, and a copy of the vector file while it is written again).
    pub needed: Option<u64>,
}

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the disk holding the index at {} (mounted at {}) is full",
            self.dir.display(),
            self.mount.display()
        )?;
        match self.free {
            Some(free) => write!(f, ": {} free", human_bytes(free))?,
            None => write!(f, ": free space unknown")?,
        }
        if let Some(needed) = self.needed {
            write!(f, ", and this run needs about {} more", human_bytes(needed))?;
        }
        write!(
            f,
            ".\nNothing was lost: what was indexed before stands (the last committed state). \
             Free some space on that disk (or index elsewhere with --index DIR) and run `qsearch index` again \
             to go on from there"
        )
    }
}

impl std::error::Error for DiskFull {}

impl DiskFull {
    /// The full disk under `dir`, as it is now, needing `needed` bytes.
    pub fn at(dir: &Path, needed: Option<u64>) -> DiskFull {
        DiskFull { dir: dir.to_path_buf(), mount: mount_point(dir), free: free_bytes(dir), needed }
    }
}

/// Whether `err` says a disk is full (SQLite's `SQLITE_FULL`, `ENOSPC` or `EDQUOT` from a write).
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        if c.is::<DiskFull>() {
            return true;
        }
        if let Some(rusqlite::Error::SqliteFailure(e, _)) = c.downcast_ref::<rusqlite::Error>() {
            return e.code == rusqlite::ErrorCode::DiskFull;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded
                || io.raw_os_error() == Some(libc::ENOSPC);
        }
        // usearch's own errors carry the OS's words.
        let text = c.to_string();
        text.contains("No space left on device") || text.contains("database or disk is full")
    })
}

/// Bytes free for this user on the disk holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a statvfs to fill.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// The folder the disk holding `dir` is mounted at: the highest ancestor on the same device.
fn mount_point(dir: &Path) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let Ok(dev) = std::fs::metadata(&dir).map(|m| m.dev()) else { return dir };
        let mut at = dir.clone();
        while let Some(parent) = at.parent() {
            if std::fs::metadata(parent).map(|m| m.dev()).ok() != Some(dev) {
                break;
            }
            at = parent.to_path_buf();
        }
        at
    }
    #[cfg(not(unix))]
    {
        dir.to_path_buf()
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        0..=999_999 => format!("{:.0} kB", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

impl Writer {
    /// `err` as [`DiskFull`] when it says the disk is full, with what the run over `areas` still
    /// needs; else as it is.
    pub(super) fn explain_disk_full(&self, err: anyhow::Error, areas: &[Area]) -> anyhow::Error {
        if !is_disk_full(&err) || err.chain().any(|c| c.is::<DiskFull>()) {
            return err;
        }
        DiskFull::at(self.dir(), self.space_needed(areas).ok()).into()
    }

    /// Roughly the bytes still needed to bring `areas` into the index: the files not indexed as
    /// they are now, the chunks waiting for a vector, and a copy of the vector file.
    fn space_needed(&self, areas: &[Area]) -> Result<u64> {
        let roots = self.store.roots()?;
        let mut text = 0u64;
        for Area { root, within } in areas {
            let scanned = scan::scan(root, &self.opts.scan, within.as_ref());
            let known = match roots.iter().find(|r| &r.path == root) {
                Some(r) => self.store.documents_of_root(r.id, within.as_ref())?,
                None => Default::default(),
            };
            for found in scanned.files {
                let state = known.get(&crate::util::path_bytes(&found.path));
                if state.is_none_or(|s| s.size != found.size || s.mtime_ns != found.mtime_ns) {
                    text += found.size;
                }
            }
        }
        let dims = self.embedder.dims() as u64;
        // About 4 bytes a token.
        let chunks = text / (self.opts.chunk.tokens.max(1) as u64 * 4) + 1 + self.store.pending_chunks()?;
        let graph = crate::store::vectors::newest_path(self.dir())
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        Ok(text * 2 + chunks * super::estimate::chunk_bytes(dims, self.store.page_size()?) + graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_os_full_disks_are_recognised_and_others_not() {
        let full = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        assert!(is_disk_full(&anyhow::Error::from(full).context("writing a batch")));
        assert!(is_disk_full(&anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ENOSPC))));
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert!(!is_disk_full(&anyhow::Error::from(busy)));
        assert!(!is_disk_full(&anyhow::anyhow!("something else")));
    }

    #[test]
    fn the_message_names_the_folder_the_space_and_that_nothing_was_lost() {
        let full = DiskFull { dir: "/idx".into(), mount: "/".into(), free: Some(12_000), needed: Some(3_400_000) };
        let text = full.to_string();
        assert!(text.contains("/idx") && text.contains("12 kB free") && text.contains("about 3.4 MB more"), "{text}");
        assert!(text.contains("Nothing was lost") && text.contains("run `qsearch index` again"), "{text}");
    }
}
