//! `qsearch index --repair`: mends what can be mended without the model, under the writer lock.
//! A database SQLite finds damaged is salvaged into a new one ([`crate::store::check::salvage`]);
//! rows that lost what they belong to are dropped and the keyword index is written again when it
//! disagrees ([`crate::store::WriteStore::mend_rows`]); the vector file is always written again
//! from SQLite's vectors. The sync that follows (the command goes on as `qsearch index`) reads
//! again the files whose rows were lost and embeds the chunks whose vectors were.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::store::check::{self, Mended, Salvage};
use crate::store::lock::{Role, WriterLock};
use crate::store::vectors::VectorIndex;
use crate::store::{DB_FILE, Store};

/// What the repair found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    pub dir: PathBuf,
    /// `PRAGMA quick_check`'s findings before the repair (none: the database was sound).
    pub database: Vec<String>,
    /// When the database was damaged: what could be read of it into a new one.
    pub salvage: Option<Salvage>,
    pub mended: Mended,
    /// The vector file written from SQLite's vectors, and the vectors in it (none without a
    /// model yet).
    pub vector_file: Option<(PathBuf, u64)>,
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "repair of the index at {}:", self.dir.display())?;
        match (&self.database[..], &self.salvage) {
            ([], _) => writeln!(f, "  database: sound (SQLite's quick_check)")?,
            (found, Some(s)) => writeln!(
                f,
                "  database: damaged ({}); the damaged file is kept at {}; a new one holds what could be read: \
                 {} folders, {} settings, {} vectors{}; the files are read again now",
                found.join("; "),
                s.kept_at.display(),
                s.roots,
                s.settings,
                s.vectors,
                if s.unreadable_rows { " (some rows were unreadable)" } else { "" }
            )?,
            (found, None) => writeln!(f, "  database: damaged ({})", found.join("; "))?,
        }
        let o = &self.mended.orphans;
        if o.total() == 0 {
            writeln!(f, "  rows: nothing orphaned")?;
        } else {
            writeln!(
                f,
                "  rows: dropped {} chunks of no document, {} keyword rows of no chunk, {} tags or dates of no \
                 document; {} chunks whose vector was gone will be embedded again",
                o.chunks_without_document,
                o.keyword_rows_without_chunk,
                o.tags_without_document,
                o.chunks_without_vector
            )?;
        }
        writeln!(
            f,
            "  keyword index: {}",
            if self.mended.keyword_index_rebuilt { "written again from the chunks" } else { "sound" }
        )?;
        match &self.vector_file {
            Some((path, n)) => {
                write!(f, "  vector file: written again from the database ({n} vectors): {}", path.display())
            }
            None => write!(f, "  vector file: none (nothing embedded yet)"),
        }
    }
}

/// Repairs the index in `dir` (see the module). An index written by a newer qsearch is refused
/// untouched.
pub fn repair(dir: &Path) -> Result<Repair> {
    let _lock = WriterLock::acquire(dir, Role::Index)?;
    if !dir.join(DB_FILE).exists() {
        anyhow::bail!("no index at {} to repair: run `qsearch index PATH`", dir.display());
    }
    // Before anything is written.
    refuse_newer(dir)?;
    let database = check::quick_check(dir)?;
    let salvage = if database.is_empty() { None } else { Some(check::salvage(dir)?) };
    let mut store = Store::open_write(dir)?;
    let mended = store.mend_rows()?;
    let vector_file = match store.fingerprint()? {
        Some(fp) => {
            let mut graph = VectorIndex::from_database(&store, fp.dims)?;
            graph.save(&store)?;
            crate::store::vectors::newest_path(dir).map(|p| (p, graph.len() as u64))
        }
        None => None,
    };
    Ok(Repair { dir: dir.to_path_buf(), database, salvage, mended, vector_file })
}

/// An index a newer qsearch wrote is left alone (a damaged one may still say its version).
fn refuse_newer(dir: &Path) -> Result<()> {
    let version = rusqlite::Connection::open_with_flags(dir.join(DB_FILE), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)));
    match version {
        Ok(v) if v as usize > crate::store::SCHEMA_VERSION => {
            Err(crate::store::Newer { dir: dir.to_path_buf(), schema: v as usize }.into())
        }
        _ => Ok(()),
    }
}
