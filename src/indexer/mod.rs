//! Folders in, index out. [`Writer`] is the one way to change an index: it holds the writer
//! lock for its whole life and owns the store, the vector graph, the embedder and the options,
//! so every write to SQLite is mirrored into the vector graph in one place. A run has two
//! phases that overlap ([`pipeline`]), each crash-safe on its own:
//!
//! 1. Sync ([`sync`]): every file under the roots is compared with the store (size and mtime,
//!    then content hash); changed files are decoded and chunked by a pool of workers and written
//!    with their chunks (each document in one transaction); a vanished file is removed. Keyword
//!    search finds a document as soon as it is written.
//! 2. Embed ([`embedding`]): chunk texts without a vector are embedded in batches on the model's
//!    thread while sync goes on; each batch is committed with its vectors in one transaction.
//!    Vectors are keyed by chunk text, so a renamed file or an unchanged chunk of a changed file
//!    costs no model time.
//!
//! A killed run leaves committed work in place; the next run redoes only what is missing.

mod embedding;
mod estimate;
mod pipeline;
mod repair;
mod report;
mod space;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::embed::Embedder;
use crate::scan;
use crate::store::docs::{DocOp, NewChunk, NewDocument};
use crate::store::lock::{Role, WriterLock};
use crate::store::vectors::{VectorIndex, VectorType};
use crate::store::{DEVICE_META, Fingerprint, Stats, Store, WriteStore};
use crate::text::chunk;

pub use embedding::Rate;
pub use estimate::{Estimate, estimate};
pub use repair::{Repair, repair};
pub use report::{FileNote, FileOutcome, Progress, Report};
pub use space::{DiskFull, free_bytes, is_disk_full};
pub use sync::Area;

#[derive(Debug, Clone)]
pub struct Options {
    pub scan: scan::Options,
    /// The chunking asked for; [`Writer::open`] caps it by what the embedder reads.
    pub chunk: chunk::Settings,
    /// Chunk texts per embedding call (and per commit).
    pub embed_batch: usize,
    /// Workers that read, decode and chunk files.
    pub threads: usize,
    /// How often the vector file is saved while embedding.
    pub save_every: Duration,
    /// How the vector file keeps each vector (a file of another type is written again); `None`:
    /// the type the index has, or [`VectorType::default`] for a new one.
    pub vector_type: Option<VectorType>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scan: scan::Options::default(),
            chunk: chunk::Settings::new(384, 32),
            embed_batch: 64,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            save_every: Duration::from_secs(60),
            vector_type: None,
        }
    }
}

/// How to open a [`Writer`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub role: Role,
    pub rebuild: Rebuild,
    pub options: Options,
}

/// What becomes of what an index holds when a writer opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Kept; another model or chunking is refused.
    No,
    /// Dropped only when the model or chunking differs (`eval`: the same model re-embeds nothing).
    IfOther,
    /// Dropped: every file read and every chunk embedded again (`index --rebuild`).
    Always,
}

/// The one owner of a writable index.
pub struct Writer {
    store: WriteStore,
    vectors: VectorIndex,
    embedder: Box<dyn Embedder>,
    opts: Options,
    fingerprint: Fingerprint,
    // Dropped last: nothing is written once the lock is gone.
    _lock: WriterLock,
}

