//! The vector index: a usearch HNSW graph keyed by chunk id, derived from the vectors in SQLite.
//!
//! The file is named after the last vector sequence number it covers and a checksum of its bytes
//! (`vectors-<seq>-<sum>.usearch`) and written to a temporary name then renamed, so a file on disk
//! is always whole and says exactly what it holds. Opening it checks it cheaply (the checksum, a
//! sequence number SQLite has reached, the dimensions), adds whatever SQLite attached after that
//! number and removes the chunks removed since it was written (`graph_removals`); a file that
//! fails a check or still does not match SQLite (another count of vectors) is rebuilt from SQLite
//! ([`FileDamage`] says why). So the file need not be written after every change: it is written
//! once [`SAVE_AFTER`] changes wait, and when a command ends.
//!
//! Readers (searches, the TUI, the MCP server, the daemon's queries) map the file (usearch's view
//! of a saved index) instead of loading it: opening costs milliseconds whatever its size, and its
//! pages are the page cache's, shared by every reader. A mapped graph cannot change, so what SQLite
//! attached since the file was saved goes into a small graph in memory beside it, and the chunks
//! removed or replaced since are hidden from its answers. A map builds no table from keys to
//! vectors (usearch's `enable_key_lookups`, two thirds of the open at a million chunks): whether
//! the file holds a removed chunk is told by the vector number `graph_removals` kept for it, and
//! the few chunks a filter allows are scored from SQLite's vectors. The writer loads the file, a
//! copy it changes in place.
//!
//! Checking a file's whole checksum reads every byte (100 ms at 220 MB, a second at a million
//! chunks of 1,024 dimensions), which would undo the mapping. So the writer stamps each file it
//! saves with a modification time derived from its checksum (a date in 2001-2004 no write makes:
//! any write to the file sets its time to now, and a copy that does not keep times has another
//! one): a reader that finds the stamp trusts the checksum the writer computed, and checks the
//! whole file only when the stamp is not there (a file written, copied, touched or restored since).
//! The writer's own open and `qsearch doctor` check the whole file every time. What a reader
//! does not find at open: bytes that change on the disk without a write (media decay under a
//! kept time); the writer's next open and `doctor` do.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind, b1x8};

use super::docs::{Removal, VectorChanges};
use super::{Store, WriteStore};

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Params {
    pub connectivity: usize,
    pub expansion_add: usize,
    pub expansion_search: usize,
}

pub const PARAMS: Params = Params { connectivity: 16, expansion_add: 128, expansion_search: 192 };

/// How the graph keeps each vector (`vector_type` in the configuration). SQLite keeps every
/// vector (f16) whatever the type: i8 and binary graphs ask for more candidates than wanted and
/// rank them again by exact cosine over SQLite's vectors, and a change of type writes the vector
/// file again from them (no embedding). benches/README.md, "One machine's limits" and "i8 by
/// default", measures them: i8 is the default for new indexes (recall@10 0.9915 against exact f32
/// search at a million chunks, f16's 0.996; half the file; scifact's quality unchanged); an index
/// keeps the type it was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorType {
    /// Half floats, 2 bytes a dimension: cosine as good as f32's.
    F16,
    /// Bytes, rescaled before rounding (a unit vector's components are small: x * sqrt(dims) * 32,
    /// clamped at 4 standard deviations); candidates rescored.
    #[default]
    I8,
    /// One bit a dimension (its sign), Hamming distance; candidates rescored.
    B1,
}

impl VectorType {
    pub fn parse(s: &str) -> Result<VectorType> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(VectorType::F16),
            "i8" => Ok(VectorType::I8),
            "b1" | "binary" => Ok(VectorType::B1),
            other => Err(anyhow!("unknown vector_type {other:?}: f16, i8 or b1")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VectorType::F16 => "f16",
            VectorType::I8 => "i8",
            VectorType::B1 => "b1",
        }
    }

    fn scalar(self) -> ScalarKind {
        match self {
            VectorType::F16 => ScalarKind::F16,
            VectorType::I8 => ScalarKind::I8,
            VectorType::B1 => ScalarKind::B1,
        }
    }

    fn of_scalar(kind: ScalarKind) -> Option<VectorType> {
        [VectorType::F16, VectorType::I8, VectorType::B1].into_iter().find(|t| t.scalar() == kind)
    }

    /// Candidates asked of the graph for `k` answers (the rest are rescored away). i8 asks for
    /// at least 30: the top 10 of 30 rescored had recall@10 0.9915 against exact f32 search at
    /// a million chunks. More is not asked for larger `k`: each candidate is a row read from
    /// SQLite (a search asks 40 for 10 hits, the TUI 200 for 50; three times that cost the TUI
    /// 12 ms at 100,000 chunks), and the lists' tails only feed the fusion.
    fn candidates(self, k: usize) -> usize {
        match self {
            VectorType::F16 => k,
            VectorType::I8 => k.max(30),
            VectorType::B1 => (k * 10).max(100),
        }
    }
}

