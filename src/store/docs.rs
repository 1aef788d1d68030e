//! Roots, documents and chunks in SQLite. Each write is one transaction, so a document is either
//! entirely its old version or entirely its new one, and a chunk has a vector exactly when its
//! `vec_seq` is set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::blob::{StoredBlob, blob_to_vec, vec_to_blob};
use super::{Store, WriteStore};
use crate::scan::Within;
use crate::text::chunk::{self, Chunk};
use crate::text::fts;
use crate::util::{now_secs, path_bytes, path_from_bytes};

#[derive(Debug, Clone)]
pub struct Root {
    pub id: i64,
    pub path: PathBuf,
    pub display: String,
}

/// What the store remembers of a file, to decide whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocState {
    pub id: i64,
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: String,
}

#[derive(Debug, Clone)]
pub struct NewDocument {
    pub root_id: i64,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: String,
    pub kind: &'static str,
    pub title: String,
    pub lossy: bool,
    /// From a note's frontmatter, normalised (`text::frontmatter`).
    pub tags: Vec<String>,
    /// The date a note's frontmatter gives (ns since the epoch): time filters take it over `mtime_ns`.
    pub stated_ns: Option<i64>,
}

/// One change to one document; a batch of them is one transaction.
#[derive(Debug, Clone)]
pub enum DocOp {
    /// Same content: only a new size and mtime.
    Touch { id: i64, size: u64, mtime_ns: i64 },
    /// The document goes, with its chunks.
    Delete { id: i64 },
    /// Replaces a document (or adds it) with its chunks.
    Write { doc: NewDocument, chunks: Vec<NewChunk> },
    /// A file read and not indexed, remembered so it is not read again while unchanged. A
    /// document at its path is not touched: a broken PDF's version indexed before stays.
    PassOver(PassedOver),
}

/// A file that was read and could not be indexed, with the size and mtime it had then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedOver {
    pub root_id: i64,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    /// It could not be read (an error), rather than being left out on purpose (no text).
    pub failed: bool,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct NewChunk {
    pub seq: usize,
    /// blake3 of [`NewChunk::embedded_text`]: chunks with the same one share a vector.
    pub hash: String,
    pub heading: String,
    pub start_byte: usize,
    pub end_byte: usize,
    pub start_line: usize,
    pub end_line: usize,
    pub text: String,
    /// `heading` and `text` as the keyword index takes them ([`fts::segment`]), made where the
    /// chunk is (a sync worker), not in the writer.
    pub keyword_heading: String,
    pub keyword_body: String,
}

impl NewChunk {
    /// A chunk of `text` under `heading`; its hash and keyword text are computed here.
    pub fn new(
        seq: usize,
        heading: String,
        start_byte: usize,
        end_byte: usize,
        start_line: usize,
        end_line: usize,
        text: String,
    ) -> NewChunk {
        let keyword_heading = fts::segment(&heading);
        let keyword_body = fts::segment(&text);
        let mut new = NewChunk {
            seq,
            hash: String::new(),
            heading,
            start_byte,
            end_byte,
            start_line,
            end_line,
            text,
            keyword_heading,
            keyword_body,
        };
        new.hash = blake3::hash(new.embedded_text().as_bytes()).to_hex().to_string();
        new
    }

    /// The text the embedder is given for this chunk.
    pub fn embedded_text(&self) -> String {
        chunk::embed_text(&self.heading, &self.text)
    }
}

impl From<Chunk> for NewChunk {
    fn from(c: Chunk) -> NewChunk {
        NewChunk::new(c.seq, c.heading_path(), c.start_byte, c.end_byte, c.start_line, c.end_line, c.text)
    }
}

/// A vector as SQLite holds it, attached to a chunk.
#[derive(Debug, Clone)]
pub struct StoredVector {
    pub chunk_id: i64,
    pub vec_seq: i64,
    pub vector: Vec<f32>,
}

/// Changes to mirror into the vector index after a write.
#[derive(Debug, Default)]
pub struct VectorChanges {
    pub removed: Vec<i64>,
    pub added: Vec<(i64, Vec<f32>)>,
    /// Texts (hashes) of the removed chunks: their vectors stay until
    /// [`Store::collect_garbage`], so a file renamed across two batches keeps its vectors.
    pub unused: Vec<String>,
}

/// A distinct chunk text still waiting for its vector.
#[derive(Debug, Clone)]
pub struct Pending {
    pub hash: String,
    pub text: String,
}