impl Writer {
    /// Takes the writer lock on `dir` (creating the index if needed), then loads the embedder:
    /// `load` hears the model the index was built with (none with [`Rebuild::IfOther`]) and
    /// returns the embedder to use. The index must have been built with the same model and
    /// chunking, or `settings.rebuild` starts it afresh; vectors of two models never mix.
    pub fn open(
        dir: &Path,
        settings: Settings,
        load: impl FnOnce(Option<&Fingerprint>) -> Result<Box<dyn Embedder>>,
    ) -> Result<Writer> {
        let lock = WriterLock::acquire(dir, settings.role)?;
        if settings.rebuild == Rebuild::Always {
            set_aside_newer(dir)?;
        }
        let mut store = Store::open_write(dir).map_err(|e| disk_full_at(e, dir))?;
        let existing = if settings.rebuild == Rebuild::IfOther { None } else { store.fingerprint()? };
        let embedder = load(existing.as_ref())?;
        let mut opts = settings.options;
        opts.chunk = effective_chunking(opts.chunk, embedder.as_ref());
        let fingerprint = fingerprint(embedder.as_ref(), opts.chunk);
        let opened = (|| -> Result<VectorIndex> {
            check_fingerprint(&mut store, &fingerprint, settings.rebuild)?;
            let ty = opts.vector_type.or_else(|| crate::store::vectors::recorded_type(&store)).unwrap_or_default();
            let vectors = VectorIndex::open(&store, embedder.dims(), ty)?;
            store.set_meta("vector_index", &vectors.describe().to_string())?;
            // Where the model runs (and why not where it was asked to), for `status`.
            store.set_meta(DEVICE_META, &embedder.device().to_string())?;
            Ok(vectors)
        })();
        let vectors = opened.map_err(|e| disk_full_at(crate::store::explain(e, dir), dir))?;
        Ok(Writer { store, vectors, embedder, opts, fingerprint, _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Records where the model's files came from (an absolute path), for later commands.
    pub fn remember_model_dir(&self, dir: &Path) -> Result<()> {
        let dir = dir.canonicalize().with_context(|| format!("reading {}", dir.display()))?;
        self.store.set_model_dir(&dir)
    }

    /// Records the embedding server the index's `openai:` model is asked, for later commands.
    pub fn remember_endpoint(&self, url: &str) -> Result<()> {
        self.store.set_endpoint(url)
    }

    /// What the index's vectors depend on.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The options in force (the chunking capped by the model).
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Where the runtime runs the model's graph, when the embedder records it (the plan's
    /// `options.profile`): one short text is embedded, then its placement read (which ends the
    /// recording). `None` for models that record none.
    pub fn placement(&mut self) -> Result<Option<crate::embed::placement::NodePlacement>> {
        use crate::embed::device::Backend;
        if matches!(self.embedder.device().on, Backend::Server | Backend::StandIn) {
            return Ok(None);
        }
        self.embedder.embed(&["where does this run"], crate::embed::InputKind::Document)?;
        self.embedder.placement()
    }

    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.as_ref()
    }

    /// The embedder, once writing is over (the lock is released).
    pub fn into_embedder(self) -> Box<dyn Embedder> {
        self.embedder
    }

    pub fn stats(&self) -> Result<Stats> {
        self.store.stats()
    }

    /// Vectors in the graph (for consistency checks: equal to the embedded chunks).
    pub fn vector_count(&self) -> usize {
        self.vectors.len()
    }

    /// The folders named, made absolute; with none, every folder the index has. `none` is the
    /// error when there are neither.
    pub fn roots_or_registered(&self, paths: &[PathBuf], none: &str) -> Result<Vec<PathBuf>> {
        let roots = canonical_roots(paths)?;
        if !roots.is_empty() {
            return Ok(roots);
        }
        let registered: Vec<PathBuf> = self.store.roots()?.into_iter().map(|r| r.path).collect();
        if registered.is_empty() {
            bail!("{none}");
        }
        Ok(registered)
    }

    /// Syncs `roots`, embeds what is new and drops unused vectors. The vector file is written
    /// once enough changes wait ([`crate::store::vectors::SAVE_AFTER`]); a command that ends
    /// calls [`Writer::save`]. The watcher runs this for each batch of changes, with the writer
    /// kept open between batches.
    pub fn update(
        &mut self,
        roots: &[PathBuf],
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<Report> {
        let areas: Vec<Area> = roots.iter().cloned().map(Area::whole).collect();
        self.update_areas(&areas, progress, cancel)
    }

    /// [`Writer::update`] of some paths under the roots only (what a watcher saw change): the
    /// index ends as a whole update would leave it, if nothing changed elsewhere.
    pub fn update_areas(
        &mut self,
        areas: &[Area],
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<Report> {
        let mut report = Report::default();
        let updated = (|| -> Result<()> {
            let scan = std::time::Instant::now();
            let work = self.plan(areas, &mut report, progress)?;
            // Sync time is the scan plus the run until the last file is written (added by `run`).
            report.sync_secs += scan.elapsed().as_secs_f64();
            self.run(work, &mut report, progress, cancel)?;
            if !report.interrupted {
                self.store.collect_garbage()?;
            }
            self.vectors.save_if_due(&self.store)?;
            report.pending = self.store.pending_chunks()?;
            Ok(())
        })();
        match updated {
            Ok(()) => Ok(report),
            Err(e) => Err(self.explain_disk_full(crate::store::explain(e, self.dir()), areas)),
        }
    }

    /// Writes the vector file (atomically) if it lacks changes, so that the next reader loads
    /// it as it is.
    pub fn save(&mut self) -> Result<()> {
        let saved = self.vectors.save(&self.store);
        saved.map_err(|e| self.explain_disk_full(e, &[]))
    }

    /// Registers a folder (its documents are written under its id).
    pub fn add_root(&mut self, path: &Path) -> Result<i64> {
        self.store.add_root(path)
    }

    /// Adds or replaces a document with its chunks (one transaction); chunks whose text already
    /// has a vector get it at once.
    pub fn write_document(&mut self, doc: NewDocument, chunks: Vec<NewChunk>) -> Result<()> {
        self.apply(&[DocOp::Write { doc, chunks }])
    }

    /// Applies document changes in one transaction, mirrored into the vector graph.
    fn apply(&mut self, ops: &[DocOp]) -> Result<()> {
        apply_ops(&mut self.store, &mut self.vectors, ops)
    }

    /// Stores vectors, each with the hash of the text it embeds, and attaches them to every
    /// chunk with that text (one transaction).
    pub fn attach_vectors(&mut self, items: &[(String, Vec<f32>)]) -> Result<()> {
        attach(&mut self.store, &mut self.vectors, items)
    }
}

/// A store write of documents, mirrored into the vector graph. With [`attach`], the only two
/// places the graph changes while a writer is open.
fn apply_ops(store: &mut WriteStore, vectors: &mut VectorIndex, ops: &[DocOp]) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let changes = store.apply_batch(ops)?;
    vectors.apply(&changes)
}

/// A store write of vectors, mirrored into the vector graph.
fn attach(store: &mut WriteStore, vectors: &mut VectorIndex, items: &[(String, Vec<f32>)]) -> Result<()> {
    let changes = store.attach_vectors(items)?;
    vectors.apply(&changes)
}

/// The chunk settings an embedder can take: no chunk, with its heading path in front, longer
/// than the model reads.
pub fn effective_chunking(wanted: chunk::Settings, embedder: &dyn Embedder) -> chunk::Settings {
    // Room for the special tokens the model adds (BERT's two, Qwen3's one).
    let room = embedder.max_tokens().saturating_sub(SPECIAL_TOKENS);
    // Leave room for a short heading path too; a chunk under a longer one is cut shorter.
    let cap = embedder.max_tokens().saturating_sub(32).max(16);
    let tokens = wanted.tokens.min(cap);
    chunk::Settings { tokens, overlap: wanted.overlap.min(tokens / 4), room }
}

/// The most special tokens a model adds to a text it embeds.
const SPECIAL_TOKENS: usize = 2;

fn fingerprint(embedder: &dyn Embedder, chunking: chunk::Settings) -> Fingerprint {
    Fingerprint {
        model: embedder.fingerprint(),
        dims: embedder.dims(),
        chunk_tokens: chunking.tokens,
        chunk_overlap: chunking.overlap,
        chunker_version: chunk::Settings::VERSION,
    }
}

/// Checks that the index was built with the same model and chunking, or starts it afresh as
/// `rebuild` says.
fn check_fingerprint(store: &mut WriteStore, wanted: &Fingerprint, rebuild: Rebuild) -> Result<()> {
    match store.fingerprint()? {
        Some(have) if &have == wanted && rebuild != Rebuild::Always => Ok(()),
        Some(have) if rebuild == Rebuild::No => bail!(
            "this index was built with {have}\nbut this run would use {wanted}.\n\
             Vectors of different models or chunking cannot be mixed: rerun with --rebuild to re-embed \
             everything, or use --model to match the index"
        ),
        Some(_) => {
            store.clear()?;
            store.set_fingerprint(wanted)
        }
        None => {
            if store.stats()?.chunks > 0 {
                store.clear()?;
            }
            store.set_fingerprint(wanted)
        }
    }
}

/// `err` as [`DiskFull`] (with no estimate of the space needed) when it says the disk is full.
fn disk_full_at(err: anyhow::Error, dir: &Path) -> anyhow::Error {
    if is_disk_full(&err) && !err.chain().any(|c| c.is::<DiskFull>()) { DiskFull::at(dir, None).into() } else { err }
}

/// Before `--rebuild` of an index a newer qsearch wrote: its database is moved aside, untouched
/// (`index.sqlite.schema-<N>`), and a new one started with its folders, if they can be read.
fn set_aside_newer(dir: &Path) -> Result<()> {
    let Some(newer) = Store::open_read(dir).err().and_then(|e| e.downcast::<crate::store::Newer>().ok()) else {
        return Ok(());
    };
    let db = dir.join(crate::store::DB_FILE);
    let roots: Vec<PathBuf> = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            let mut stmt = c.prepare("SELECT path FROM roots ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|r| r.map(|p| crate::util::path_from_bytes(&p))).collect()
        })
        .unwrap_or_default();
    for suffix in ["", "-wal", "-shm"] {
        let from = dir.join(format!("{}{suffix}", crate::store::DB_FILE));
        if from.exists() {
            let to = dir.join(format!("{}.schema-{}{suffix}", crate::store::DB_FILE, newer.schema));
            std::fs::rename(&from, &to).with_context(|| format!("moving {} aside", from.display()))?;
        }
    }
    crate::store::vectors::remove_files(dir)?;
    let store = Store::open_write(dir)?;
    for root in roots {
        store.add_root(&root)?;
    }
    Ok(())
}

/// Absolute, normalised root paths.
pub fn canonical_roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|p| std::fs::canonicalize(p).map_err(|e| anyhow::anyhow!("cannot index {}: {e}", Path::new(p).display())))
        .collect()
}