/// A vector as the graph of `ty` takes it.
enum Quantized {
    F32(Vec<f32>),
    I8(Vec<i8>),
    B1(Vec<b1x8>),
}

fn quantize(ty: VectorType, v: &[f32]) -> Quantized {
    match ty {
        VectorType::F16 => Quantized::F32(v.to_vec()),
        VectorType::I8 => {
            let s = (v.len() as f32).sqrt() * 32.0;
            Quantized::I8(v.iter().map(|x| (x * s).round().clamp(-127.0, 127.0) as i8).collect())
        }
        VectorType::B1 => {
            let mut bits = vec![b1x8(0); v.len().div_ceil(8)];
            for (i, x) in v.iter().enumerate() {
                if *x > 0.0 {
                    bits[i / 8].0 |= 1 << (i % 8);
                }
            }
            Quantized::B1(bits)
        }
    }
}

/// How a graph is asked for its nearest vectors.
#[derive(Clone, Copy)]
enum Ask<'a> {
    /// A walk of the graph, with the filter given.
    Walk(Option<&'a dyn Fn(u64) -> bool>),
    /// Every vector compared.
    Scan,
}

impl Quantized {
    /// The `count` nearest vectors of `index` to this one, asked `how`.
    fn nearest(
        &self,
        index: &Index,
        count: usize,
        how: Ask,
    ) -> std::result::Result<usearch::ffi::Matches, cxx::Exception> {
        fn ask<T: usearch::VectorType>(
            index: &Index,
            q: &[T],
            count: usize,
            how: Ask,
        ) -> std::result::Result<usearch::ffi::Matches, cxx::Exception> {
            match how {
                Ask::Walk(None) => index.search(q, count),
                Ask::Walk(Some(keep)) => index.filtered_search(q, count, keep),
                Ask::Scan => index.exact_search(q, count),
            }
        }
        match self {
            Quantized::F32(q) => ask(index, q, count, how),
            Quantized::I8(q) => ask(index, q, count, how),
            Quantized::B1(q) => ask(index, q, count, how),
        }
    }
}

fn add_to(index: &Index, id: u64, v: &Quantized) -> std::result::Result<(), cxx::Exception> {
    match v {
        Quantized::F32(v) => index.add(id, v),
        Quantized::I8(v) => index.add(id, v),
        Quantized::B1(v) => index.add(id, v),
    }
}

/// Graphs of at most this many scalars (vectors x dimensions, e.g. 20,000 x 384 or 8,000 x
/// 1,024) are searched by scanning every vector: exact answers that do not depend on the order
/// the graph was built in, for about a millisecond (`cargo bench --bench search -- 20000 384
/// --vectors-only`, benches/README.md). A walk of the graph misses a true neighbour now and then,
/// most where many chunks have the same vector (copies of one note).
pub const EXACT_SCALARS: usize = 1 << 23;

fn search_in(
    index: &Index,
    q: &Quantized,
    k: usize,
    keep: Option<&dyn Fn(u64) -> bool>,
) -> std::result::Result<usearch::ffi::Matches, cxx::Exception> {
    if index.size() * index.dimensions() <= EXACT_SCALARS {
        return scan(index, q, k, keep);
    }
    q.nearest(index, k, Ask::Walk(keep))
}

