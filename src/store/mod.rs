//! The index on disk: a SQLite database (the source of truth: roots, documents, chunks, vectors,
//! keyword index) and a usearch HNSW file derived from it (see [`vectors`]). One writer at a time,
//! enforced by [`lock`]; any number of readers, which WAL lets read while the writer writes.

pub mod blob;
pub mod check;
pub mod docs;
pub mod lock;
pub mod read;
pub mod vectors;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::models::reference::ModelRef;
use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub const DB_FILE: &str = "index.sqlite";
/// The `meta` key of where the model last ran for a writer.
pub const DEVICE_META: &str = "device";

const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../migrations/0001_init.sql")),
    ("0002_vocab", include_str!("../../migrations/0002_vocab.sql")),
    ("0003_porter", include_str!("../../migrations/0003_porter.sql")),
    ("0004_tags", include_str!("../../migrations/0004_tags.sql")),
    ("0005_html_as_markdown", include_str!("../../migrations/0005_html_as_markdown.sql")),
    ("0006_data_uri_payloads", include_str!("../../migrations/0006_data_uri_payloads.sql")),
    ("0007_passed_over", include_str!("../../migrations/0007_passed_over.sql")),
    ("0008_note_dates", include_str!("../../migrations/0008_note_dates.sql")),
    ("0009_graph_removals", include_str!("../../migrations/0009_graph_removals.sql")),
    ("0010_f16_vectors", include_str!("../../migrations/0010_f16_vectors.sql")),
    ("0011_embedded_count", include_str!("../../migrations/0011_embedded_count.sql")),
    ("0012_graph_removals_seq", include_str!("../../migrations/0012_graph_removals_seq.sql")),
    ("0013_f16_planes", include_str!("../../migrations/0013_f16_planes.sql")),
];

/// What the vectors in an index depend on. A change needs `--rebuild`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub model: String,
    pub dims: usize,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    pub chunker_version: u32,
}

impl Fingerprint {
    /// The model's id, without the dimensions the embedder adds to it ("all-minilm-l6-v2:384d"
    /// -> "all-minilm-l6-v2", "openai:qwen3-embedding:0.6b:1024d" -> "openai:qwen3-embedding:0.6b").
    pub fn model_id(&self) -> &str {
        self.model.strip_suffix(&format!(":{}d", self.dims)).unwrap_or(&self.model)
    }

    /// The model the vectors were made with.
    pub fn model_ref(&self) -> ModelRef {
        ModelRef::parse(self.model_id())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "model {} ({} dims), chunks of {} tokens with {} overlap (chunker v{})",
            self.model, self.dims, self.chunk_tokens, self.chunk_overlap, self.chunker_version
        )
    }
}

/// The index's SQLite database, its read face: what searches, `status` and the MCP server read.
/// Writing goes through [`WriteStore`], which only `indexer::Writer` opens.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
}

/// The index's SQLite database opened for writing (under the writer lock): the write methods,
/// and every read of [`Store`] through `Deref`.
pub struct WriteStore {
    store: Store,
    /// Texts (hashes) whose chunks this process removed: their vectors may now be unused, and
    /// [`WriteStore::collect_garbage`] looks at them alone.
    unused: HashSet<String>,
    /// An earlier writer removed chunks and stopped before collecting their vectors.
    garbage_left: bool,
}

impl std::ops::Deref for WriteStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// The `meta` key set in the transaction that removes chunks and cleared once their unused
/// vectors are collected: a process that stopped between the two (a crash, Ctrl-C) leaves it,
/// and the next collection looks at every vector.
const GARBAGE_DUE: &str = "garbage_due";

