//! The index's full checks (`qsearch doctor`) and the parts of its repair (`qsearch index
//! --repair`) that need only SQLite: SQLite's own `quick_check`, the keyword index (FTS5's
//! `integrity-check` and its rows against the chunks), rows that lost what they belong to, and
//! the vector graph against SQLite's vectors. A database SQLite finds damaged is salvaged: what can
//! still be read of its folders, settings and vectors goes into a new database (the damaged file
//! is kept beside it), and the next sync reads the files again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;

use super::vectors::{FileDamage, VectorIndex};
use super::{DB_FILE, Store, WriteStore};

/// What the full checks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// `PRAGMA quick_check`'s findings: empty when SQLite finds the database sound.
    pub database: Vec<String>,
    /// FTS5's `integrity-check`, when it failed.
    pub keyword_index: Option<String>,
    /// Rows of the keyword index, and chunks.
    pub keyword_rows: u64,
    pub chunks: u64,
    pub orphans: Orphans,
    /// The vector file loaded (and brought up to date) as a search would: what was wrong with
    /// it, the vectors its graph holds and the chunks SQLite has a vector for.
    pub vector_file: Option<PathBuf>,
    pub vector_damage: Option<FileDamage>,
    pub graph_vectors: u64,
    pub embedded_chunks: u64,
    /// The chunks with a vector as the database keeps count of them (what readers compare their
    /// graph with): equal to `embedded_chunks` unless the database was changed behind qsearch.
    pub embedded_count: u64,
}

/// Rows that lost what they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Orphans {
    /// Chunks whose document is gone.
    pub chunks_without_document: u64,
    /// Chunks marked embedded (`vec_seq` set) whose vector row is gone.
    pub chunks_without_vector: u64,
    /// Keyword rows of no chunk.
    pub keyword_rows_without_chunk: u64,
    /// Tags and dates of no document.
    pub tags_without_document: u64,
}

impl Orphans {
    pub fn total(&self) -> u64 {
        self.chunks_without_document
            + self.chunks_without_vector
            + self.keyword_rows_without_chunk
            + self.tags_without_document
    }
}

impl Integrity {
    /// What is wrong, in words; empty when nothing is.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.database.is_empty() {
            out.push(format!("the database is damaged: {}", self.database.join("; ")));
        }
        if let Some(e) = &self.keyword_index {
            out.push(format!("the keyword index is damaged: {e}"));
        } else if self.keyword_rows != self.chunks {
            out.push(format!("the keyword index holds {} rows for {} chunks", self.keyword_rows, self.chunks));
        }
        let o = &self.orphans;
        for (n, what) in [
            (o.chunks_without_document, "chunks of no document"),
            (o.chunks_without_vector, "chunks marked embedded whose vector is gone"),
            (o.keyword_rows_without_chunk, "keyword rows of no chunk"),
            (o.tags_without_document, "tags or dates of no document"),
        ] {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        }
        if self.embedded_count != self.embedded_chunks {
            out.push(format!(
                "the database counts {} chunks with a vector where {} have one",
                self.embedded_count, self.embedded_chunks
            ));
        }
        if let Some(d) = &self.vector_damage {
            let file = self.vector_file.as_ref().map_or(String::new(), |p| format!(" {}", p.display()));
            out.push(format!("the vector file{file} is damaged: {d}"));
        }
        out
    }

    pub fn is_ok(&self) -> bool {
        self.problems().is_empty()
    }
}

/// Runs the full checks on the index in `dir` (read only). An index SQLite cannot open at all
/// is an error, and so is one written by a newer qsearch.
pub fn check(dir: &Path) -> Result<Integrity> {
    let mut out = Integrity { database: quick_check(dir)?, ..Integrity::default() };
    if !out.database.is_empty() {
        // Counting rows of a damaged database says nothing more.
        return Ok(out);
    }
    let store = Store::open_read(dir)?;
    out.keyword_index = keyword_check(&store.conn);
    out.chunks = count(&store.conn, "SELECT count(*) FROM chunks")?;
    out.keyword_rows = count(&store.conn, "SELECT count(*) FROM chunks_fts")?;
    out.orphans = orphans(&store.conn)?;
    out.embedded_chunks = store.count_embedded_chunks()?;
    out.embedded_count = store.embedded_chunks()?;
    if let Some(fp) = store.fingerprint()? {
        let graph = VectorIndex::open_checked(&store, fp.dims)?;
        out.graph_vectors = graph.len() as u64;
        match graph.damage() {
            Some((path, damage)) => {
                out.vector_file = Some(path.clone());
                out.vector_damage = Some(damage.clone());
            }
            None => out.vector_file = super::vectors::newest_path(dir),
        }
    }
    Ok(out)
}