/// The `k` nearest vectors of `index` that `keep` allows, by scanning them all. usearch's scan
/// takes no filter here: it is asked for more until `k` are kept (its top list costs `count` a
/// vector, so the count grows fourfold rather than starting at the whole graph).
fn scan(
    index: &Index,
    q: &Quantized,
    k: usize,
    keep: Option<&dyn Fn(u64) -> bool>,
) -> std::result::Result<usearch::ffi::Matches, cxx::Exception> {
    let exact = |count: usize| q.nearest(index, count, Ask::Scan);
    let Some(keep) = keep else { return exact(k) };
    let mut count = (k * 4).max(64);
    loop {
        let mut m = exact(count.min(index.size()))?;
        let all = m.keys.len() < count || count >= index.size();
        let (keys, distances): (Vec<u64>, Vec<f32>) =
            m.keys.iter().zip(&m.distances).filter(|(key, _)| keep(**key)).take(k).unzip();
        if keys.len() == k || all {
            (m.keys, m.distances) = (keys, distances);
            return Ok(m);
        }
        count *= 4;
    }
}

pub struct VectorIndex {
    /// The graph of the vector file: loaded (the writer's, or one rebuilt from SQLite) or mapped
    /// (a reader's, see `mapped`).
    index: Index,
    /// `index` is a view of the file on disk: it never changes; `added` and `hidden` hold what
    /// changed since.
    mapped: bool,
    /// A mapped graph's vectors attached since the file was saved.
    added: Option<Index>,
    /// Chunks of the mapped graph removed (or given another vector, in `added`) since.
    hidden: HashSet<u64>,
    /// `index` has its table from keys to slots (`contains`, `get`, `remove`). A reader's map of
    /// the file goes without (building it was two thirds of the open at a million chunks): it
    /// tells from a removed chunk's vector number whether the file holds it (see `file_holds`).
    keys: bool,
    /// The vector number the loaded or mapped file covers (0 for a graph built from SQLite).
    file_seq: i64,
    dims: usize,
    ty: VectorType,
    /// The index's folder.
    dir: PathBuf,
    /// SQLite's vectors (f16, or an older index's f32), for ranking again the candidates of an i8
    /// or binary graph and for scoring the few chunks a filter allows (a read connection of its
    /// own, opened at the first search).
    exact: std::sync::OnceLock<std::sync::Mutex<Store>>,
    /// Highest `vec_seq` whose vector is in `index`.
    covered: i64,
    /// Vectors added or removed since the graph was loaded or saved: what the file lacks.
    unsaved: usize,
    /// The vector file found on disk and what was wrong with it, when it was set aside and the
    /// graph rebuilt from SQLite.
    damage: Option<(PathBuf, FileDamage)>,
}

/// Why a vector file on disk was not used as it is (the graph is then rebuilt from SQLite's
/// vectors, which lose nothing: the file is derived).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileDamage {
    /// Its bytes are not those written (the checksum in its name differs): garbled on disk.
    Checksum { expected: String, found: String },
    /// It could not be read or loaded (truncated, not a vector file).
    Unreadable { error: String },
    /// It holds vectors of another dimension than the index's.
    Dims { file: usize, index: usize },
    /// It covers vectors SQLite never attached: SQLite lost commits (its WAL file was deleted),
    /// and the file's chunk ids may now name other chunks.
    Ahead { file: i64, database: i64 },
    /// Brought up to date, it holds another number of vectors than SQLite has chunks with one.
    Count { file: u64, database: u64 },
    /// Its vectors are of another type than the configured one (`vector_type`): not damage, the
    /// writer writes it again as configured.
    Type { file: String, index: String },
}

impl fmt::Display for FileDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileDamage::Checksum { expected, found } => {
                write!(f, "its bytes changed on disk (checksum {found}, written as {expected})")
            }
            FileDamage::Unreadable { error } => write!(f, "it cannot be loaded ({error})"),
            FileDamage::Dims { file, index } => write!(f, "it holds vectors of {file} dimensions, the index {index}"),
            FileDamage::Ahead { file, database } => write!(
                f,
                "it covers vectors up to number {file} but the database only up to {database} \
                 (the database lost its latest commits, e.g. a deleted WAL file)"
            ),
            FileDamage::Count { file, database } => {
                write!(f, "it holds {file} vectors where the database has {database}")
            }
            FileDamage::Type { file, index } => write!(f, "it holds {file} vectors, the index is set to {index}"),
        }
    }
}