impl Store {
    /// Opens (creating if needed) the index in `dir` for writing. Only
    /// `indexer::Writer` calls it, holding the writer lock.
    pub(crate) fn open_write(dir: &Path) -> Result<WriteStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create index directory {}", dir.display()))?;
        let opened = (|| -> Result<WriteStore> {
            let conn = Connection::open(dir.join(DB_FILE))
                .with_context(|| format!("cannot open index {}", dir.join(DB_FILE).display()))?;
            configure(&conn)?;
            // 32 KiB pages for a new index (an existing one keeps its own): a row holds its whole
            // vector when it fits a page, and a page holds as many whole rows as fit: f16 rows of
            // 1,024 dimensions (2,129 bytes) one to a 4 KiB page, three to 8 KiB, fifteen to 32 KiB
            // (4,107 -> 2,737 -> 2,187 bytes a vector, benches/README.md). Set before WAL, which
            // fixes it.
            conn.pragma_update(None, "page_size", PAGE_SIZE as i64)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            // 64 MiB of page cache (SQLite's default is 2 MiB): a first index's B-tree and FTS5
            // inserts otherwise read back pages they wrote moments before.
            conn.pragma_update(None, "cache_size", -65_536)?;
            // Checkpoint the WAL every 128 MiB instead of every 1,000 pages: with `synchronous =
            // NORMAL` a checkpoint is the only fsync, and a first index made the writer wait on one
            // every few hundred files (benches/README, "Checkpoints"). Counted in pages, whatever
            // size the index's are.
            let store = Store { conn, dir: dir.to_path_buf() };
            let pages = (WAL_CHECKPOINT_BYTES / store.page_size()?.max(512)) as i64;
            store.conn.pragma_update(None, "wal_autocheckpoint", pages)?;
            store.migrate()?;
            let garbage_left = store.meta(GARBAGE_DUE)?.is_some();
            Ok(WriteStore { store, unused: HashSet::new(), garbage_left })
        })();
        opened.map_err(|e| explain(e, dir))
    }

    /// Opens an existing index for reading.
    pub fn open_read(dir: &Path) -> Result<Store> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            bail!("no index at {}: run `qsearch index PATH` first", dir.display());
        }
        let opened = (|| -> Result<Store> {
            let conn =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .with_context(|| format!("cannot open index {}", path.display()))?;
            configure(&conn)?;
            // Readers read pages through a map of the file instead of a copy per read: a search's
            // row lookups (the hits, an i8 graph's candidates rescored) go to the page cache
            // without a system call each (up to the limit SQLite was built with).
            conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
            let store = Store { conn, dir: dir.to_path_buf() };
            // Reads the header and the schema: a file that is no database, or a damaged first
            // page, is found here.
            let version = schema_version(&store.conn)?;
            refuse_newer(dir, version)?;
            if version == 0 {
                bail!("the index at {} is empty: run `qsearch index PATH`", dir.display());
            }
            Ok(store)
        })();
        opened.map_err(|e| explain(e, dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn migrate(&self) -> Result<()> {
        let version = schema_version(&self.conn)?;
        // Never migrated down: the newer qsearch's index stays as it wrote it.
        refuse_newer(&self.dir, version)?;
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.unchecked_transaction()?;
            tx.execute_batch(sql).with_context(|| format!("migration {name}"))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        read_meta(&self.conn, key)
    }

    pub fn fingerprint(&self) -> Result<Option<Fingerprint>> {
        match self.meta("fingerprint")? {
            Some(json) => Ok(Some(serde_json::from_str(&json).context("corrupt fingerprint in index")?)),
            None => Ok(None),
        }
    }

    /// The folder the index's model files were taken from (`--model-dir`), so that later
    /// commands find them without the flag.
    pub fn model_dir(&self) -> Result<Option<PathBuf>> {
        Ok(self.meta("model_dir")?.map(PathBuf::from))
    }

    /// Where the index's model last ran for a writer (`CPU`, `CUDA`, `CPU (CUDA unavailable:
    /// ...)`), for `status`.
    pub fn device(&self) -> Result<Option<String>> {
        self.meta(DEVICE_META)
    }

    /// The embedding server the index's `openai:` model was asked (`--endpoint`), so that later
    /// commands ask it without the flag.
    pub fn endpoint(&self) -> Result<Option<String>> {
        self.meta("endpoint")
    }

    pub fn stats(&self) -> Result<Stats> {
        let one = |sql: &str| -> Result<i64> { Ok(self.conn.query_row(sql, [], |r| r.get(0))?) };
        let (tags_total, tags) = self.tag_counts(TOP_TAGS)?;
        let (skipped, failed) = self.passed_over_counts()?;
        let mut files_on_disk = 0u64;
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            files_on_disk += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
        Ok(Stats {
            roots: self.roots()?.into_iter().map(|r| r.display).collect(),
            documents: one("SELECT count(*) FROM documents")? as u64,
            chunks: one("SELECT count(*) FROM chunks")? as u64,
            pending: self.pending_chunks()?,
            vectors: one("SELECT count(*) FROM vectors")? as u64,
            bytes_on_disk: files_on_disk,
            vector_type: vectors::recorded_type(self),
            fingerprint: self.fingerprint()?,
            tags_total,
            tags,
            skipped,
            failed,
        })
    }
}

impl WriteStore {
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        write_meta(&self.store.conn, key, value)
    }
    pub fn set_model_dir(&self, dir: &Path) -> Result<()> {
        self.set_meta("model_dir", &dir.to_string_lossy())
    }
    pub fn set_endpoint(&self, url: &str) -> Result<()> {
        self.set_meta("endpoint", url)
    }
    pub fn set_fingerprint(&self, fp: &Fingerprint) -> Result<()> {
        self.set_meta("fingerprint", &serde_json::to_string(fp)?)
    }
    /// Drops every chunk, vector and document (for `--rebuild`); roots stay.
    pub fn clear(&mut self) -> Result<()> {
        let tx = self.store.conn.transaction()?;
        tx.execute_batch(
            "DELETE FROM chunks_fts; DELETE FROM chunks; DELETE FROM vectors; DELETE FROM doc_tags; DELETE FROM doc_dates; DELETE FROM documents; DELETE FROM graph_removals; DELETE FROM passed_over;
             DELETE FROM meta WHERE key IN ('fingerprint', 'vec_seq', 'vector_index');",
        )?;
        tx.commit()?;
        vectors::remove_files(&self.store.dir)?;
        Ok(())
    }
}