/// `PRAGMA quick_check` on the database in `dir`: its findings, none when it is sound. A file
/// that is no database is one finding.
pub fn quick_check(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        anyhow::bail!("no index at {}: run `qsearch index PATH` first", dir.display());
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("cannot open index {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let found = (|| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("PRAGMA quick_check(20)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    })();
    match found {
        Ok(lines) if lines == ["ok"] => Ok(Vec::new()),
        Ok(lines) => Ok(lines),
        Err(e) => match super::damage_in(&anyhow::Error::from(e)) {
            Some(what) => Ok(vec![what]),
            None => Err(anyhow::anyhow!("checking {}", path.display())),
        },
    }
}

/// FTS5's `integrity-check` of the keyword index (inside a transaction rolled back: it changes
/// nothing), or why it failed.
fn keyword_check(conn: &Connection) -> Option<String> {
    let checked = conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 0)", []);
    match checked {
        Ok(_) => None,
        // A read-only connection may not run it: a checked read of every term instead.
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ReadOnly => {
            count(conn, "SELECT count(*) FROM chunks_vocab").err().map(|e| format!("{e:#}"))
        }
        Err(e) => Some(e.to_string()),
    }
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
}

fn orphans(conn: &Connection) -> Result<Orphans> {
    Ok(Orphans {
        chunks_without_document: count(
            conn,
            "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)",
        )?,
        chunks_without_vector: count(
            conn,
            "SELECT count(*) FROM chunks c WHERE c.vec_seq IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.hash = c.hash)",
        )?,
        keyword_rows_without_chunk: count(
            conn,
            "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)",
        )?,
        tags_without_document: count(
            conn,
            "SELECT (SELECT count(*) FROM doc_tags WHERE doc_id NOT IN (SELECT id FROM documents))
                  + (SELECT count(*) FROM doc_dates WHERE doc_id NOT IN (SELECT id FROM documents))",
        )?,
    })
}

/// What [`WriteStore::mend_rows`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Mended {
    /// Rows that lost what they belong to, dropped (chunks marked embedded whose vector is gone
    /// are marked pending instead: they are embedded again).
    pub orphans: Orphans,
    /// The keyword index was written again from the chunks (it was damaged or disagreed).
    pub keyword_index_rebuilt: bool,
}

impl WriteStore {
    /// Drops rows that lost what they belong to, marks pending the chunks whose vector is gone,
    /// and writes the keyword index again when it is damaged or disagrees with the chunks.
    pub(crate) fn mend_rows(&mut self) -> Result<Mended> {
        let found = orphans(&self.store.conn)?;
        let tx = self.store.conn.transaction()?;
        tx.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents))",
            [],
        )?;
        tx.execute("DELETE FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)", [])?;
        tx.execute(
            "UPDATE chunks SET vec_seq = NULL WHERE vec_seq IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.hash = chunks.hash)",
            [],
        )?;
        tx.execute("UPDATE embedded_count SET n = (SELECT count(*) FROM chunks WHERE vec_seq IS NOT NULL)", [])?;
        tx.execute("DELETE FROM doc_tags WHERE doc_id NOT IN (SELECT id FROM documents)", [])?;
        tx.execute("DELETE FROM doc_dates WHERE doc_id NOT IN (SELECT id FROM documents)", [])?;
        // Vectors no chunk uses go at the next collection.
        super::write_meta(&tx, super::GARBAGE_DUE, "1")?;
        tx.commit()?;
        self.garbage_left = true;
        let keyword_rows = count(&self.store.conn, "SELECT count(*) FROM chunks_fts")?;
        let chunks = count(&self.store.conn, "SELECT count(*) FROM chunks")?;
        let strays =
            count(&self.store.conn, "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)")?;
        let rebuild = keyword_check(&self.store.conn).is_some() || keyword_rows != chunks || strays > 0;
        if rebuild {
            self.rebuild_keyword_index()?;
        }
        self.collect_garbage()?;
        Ok(Mended { orphans: found, keyword_index_rebuilt: rebuild })
    }
}