/// Changes not in the file after which [`VectorIndex::save_if_due`] writes it. Whoever opens the
/// index redoes them from SQLite (a thousand additions to the graph take a fraction of a
/// second); writing the file costs its whole size (hundreds of MB for a large index), which a
/// watcher used to pay at every saved note.
pub const SAVE_AFTER: usize = 1_000;

fn options(dims: usize, ty: VectorType) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        metric: if ty == VectorType::B1 { MetricKind::Hamming } else { MetricKind::Cos },
        quantization: ty.scalar(),
        connectivity: PARAMS.connectivity,
        expansion_add: PARAMS.expansion_add,
        expansion_search: PARAMS.expansion_search,
        multi: false,
        enable_key_lookups: true,
    }
}

fn err(e: cxx::Exception) -> anyhow::Error {
    anyhow!("vector index: {e}")
}

impl VectorIndex {
    /// For the writer: loads the newest vector file, brings it up to date with `store`, and
    /// rebuilds it from SQLite if it fails a check or still disagrees (removals a crash kept in
    /// the file); a rebuilt graph is written at once, in place of the damaged file.
    /// A file of another vector type than `ty` is written again, as `ty`, from SQLite's vectors.
    pub(crate) fn open(store: &WriteStore, dims: usize, ty: VectorType) -> Result<VectorIndex> {
        let mut vi = VectorIndex::open_with(store, dims, Open::Load(ty))?;
        let retyped = matches!(&vi.damage, Some((_, FileDamage::Type { .. })));
        if retyped {
            vi.damage = None;
            vi.unsaved = vi.unsaved.max(1);
        }
        if retyped || vi.damage.is_some() {
            vi.save(store)?;
        }
        Ok(vi)
    }

    /// For readers: the newest vector file mapped, checked, with what SQLite attached and removed
    /// since. A file that fails a check (see [`FileDamage`]) is set aside (logged) and the graph
    /// built from SQLite's vectors in memory; [`VectorIndex::damage`] says why.
    pub fn open_for_search(store: &Store, dims: usize) -> Result<VectorIndex> {
        VectorIndex::open_with(store, dims, Open::Map)
    }

    /// As a reader opens it, but its whole checksum checked whatever its stamp (`qsearch doctor`).
    pub fn open_checked(store: &Store, dims: usize) -> Result<VectorIndex> {
        VectorIndex::open_with(store, dims, Open::MapChecked)
    }

    fn empty(store: &Store, dims: usize, ty: VectorType) -> Result<VectorIndex> {
        let index = Index::new(&options(dims, ty)).map_err(err)?;
        Ok(VectorIndex {
            dir: store.dir().to_path_buf(),
            index,
            mapped: false,
            added: None,
            hidden: HashSet::new(),
            keys: true,
            file_seq: 0,
            dims,
            ty,
            exact: std::sync::OnceLock::new(),
            covered: 0,
            unsaved: 0,
            damage: None,
        })
    }

    fn open_with(store: &Store, dims: usize, how: Open) -> Result<VectorIndex> {
        // A reader takes the type the writer recorded (the file's own header says it again).
        let ty = match how {
            Open::Load(ty) => ty,
            _ => recorded_type(store).unwrap_or_default(),
        };
        let mut vi = VectorIndex::empty(store, dims, ty)?;
        // The file is listed before SQLite is read: a file is saved only after the commits it
        // covers, so the snapshot read next has them all.
        let mut found = newest_file(store.dir());
        // One snapshot of SQLite for the checks and the catching up: a writer committing
        // meanwhile cannot make them disagree.
        let snapshot = store.conn.unchecked_transaction()?;
        let mut tries = 0;
        while let Some(file) = found.take() {
            match vi.load(&file, store, how) {
                Ok(()) => {}
                // Replaced by a newer save while it was being read: the newer one.
                Err(_) if !file.path.exists() && tries < 3 => {
                    tries += 1;
                    vi = VectorIndex::empty(store, dims, ty)?;
                    found = newest_file(store.dir());
                }
                Err(damage) => {
                    vi = VectorIndex::empty(store, dims, ty)?;
                    vi.damage = Some((file.path, damage));
                }
            }
        }
        vi.catch_up(store)?;
        let database = store.embedded_chunks()?;
        if vi.damage.is_none() && vi.len() as u64 != database {
            let file = newest_file(store.dir()).map(|f| f.path).unwrap_or_default();
            vi.damage = Some((file, FileDamage::Count { file: vi.len() as u64, database }));
            vi.rebuild(store)?;
        }
        drop(snapshot);
        if let Some((path, FileDamage::Type { file, index })) = &vi.damage {
            tracing::info!(
                "the vector file {} holds {file} vectors and the index is set to {index}: it is written again from the database",
                path.display()
            );
        } else if let Some((path, damage)) = &vi.damage {
            tracing::warn!(
                "the vector file {} is damaged: {damage}; the vectors were rebuilt from the database \
                 (nothing is lost; `qsearch index` writes the file again)",
                path.display()
            );
        }
        Ok(vi)
    }