/// The schema version an index was written at (`user_version`: the migrations applied).
fn schema_version(conn: &Connection) -> Result<usize> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // The schema itself is read too, so that a damaged one is found at open.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))?;
    Ok(version.max(0) as usize)
}

/// The schema versions this qsearch knows (its migrations).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The page size of a new index's database (an existing one keeps its own; see `open_write`).
pub const PAGE_SIZE: u64 = 32_768;

/// How much the WAL grows before the writer copies it into the database (`wal_autocheckpoint`).
const WAL_CHECKPOINT_BYTES: u64 = 128 << 20;

/// An index written by a newer qsearch, whose schema this one does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    pub dir: PathBuf,
    pub schema: usize,
}

impl fmt::Display for Newer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the index at {} was written by a newer qsearch (schema {}, this one knows {SCHEMA_VERSION}): \
             upgrade qsearch, or rebuild it with `qsearch index --rebuild` (the newer index is then kept \
             beside it, untouched)",
            self.dir.display(),
            self.schema
        )
    }
}

impl std::error::Error for Newer {}

fn refuse_newer(dir: &Path, version: usize) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(Newer { dir: dir.to_path_buf(), schema: version }.into());
    }
    Ok(())
}

/// The index's database is damaged (SQLite found a malformed page, or a file that is no
/// database): `qsearch index --repair` mends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub dir: PathBuf,
    /// SQLite's own words.
    pub what: String,
}

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the index at {dir} is damaged ({}): run `qsearch index --repair --index {dir}` \
             (it keeps the damaged file beside the index and reads your files again where it must)",
            self.what,
            dir = self.dir.display()
        )
    }
}

impl std::error::Error for Damaged {}

/// SQLite's words when `err` says a database is damaged (a malformed page or index, a file that
/// is no database).
pub fn damage_in(err: &anyhow::Error) -> Option<String> {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    err.chain().find_map(|c| match c.downcast_ref::<rusqlite::Error>()? {
        rusqlite::Error::SqliteFailure(e, msg) if matches!(e.code, DatabaseCorrupt | NotADatabase) => {
            Some(msg.clone().unwrap_or_else(|| e.to_string()))
        }
        _ => None,
    })
}

/// `err` as [`Damaged`] when it says that the index at `dir` is damaged; else as it is.
pub fn explain(err: anyhow::Error, dir: &Path) -> anyhow::Error {
    if err.chain().any(|c| c.is::<Damaged>()) {
        return err;
    }
    match damage_in(&err) {
        Some(what) => Damaged { dir: dir.to_path_buf(), what }.into(),
        None => err,
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // `rarray(?)`: a search filter's chunk ids handed to a query as one value.
    rusqlite::vtab::array::load_module(conn)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// How many of the most used tags [`Stats`] lists.
pub const TOP_TAGS: usize = 20;

/// A tag and how many documents carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagCount {
    pub tag: String,
    pub documents: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stats {
    pub roots: Vec<String>,
    pub documents: u64,
    pub chunks: u64,
    /// Chunks whose vector is not computed yet.
    pub pending: u64,
    pub vectors: u64,
    pub bytes_on_disk: u64,
    /// How the vector file keeps each vector (`vector_type`); none before a writer opened it.
    pub vector_type: Option<vectors::VectorType>,
    pub fingerprint: Option<Fingerprint>,
    /// Distinct tags (a note's frontmatter and `#tags`), and the most used of them.
    pub tags_total: u64,
    pub tags: Vec<TagCount>,
    /// Files read and not indexed: left out (no text in them) and failed (a broken PDF). They
    /// are read again once they change; `qsearch index` lists them with the reason.
    pub skipped: u64,
    pub failed: u64,
}

/// A `meta` value, read on any connection or inside a transaction.
fn read_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

/// Sets a `meta` value, on any connection or inside a transaction.
fn write_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