/// What could be read of a damaged database and written into a new one.
#[derive(Debug, Clone, Serialize)]
pub struct Salvage {
    /// Where the damaged database was kept.
    pub kept_at: PathBuf,
    pub roots: u64,
    pub settings: u64,
    pub vectors: u64,
    /// Rows that could not be read (their pages are damaged).
    pub unreadable_rows: bool,
}

/// Moves the damaged database in `dir` aside (`index.sqlite.damaged-<time>`, with its WAL) and
/// writes a new one with what could be read of its folders, settings (the fingerprint, the
/// model's folder and server) and vectors: the files are read again at the next sync, and every
/// chunk whose text had a vector gets it back without the model. The vector files go (their
/// chunk ids are the old database's). The caller holds the writer lock.
pub(crate) fn salvage(dir: &Path) -> Result<Salvage> {
    let path = dir.join(DB_FILE);
    let mut unreadable = false;
    let (roots, meta, vectors) = {
        // Read-write, so that SQLite reads the committed work in the WAL too.
        let conn = Connection::open(&path).with_context(|| format!("cannot open index {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let roots = read_rows(&conn, "SELECT rowid, path, display, added_at FROM roots", &mut unreadable, |r| {
            Ok((r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
        });
        let meta = read_rows(&conn, "SELECT rowid, key, value FROM meta", &mut unreadable, |r| {
            Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        });
        let vectors = read_rows(&conn, "SELECT rowid, hash, data FROM vectors", &mut unreadable, |r| {
            Ok((r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
        });
        (roots, meta, vectors)
    };
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let kept_at = dir.join(format!("{DB_FILE}.damaged-{stamp}"));
    std::fs::rename(&path, &kept_at).with_context(|| format!("moving the damaged {} aside", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = dir.join(format!("{DB_FILE}{suffix}"));
        if side.exists() {
            std::fs::rename(&side, dir.join(format!("{DB_FILE}.damaged-{stamp}{suffix}")))?;
        }
    }
    super::vectors::remove_files(dir)?;
    let mut store = Store::open_write(dir)?;
    let tx = store.store.conn.transaction()?;
    for (path, display, added_at) in &roots {
        tx.execute(
            "INSERT OR IGNORE INTO roots(path, display, added_at) VALUES (?1, ?2, ?3)",
            params![path, display, added_at],
        )?;
    }
    // The chunk ids and sequence numbers of the old database mean nothing in the new one.
    let settings: Vec<_> = meta.iter().filter(|(k, _)| !matches!(k.as_str(), "vec_seq" | "garbage_due")).collect();
    for (key, value) in &settings {
        super::write_meta(&tx, key, value)?;
    }
    for (hash, data) in &vectors {
        tx.execute("INSERT OR IGNORE INTO vectors(hash, data) VALUES (?1, ?2)", params![hash, data])?;
    }
    tx.commit()?;
    Ok(Salvage {
        kept_at,
        roots: roots.len() as u64,
        settings: settings.len() as u64,
        vectors: vectors.len() as u64,
        unreadable_rows: unreadable,
    })
}

/// Every row of `sql` (its first column the rowid) that can be read, in rowid order: a damaged
/// page loses its rows, and the reading goes on after them. `unreadable` is set when some were.
fn read_rows<T>(
    conn: &Connection,
    sql: &str,
    unreadable: &mut bool,
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let paged = format!("{sql} WHERE rowid > ?1 ORDER BY rowid LIMIT 256");
    let last: Option<i64> = conn
        .query_row(&format!("SELECT max(rowid) FROM ({sql})"), [], |r| r.get(0))
        .map_err(|_| *unreadable = true)
        .ok()
        .flatten();
    let mut out = Vec::new();
    let mut after = i64::MIN;
    let mut step = 1i64;
    let mut misses = 0;
    loop {
        let mut read = 0;
        let outcome = (|| -> rusqlite::Result<()> {
            let mut stmt = conn.prepare(&paged)?;
            let mut rows = stmt.query([after])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                out.push(row(r)?);
                after = id;
                read += 1;
            }
            Ok(())
        })();
        match outcome {
            Ok(()) if read == 0 => break,
            Ok(()) => {
                step = 1;
                misses = 0;
            }
            Err(_) => {
                *unreadable = true;
                misses += 1;
                // Past the damaged rows: further at each miss in a row.
                match last {
                    Some(last) if after < last && misses < 4_096 => {
                        after = if after == i64::MIN { 0 } else { after.saturating_add(step) };
                        step = (step * 2).min(1_024);
                    }
                    _ => break,
                }
            }
        }
    }
    out
}