    /// A graph of every vector in SQLite, no file read (`index --repair`).
    pub(crate) fn from_database(store: &Store, dims: usize) -> Result<VectorIndex> {
        let mut vi = VectorIndex::empty(store, dims, recorded_type(store).unwrap_or_default())?;
        vi.rebuild(store)?;
        Ok(vi)
    }

    /// Loads or maps `file` after its checks: its checksum (for a reader's map, the stamp the
    /// writer left when it is there), a sequence number SQLite has reached, its dimensions, and
    /// (mapped) usearch's own: a length that holds what its header counts.
    fn load(&mut self, file: &VectorFile, store: &Store, how: Open) -> std::result::Result<(), FileDamage> {
        let unreadable = |e: &dyn fmt::Display| FileDamage::Unreadable { error: e.to_string() };
        if let Some(expected) = &file.sum {
            let stamped = how == Open::Map && has_stamp(&file.path, expected);
            if !stamped {
                let found = checksum(&file.path).map_err(|e| unreadable(&e))?;
                if &found != expected {
                    return Err(FileDamage::Checksum { expected: expected.clone(), found });
                }
            }
        }
        let database = store.max_vec_seq().map_err(|e| unreadable(&e))?;
        if file.seq > database {
            return Err(FileDamage::Ahead { file: file.seq, database });
        }
        let path = file.path.to_string_lossy();
        let header = Index::metadata(&path).map_err(|e| unreadable(&e))?;
        let Some(ty) = VectorType::of_scalar(header.quantization) else {
            return Err(unreadable(&format!("vectors of {:?}", header.quantization)));
        };
        if header.dimensions as usize != self.dims {
            return Err(FileDamage::Dims { file: header.dimensions as usize, index: self.dims });
        }
        match how {
            Open::Load(wanted) if ty != wanted => {
                return Err(FileDamage::Type { file: ty.name().into(), index: wanted.name().into() });
            }
            Open::Load(_) => self.index.load(&path).map_err(|e| unreadable(&e))?,
            Open::Map | Open::MapChecked => {
                // Removals written before they were numbered are told from the file's keys.
                let removals = store.graph_removals().map_err(|e| unreadable(&e))?;
                self.keys = removals.iter().any(|r| r.vec_seq.is_none());
                self.ty = ty;
                let view = IndexOptions { enable_key_lookups: self.keys, ..options(self.dims, ty) };
                self.index = Index::new(&view).map_err(|e| unreadable(&e))?;
                // usearch refuses a file too short for the vectors and nodes its header counts (a
                // file cut short under a kept time); comparing the length with what the graph
                // takes walked every node again (a tenth of the open at a million chunks).
                self.index.view(&path).map_err(|e| unreadable(&e))?;
                self.mapped = true;
            }
        }
        if self.index.dimensions() != self.dims {
            return Err(FileDamage::Dims { file: self.index.dimensions(), index: self.dims });
        }
        self.covered = file.seq;
        self.file_seq = file.seq;
        Ok(())
    }

    /// The vector file that was set aside when this graph was opened, and why.
    pub fn damage(&self) -> Option<&(PathBuf, FileDamage)> {
        self.damage.as_ref()
    }

    /// For readers, after a writer committed: adds and removes what changed since, without
    /// loading the file again (a watcher's batch used to make every open reader load it whole).
    /// A graph that still disagrees with SQLite (the index was rebuilt, or the writer saved
    /// and cleared removals this graph never saw) is loaded again.
    pub fn refresh(&mut self, store: &Store) -> Result<()> {
        self.catch_up(store)?;
        if self.len() as u64 != store.embedded_chunks()? {
            *self = VectorIndex::open_for_search(store, self.dims)?;
        }
        Ok(())
    }