impl WriteStore {
    pub fn add_root(&self, path: &Path) -> Result<i64> {
        self.store.conn.execute(
            "INSERT INTO roots(path, display, added_at) VALUES (?1, ?2, ?3) ON CONFLICT(path) DO NOTHING",
            params![path_bytes(path), path.display().to_string(), now_secs() as i64],
        )?;
        Ok(self.store.conn.query_row("SELECT id FROM roots WHERE path = ?1", [path_bytes(path)], |r| r.get(0))?)
    }
    /// Forgets files passed over that are gone from disk (or now left out by the scan).
    pub fn forget_passed_over(&mut self, paths: &[&[u8]]) -> Result<()> {
        let tx = self.store.conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM passed_over WHERE path = ?1")?;
            for path in paths {
                delete.execute([path])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
    /// Applies document changes in one transaction (many small files commit together; each
    /// document is still all old or all new). Written chunks whose text already has a vector get
    /// it at once; the others are left pending.
    pub fn apply_batch(&mut self, ops: &[DocOp]) -> Result<VectorChanges> {
        let tx = self.store.conn.transaction()?;
        let mut changes = VectorChanges::default();
        for op in ops {
            match op {
                DocOp::Touch { id, size, mtime_ns } => {
                    tx.execute(
                        "UPDATE documents SET size = ?2, mtime_ns = ?3 WHERE id = ?1",
                        params![id, *size as i64, mtime_ns],
                    )?;
                    // Back to the content indexed before a failed read: that failure is over.
                    tx.execute(
                        "DELETE FROM passed_over WHERE path = (SELECT path FROM documents WHERE id = ?1)",
                        [id],
                    )?;
                }
                DocOp::Delete { id } => {
                    delete_chunks(&tx, *id, &mut changes)?;
                    tx.execute("DELETE FROM doc_tags WHERE doc_id = ?1", [id])?;
                    tx.execute("DELETE FROM doc_dates WHERE doc_id = ?1", [id])?;
                    tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
                }
                DocOp::Write { doc, chunks } => write_document(&tx, doc, chunks, &mut changes)?,
                DocOp::PassOver(file) => {
                    tx.execute(
                        "INSERT INTO passed_over(path, root_id, size, mtime_ns, failed, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(path) DO UPDATE SET root_id = ?2, size = ?3, mtime_ns = ?4, failed = ?5, reason = ?6",
                        params![path_bytes(&file.path), file.root_id, file.size as i64, file.mtime_ns, file.failed, file.reason],
                    )?;
                }
            }
        }
        if !changes.unused.is_empty() {
            super::write_meta(&tx, super::GARBAGE_DUE, "1")?;
        }
        tx.commit()?;
        self.unused.extend(changes.unused.iter().cloned());
        Ok(changes)
    }
    /// Stores vectors (each with the hash of its text) and attaches them to every chunk with
    /// that text, in one transaction.
    pub fn attach_vectors(&mut self, items: &[(String, Vec<f32>)]) -> Result<VectorChanges> {
        let tx = self.store.conn.transaction()?;
        let mut changes = VectorChanges::default();
        let mut seq = last_vec_seq(&tx)?;
        {
            let mut put = tx.prepare("INSERT OR REPLACE INTO vectors(hash, data) VALUES (?1, ?2)")?;
            let mut ids = tx.prepare("SELECT id FROM chunks WHERE hash = ?1 AND vec_seq IS NULL")?;
            let mut set = tx.prepare("UPDATE chunks SET vec_seq = ?2 WHERE id = ?1")?;
            for (hash, v) in items {
                let blob = vec_to_blob(v);
                put.execute(params![hash, blob])?;
                // The graph gets the vector as stored (rounded to f16), the graph a rebuild
                // from SQLite would give: an i8 graph quantizes it the same either way.
                let stored = blob_to_vec(&blob)?;
                let chunk_ids: Vec<i64> = ids.query_map([hash], |r| r.get(0))?.collect::<Result<_, _>>()?;
                for id in chunk_ids {
                    seq += 1;
                    set.execute(params![id, seq])?;
                    changes.added.push((id, stored.clone()));
                }
            }
        }
        set_last_vec_seq(&tx, seq)?;
        tx.commit()?;
        Ok(changes)
    }
    /// Once a vector file holding none of them is in place.
    pub(crate) fn clear_graph_removals(&self) -> Result<()> {
        self.store.conn.execute("DELETE FROM graph_removals", [])?;
        Ok(())
    }
    /// Drops vectors no chunk uses any more: those of the texts whose chunks this process
    /// removed, or every one when an earlier process stopped before collecting its own. A
    /// pass over every vector took 0.5 s at each watcher batch on 250,000 of them.
    pub fn collect_garbage(&mut self) -> Result<usize> {
        let tx = self.store.conn.transaction()?;
        let collected = if self.garbage_left || self.unused.len() > 100_000 {
            tx.execute("DELETE FROM vectors WHERE hash NOT IN (SELECT hash FROM chunks)", [])?
        } else {
            let mut delete = tx.prepare_cached(
                "DELETE FROM vectors WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM chunks WHERE hash = ?1)",
            )?;
            let mut n = 0;
            for hash in &self.unused {
                n += delete.execute([hash])?;
            }
            n
        };
        tx.execute("DELETE FROM meta WHERE key = ?1", [super::GARBAGE_DUE])?;
        tx.commit()?;
        self.unused.clear();
        self.garbage_left = false;
        Ok(collected)
    }
}

impl Store {
    pub fn roots(&self) -> Result<Vec<Root>> {
        let mut stmt = self.conn.prepare("SELECT id, path, display FROM roots ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Root { id: r.get(0)?, path: path_from_bytes(&r.get::<_, Vec<u8>>(1)?), display: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every document under a root (or only at and under `within`'s paths), by raw path.
    pub fn documents_of_root(&self, root_id: i64, within: Option<&Within>) -> Result<HashMap<Vec<u8>, DocState>> {
        let sql =
            "SELECT path, id, size, mtime_ns, hash FROM documents WHERE root_id = ?1 AND path >= ?2 AND path < ?3";
        self.rows_within(sql, root_id, within, |r| {
            Ok(DocState { id: r.get(1)?, size: r.get::<_, i64>(2)? as u64, mtime_ns: r.get(3)?, hash: r.get(4)? })
        })
    }

    /// Runs `sql` (its first column the path; ?1 the root, ?2..?3 a range of paths) over the
    /// whole root, or over the ranges that hold `within`'s paths, keeping the rows at or under them.
    fn rows_within<T>(
        &self,
        sql: &str,
        root_id: i64,
        within: Option<&Within>,
        row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> Result<HashMap<Vec<u8>, T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut out = HashMap::new();
        let ranges: Vec<(Vec<u8>, Vec<u8>)> = match within {
            None => vec![(Vec::new(), vec![0xff; 8])],
            Some(w) => w.paths().map(path_range).collect(),
        };
        for (from, to) in ranges {
            let mut rows = stmt.query(params![root_id, from, to])?;
            while let Some(r) = rows.next()? {
                let path: Vec<u8> = r.get(0)?;
                if within.is_none_or(|w| w.holds(&path_from_bytes(&path))) {
                    out.insert(path, row(r)?);
                }
            }
        }
        Ok(out)
    }

    /// Every file under a root (or `within`'s paths) that was read and not indexed, by raw path.
    pub fn passed_over_of_root(&self, root_id: i64, within: Option<&Within>) -> Result<HashMap<Vec<u8>, PassedOver>> {
        let sql = "SELECT path, size, mtime_ns, failed, reason FROM passed_over WHERE root_id = ?1 AND path >= ?2 AND path < ?3";
        self.rows_within(sql, root_id, within, |r| {
            Ok(PassedOver {
                root_id,
                path: path_from_bytes(&r.get::<_, Vec<u8>>(0)?),
                size: r.get::<_, i64>(1)? as u64,
                mtime_ns: r.get(2)?,
                failed: r.get(3)?,
                reason: r.get(4)?,
            })
        })
    }
}

/// Replaces a document (or adds it) with its chunks, inside `tx`.
fn write_document(
    tx: &rusqlite::Transaction,
    doc: &NewDocument,
    chunks: &[NewChunk],
    changes: &mut VectorChanges,
) -> Result<()> {
    {
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM documents WHERE path = ?1", [path_bytes(&doc.path)], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            delete_chunks(tx, id, changes)?;
            tx.execute("DELETE FROM doc_tags WHERE doc_id = ?1", [id])?;
            tx.execute("DELETE FROM doc_dates WHERE doc_id = ?1", [id])?;
            tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
        }
        tx.execute("DELETE FROM passed_over WHERE path = ?1", [path_bytes(&doc.path)])?;
        tx.execute(
            "INSERT INTO documents(root_id, path, display, size, mtime_ns, hash, kind, title, lossy, indexed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                doc.root_id,
                path_bytes(&doc.path),
                doc.path.display().to_string(),
                doc.size as i64,
                doc.mtime_ns,
                doc.hash,
                doc.kind,
                doc.title,
                doc.lossy,
                now_secs() as i64
            ],
        )?;
        let doc_id = tx.last_insert_rowid();
        if let Some(ns) = doc.stated_ns {
            tx.execute("INSERT INTO doc_dates(doc_id, stated_ns) VALUES (?1, ?2)", params![doc_id, ns])?;
        }
        let mut tag = tx.prepare_cached("INSERT OR IGNORE INTO doc_tags(tag, doc_id) VALUES (?1, ?2)")?;
        for t in &doc.tags {
            tag.execute(params![t, doc_id])?;
        }
        let first = last_vec_seq(tx)?;
        let mut seq = first;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO chunks(doc_id, seq, hash, heading, start_byte, end_byte, start_line, end_line, text, vec_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut fts =
                tx.prepare_cached("INSERT INTO chunks_fts(rowid, heading, body, path) VALUES (?1, ?2, ?3, ?4)")?;
            let mut vector = tx.prepare_cached("SELECT data FROM vectors WHERE hash = ?1")?;
            let path_words = path_words(&doc.path.display().to_string());
            for c in chunks {
                let existing: Option<StoredBlob> = vector.query_row([&c.hash], |r| r.get(0)).optional()?;
                let vec_seq = existing.as_ref().map(|_| {
                    seq += 1;
                    seq
                });
                insert.execute(params![
                    doc_id,
                    c.seq as i64,
                    c.hash,
                    c.heading,
                    c.start_byte as i64,
                    c.end_byte as i64,
                    c.start_line as i64,
                    c.end_line as i64,
                    c.text,
                    vec_seq
                ])?;
                let chunk_id = tx.last_insert_rowid();
                fts.execute(params![chunk_id, c.keyword_heading, c.keyword_body, &path_words])?;
                if let Some(StoredBlob(v)) = existing {
                    changes.added.push((chunk_id, v));
                }
            }
        }
        if seq > first {
            set_last_vec_seq(tx, seq)?;
        }
    }
    Ok(())
}

/// A document's path as the keyword index takes it: its parts as words.
fn path_words(display: &str) -> String {
    fts::segment(&display.replace(['/', '\\', '.', '-'], " "))
}

impl WriteStore {
    /// Writes the keyword index again from the chunks as stored (it is contentless: FTS5's own
    /// `rebuild` cannot), in one transaction; returns the chunks written.
    pub(crate) fn rebuild_keyword_index(&mut self) -> Result<u64> {
        let tx = self.store.conn.transaction()?;
        tx.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('delete-all')", [])?;
        let mut n = 0;
        {
            let mut read = tx.prepare(
                "SELECT c.id, c.heading, c.text, d.display FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id",
            )?;
            let mut insert =
                tx.prepare("INSERT INTO chunks_fts(rowid, heading, body, path) VALUES (?1, ?2, ?3, ?4)")?;
            let mut rows = read.query([])?;
            while let Some(r) = rows.next()? {
                let (id, heading, text, display): (i64, String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                insert.execute(params![id, fts::segment(&heading), fts::segment(&text), path_words(&display)])?;
                n += 1;
            }
        }
        tx.commit()?;
        Ok(n)
    }
}

impl Store {
    /// Distinct chunk texts without a vector, with the text to embed (context included).
    /// Up to `limit` distinct chunk texts without a vector among the chunks after id `after`, in
    /// id order, and the last chunk id looked at (the cursor for the next call). Texts already
    /// seen before the cursor are left out: their vector is on its way, and attaching it
    /// serves every chunk with that text.
    pub fn pending_after(&self, after: i64, limit: usize) -> Result<(Vec<Pending>, i64)> {
        // Uses the vec_seq index: its NULL entries are ordered by id.
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, hash, heading, text FROM chunks WHERE vec_seq IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query([after, (limit * 4) as i64])?;
        let mut out: Vec<Pending> = Vec::new();
        let mut last = after;
        let mut seen = std::collections::HashSet::new();
        while let Some(r) = rows.next()? {
            if out.len() == limit {
                break;
            }
            last = r.get(0)?;
            let hash: String = r.get(1)?;
            if seen.insert(hash.clone()) {
                out.push(Pending { hash, text: chunk::embed_text(&r.get::<_, String>(2)?, &r.get::<_, String>(3)?) });
            }
        }
        Ok((out, last))
    }

    /// Bytes of chunk text still waiting for vectors (for time estimates).
    pub fn pending_bytes(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM chunks WHERE vec_seq IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Distinct chunk texts waiting for a vector (what the embedder will compute).
    pub fn pending_texts(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(DISTINCT hash) FROM chunks WHERE vec_seq IS NULL", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// The database's page size in bytes.
    pub fn page_size(&self) -> Result<u64> {
        Ok(self.conn.pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0))? as u64)
    }

    /// Chunks without a vector yet (what semantic search cannot find).
    pub fn pending_chunks(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM chunks WHERE vec_seq IS NULL", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Vectors attached after `seq`, in order: what a vector file saved at `seq` lacks.
    pub fn vectors_after(&self, seq: i64) -> Result<Vec<StoredVector>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, c.vec_seq, v.data FROM chunks c JOIN vectors v ON v.hash = c.hash
             WHERE c.vec_seq > ?1 ORDER BY c.vec_seq",
        )?;
        let rows = stmt.query_map([seq], |r| {
            Ok(StoredVector { chunk_id: r.get(0)?, vec_seq: r.get(1)?, vector: r.get::<_, StoredBlob>(2)?.0 })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Chunks removed since the vector file was last saved, with the number their vector had
    /// (none for a row from before migration 0012): the file holds those numbered up to its own.
    pub fn graph_removals(&self) -> Result<Vec<Removal>> {
        if !self.has_table("graph_removals")? {
            return Ok(Vec::new());
        }
        let numbered: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('graph_removals') WHERE name = 'vec_seq'",
            [],
            |r| r.get(0),
        )?;
        let sql = if numbered {
            "SELECT chunk_id, vec_seq FROM graph_removals"
        } else {
            "SELECT chunk_id, NULL FROM graph_removals"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| Ok(Removal { chunk_id: r.get(0)?, vec_seq: r.get(1)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last `vec_seq` given, to a chunk that may since be gone: a vector file named after it
    /// holds every vector attached up to it.
    pub fn max_vec_seq(&self) -> Result<i64> {
        last_vec_seq(&self.conn)
    }

    /// The chunks with their vector attached, as the triggers of migration 0011 keep count (one
    /// row read; [`Store::count_embedded_chunks`] counts them).
    pub fn embedded_chunks(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT n FROM embedded_count", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// The chunks with their vector attached, counted (linear in the chunks: `doctor`).
    pub fn count_embedded_chunks(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM chunks WHERE vec_seq IS NOT NULL", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

/// A chunk removed since the vector file was saved (`graph_removals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    pub chunk_id: i64,
    /// The number its vector had; none in a row written before there was the column.
    pub vec_seq: Option<i64>,
}

/// The last `vec_seq` given. Kept in `meta` as well as read from the chunks: when the chunks
/// with the highest numbers are removed, the next vectors must still get numbers above them,
/// or a reader that loaded a vector file named after them would never add the new ones.
fn last_vec_seq(conn: &rusqlite::Connection) -> Result<i64> {
    let in_chunks: i64 = conn.query_row("SELECT coalesce(max(vec_seq), 0) FROM chunks", [], |r| r.get(0))?;
    let kept = super::read_meta(conn, VEC_SEQ)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(in_chunks.max(kept))
}

fn set_last_vec_seq(tx: &rusqlite::Transaction, seq: i64) -> Result<()> {
    super::write_meta(tx, VEC_SEQ, &seq.to_string())
}

/// The `meta` key of the last `vec_seq` given.
const VEC_SEQ: &str = "vec_seq";

/// Removes a document's chunks and keyword entries inside `tx`, noting the graph keys that go
/// and the texts whose vectors may now be unused.
fn delete_chunks(tx: &rusqlite::Transaction, doc_id: i64, changes: &mut VectorChanges) -> Result<()> {
    let gone: Vec<(i64, String, Option<i64>)> = tx
        .prepare_cached("SELECT id, hash, vec_seq FROM chunks WHERE doc_id = ?1")?
        .query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut fts = tx.prepare_cached("DELETE FROM chunks_fts WHERE rowid = ?1")?;
    // Until the vector file is saved again, it still holds those numbered up to its own number.
    let mut unsaved = tx.prepare_cached("INSERT OR IGNORE INTO graph_removals(chunk_id, vec_seq) VALUES (?1, ?2)")?;
    for (id, hash, vec_seq) in gone {
        fts.execute([id])?;
        if let Some(seq) = vec_seq {
            unsaved.execute([id, seq])?;
        }
        changes.removed.push(id);
        changes.unused.push(hash);
    }
    tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [doc_id])?;
    Ok(())
}

/// The byte range of raw paths that holds `path` and everything under it (and some siblings
/// that share its name as a prefix, such as `notes-old` for `notes`, which callers drop).
fn path_range(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let from = path_bytes(path);
    let mut to = from.clone();
    // Just past the separator: every `path/...` sorts below it.
    to.push(std::path::MAIN_SEPARATOR as u8 + 1);
    (from, to)
}