    /// Adds what SQLite attached after `covered`, and removes what was removed since the file
    /// was saved.
    fn catch_up(&mut self, store: &Store) -> Result<()> {
        let missing = store.vectors_after(self.covered)?;
        let last = missing.last().map_or(self.covered, |m| m.vec_seq);
        let added: Vec<(i64, Vec<f32>)> = missing.into_iter().map(|m| (m.chunk_id, m.vector)).collect();
        let removed = store.graph_removals()?.into_iter().filter(|r| self.holds(r)).map(|r| r.chunk_id).collect();
        self.apply(&VectorChanges { added, removed, ..VectorChanges::default() })?;
        self.covered = last;
        Ok(())
    }

    /// Rebuilds the graph from every vector in SQLite.
    pub fn rebuild(&mut self, store: &Store) -> Result<()> {
        self.index = Index::new(&options(self.dims, self.ty)).map_err(err)?;
        self.mapped = false;
        self.added = None;
        self.hidden.clear();
        self.keys = true;
        self.file_seq = 0;
        self.covered = 0;
        self.catch_up(store)?;
        self.unsaved = self.unsaved.max(1);
        Ok(())
    }

    pub fn apply(&mut self, changes: &VectorChanges) -> Result<()> {
        if self.mapped {
            return self.apply_beside(changes);
        }
        for &id in &changes.removed {
            self.index.remove(id as u64).map_err(err)?;
        }
        self.unsaved += changes.removed.len() + changes.added.len();
        let needed = self.index.size() + changes.added.len();
        if needed > self.index.capacity() {
            self.index.reserve(needed.max(self.index.capacity() * 2).max(1024)).map_err(err)?;
        }
        for (id, v) in &changes.added {
            if v.len() != self.dims {
                return Err(anyhow!("vector of {} dims for an index of {}", v.len(), self.dims));
            }
            if self.index.contains(*id as u64) {
                self.index.remove(*id as u64).map_err(err)?;
            }
            add_to(&self.index, *id as u64, &quantize(self.ty, v)).map_err(err)?;
        }
        Ok(())
    }

    /// A mapped graph's changes: added vectors go into the graph in memory beside it, and the
    /// chunks removed or replaced are hidden from the mapped one. `changes.removed` holds only
    /// chunks the graph holds ([`VectorIndex::holds`]): one not beside it is in the file.
    fn apply_beside(&mut self, changes: &VectorChanges) -> Result<()> {
        let (dims, ty) = (self.dims, self.ty);
        let added = match &mut self.added {
            Some(added) => added,
            None => self.added.insert(Index::new(&options(dims, ty)).map_err(err)?),
        };
        for &id in &changes.removed {
            if added.contains(id as u64) {
                added.remove(id as u64).map_err(err)?;
            } else {
                self.hidden.insert(id as u64);
            }
        }
        // A vector number is given once, so a chunk attached since the file was saved is not in
        // it; only one given a vector again (after `index --repair` cleared its number) is, and
        // a map without keys does not see that: its count then differs from SQLite's and the
        // graph is opened again (`refresh`).
        for (id, _) in &changes.added {
            let id = *id as u64;
            if added.contains(id) {
                added.remove(id).map_err(err)?;
            }
            if self.keys && self.index.contains(id) {
                self.hidden.insert(id);
            }
        }
        self.unsaved += changes.removed.len() + changes.added.len();
        let needed = added.size() + changes.added.len();
        if needed > added.capacity() {
            added.reserve(needed.max(added.capacity() * 2).max(1024)).map_err(err)?;
        }
        for (id, v) in &changes.added {
            if v.len() != dims {
                return Err(anyhow!("vector of {} dims for an index of {dims}", v.len()));
            }
            add_to(added, *id as u64, &quantize(ty, v)).map_err(err)?;
        }
        Ok(())
    }

    /// Whether the graph holds the removed chunk `r`: beside the file, or in it and not hidden.
    fn holds(&self, r: &Removal) -> bool {
        let id = r.chunk_id as u64;
        self.added.as_ref().is_some_and(|a| a.contains(id)) || (self.file_holds(r) && !self.hidden.contains(&id))
    }

    /// Whether the file (or the graph built from SQLite) holds `r`: its keys say so, and a map
    /// without them goes by the number: the file holds every vector numbered up to its own
    /// that was not removed before it was saved (and those are no longer listed).
    fn file_holds(&self, r: &Removal) -> bool {
        if self.keys { self.index.contains(r.chunk_id as u64) } else { r.vec_seq.is_some_and(|s| s <= self.file_seq) }
    }

    /// Whether the graph looks its keys up in a table (a reader's map of a file does not, unless
    /// removals from before their numbering are listed).
    pub fn looks_up_keys(&self) -> bool {
        self.keys
    }

    /// Saves once [`SAVE_AFTER`] changes are not in the file.
    pub fn save_if_due(&mut self, store: &WriteStore) -> Result<()> {
        if self.unsaved >= SAVE_AFTER { self.save(store) } else { Ok(()) }
    }

    /// Writes the graph atomically, marked as covering `store`'s vectors up to now, with the
    /// checksum of its bytes in its name.
    pub fn save(&mut self, store: &WriteStore) -> Result<()> {
        let seq = store.max_vec_seq()?;
        if self.unsaved == 0 && newest_file(store.dir()).is_some_and(|f| f.seq == seq && f.sum.is_some()) {
            return Ok(());
        }
        let dir = store.dir();
        let tmp = dir.join(format!(".vectors-{seq}.usearch.tmp"));
        if self.mapped {
            // Only a reader maps; a reader never saves.
            return Err(anyhow!("vector index: a mapped graph is not saved"));
        }
        let written = (|| -> Result<PathBuf> {
            self.index.save(&tmp.to_string_lossy()).map_err(err)?;
            let sum = checksum(&tmp)?;
            let file = std::fs::File::options().write(true).open(&tmp)?;
            file.set_modified(stamp(&sum))?;
            file.sync_all()?;
            let final_path = dir.join(format!("vectors-{seq}-{sum}.usearch"));
            std::fs::rename(&tmp, &final_path)?;
            Ok(final_path)
        })();
        let final_path = match written {
            Ok(path) => path,
            Err(e) => {
                // A full disk leaves a partial file: it goes, the file in place stands.
                let _ = std::fs::remove_file(&tmp);
                return Err(e.context(format!("saving the vector index in {}", dir.display())));
            }
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        // The file in place holds none of the removed chunks.
        store.clear_graph_removals()?;
        for file in files(dir) {
            if file.path != final_path {
                let _ = std::fs::remove_file(file.path);
            }
        }
        self.covered = seq;
        self.unsaved = 0;
        self.damage = None;
        Ok(())
    }

    /// The graph's parameters as recorded in the index (`meta.vector_index`).
    pub fn describe(&self) -> serde_json::Value {
        let metric = if self.ty == VectorType::B1 { "hamming" } else { "cos" };
        serde_json::json!({
            "kind": "usearch HNSW", "metric": metric, "scalar": self.ty.name(), "dims": self.dims,
            "connectivity": PARAMS.connectivity, "expansion_add": PARAMS.expansion_add,
            "expansion_search": PARAMS.expansion_search,
        })
    }

    /// Nearest chunks to `query` (a unit vector): (chunk id, cosine similarity), best first.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<&dyn Fn(i64) -> bool>) -> Result<Vec<(i64, f32)>> {
        if self.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let q = quantize(self.ty, query);
        let wanted = self.ty.candidates(k);
        let found = |index: &Index, hidden: &HashSet<u64>| -> Result<Vec<(i64, f32)>> {
            let keep = |key: u64| !hidden.contains(&key) && filter.is_none_or(|f| f(key as i64));
            let keep: Option<&dyn Fn(u64) -> bool> =
                if filter.is_none() && hidden.is_empty() { None } else { Some(&keep) };
            let matches = search_in(index, &q, wanted, keep).map_err(err)?;
            Ok(matches.keys.iter().zip(&matches.distances).map(|(&k, &d)| (k as i64, 1.0 - d)).collect())
        };
        let mut hits = found(&self.index, &self.hidden)?;
        if let Some(added) = self.added.as_ref().filter(|a| a.size() > 0) {
            hits.extend(found(added, &HashSet::new())?);
        }
        if self.ty != VectorType::F16 {
            // Ranked again by exact cosine over SQLite's vectors.
            let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
            hits = self.exact_vectors(&ids)?.into_iter().map(|(id, v)| (id, cosine(query, &v))).collect();
        }
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        Ok(hits)
    }

    /// SQLite's vectors of `ids` (those that have one).
    fn exact_vectors(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        let store = match self.exact.get() {
            Some(store) => store,
            None => {
                let _ = self.exact.set(std::sync::Mutex::new(Store::open_read(&self.dir)?));
                self.exact.get().expect("set above")
            }
        };
        store.lock().unwrap_or_else(|e| e.into_inner()).vectors_of(ids)
    }

    /// The `k` nearest of the chunks `among`, by exact cosine over their stored vectors: for a
    /// filter that allows few chunks, which a walk of the graph would visit most of the graph to
    /// find. Chunks without a vector are passed over.
    pub fn search_among(&self, query: &[f32], k: usize, among: &HashSet<i64>) -> Result<Vec<(i64, f32)>> {
        let ids: Vec<i64> = among.iter().copied().collect();
        let mut scored: Vec<(i64, f32)> =
            self.exact_vectors(&ids)?.into_iter().map(|(id, v)| (id, cosine(query, &v))).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        Ok(scored)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn vector_type(&self) -> VectorType {
        self.ty
    }

    pub fn len(&self) -> usize {
        self.index.size() - self.hidden.len() + self.added.as_ref().map_or(0, |a| a.size())
    }

    /// Whether the graph is the vector file mapped (a reader's), not a copy in memory.
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (norm(a) * norm(b))
}

/// The type the writer recorded for the index (`meta.vector_index`): none for a new index (or
/// one cleared for a rebuild); f16 for one recorded before there were types.
pub(crate) fn recorded_type(store: &Store) -> Option<VectorType> {
    let recorded = store.meta("vector_index").ok().flatten()?;
    let described = serde_json::from_str::<serde_json::Value>(&recorded).ok();
    let scalar = described.as_ref().and_then(|v| v.get("scalar")?.as_str());
    Some(scalar.and_then(|s| VectorType::parse(s).ok()).unwrap_or(VectorType::F16))
}

/// How a vector file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// Loaded (a copy in memory the writer changes), its whole checksum checked; a file of
    /// another type than this one is set aside.
    Load(VectorType),
    /// Mapped, its checksum trusted when the writer's stamp is on it.
    Map,
    /// Mapped, its whole checksum checked.
    MapChecked,
}

/// The modification time the writer gives a file whose checksum is `sum`: an even second of
/// 2001-2004 derived from the checksum (even: a file system of 2-second times keeps it).
fn stamp(sum: &str) -> std::time::SystemTime {
    let n = u64::from_str_radix(sum.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000 + 2 * (n % 50_000_000))
}

/// Whether the file at `path` still has the time its writer stamped it with.
fn has_stamp(path: &Path, sum: &str) -> bool {
    std::fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|t| t == stamp(sum))
}

/// A vector file on disk: `vectors-<seq>-<sum>.usearch` (`vectors-<seq>.usearch` before files
/// carried their checksum).
#[derive(Debug, Clone)]
struct VectorFile {
    path: PathBuf,
    seq: i64,
    sum: Option<String>,
}

fn files(dir: &Path) -> Vec<VectorFile> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let stem = name.strip_prefix("vectors-")?.strip_suffix(".usearch")?;
            let (seq, sum) = match stem.split_once('-') {
                Some((seq, sum)) => (seq, Some(sum.to_string())),
                None => (stem, None),
            };
            Some(VectorFile { path: e.path(), seq: seq.parse().ok()?, sum })
        })
        .collect()
}

fn newest_file(dir: &Path) -> Option<VectorFile> {
    files(dir).into_iter().max_by_key(|f| f.seq)
}

/// The newest vector file in `dir` (the one readers load), if any.
pub fn newest_path(dir: &Path) -> Option<PathBuf> {
    newest_file(dir).map(|f| f.path)
}

/// The first 16 hex digits of the BLAKE3 hash of a file's bytes (about 2 GB/s here: 10 ms for
/// the file of 20,000 chunks of 384 dimensions).
fn checksum(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex()[..16].to_string())
}

pub fn remove_files(dir: &Path) -> Result<()> {
    for file in files(dir) {
        std::fs::remove_file(file.path)?;
    }
    Ok(())
}
