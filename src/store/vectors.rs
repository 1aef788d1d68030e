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

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::docs::VectorChanges;
use super::{Store, WriteStore};

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Params {
    pub connectivity: usize,
    pub expansion_add: usize,
    pub expansion_search: usize,
}

pub const PARAMS: Params = Params { connectivity: 16, expansion_add: 128, expansion_search: 192 };

pub struct VectorIndex {
    index: Index,
    dims: usize,
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
        }
    }
}

/// Changes not in the file after which [`VectorIndex::save_if_due`] writes it. Whoever opens the
/// index redoes them from SQLite (a thousand additions to the graph take a fraction of a
/// second); writing the file costs its whole size (hundreds of MB for a large index), which a
/// watcher used to pay at every saved note.
pub const SAVE_AFTER: usize = 1_000;

fn options(dims: usize) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        metric: MetricKind::Cos,
        quantization: ScalarKind::F16,
        connectivity: PARAMS.connectivity,
        expansion_add: PARAMS.expansion_add,
        expansion_search: PARAMS.expansion_search,
        multi: false,
    }
}

fn err(e: cxx::Exception) -> anyhow::Error {
    anyhow!("vector index: {e}")
}

impl VectorIndex {
    /// For the writer: loads the newest vector file, brings it up to date with `store`, and
    /// rebuilds it from SQLite if it fails a check or still disagrees (removals a crash kept in
    /// the file); a rebuilt graph is written at once, in place of the damaged file.
    pub(crate) fn open(store: &WriteStore, dims: usize) -> Result<VectorIndex> {
        let mut vi = VectorIndex::open_for_search(store, dims)?;
        if vi.damage.is_some() {
            vi.save(store)?;
        }
        Ok(vi)
    }

    /// For readers: the newest vector file, checked, with what SQLite attached and removed
    /// since. A file that fails a check (see [`FileDamage`]) is set aside (logged) and the graph
    /// built from SQLite's vectors in memory; [`VectorIndex::damage`] says why.
    pub fn open_for_search(store: &Store, dims: usize) -> Result<VectorIndex> {
        let index = Index::new(&options(dims)).map_err(err)?;
        let mut vi = VectorIndex { index, dims, covered: 0, unsaved: 0, damage: None };
        // The file is listed before SQLite is read: a file is saved only after the commits it
        // covers, so the snapshot read next has them all.
        let mut found = newest_file(store.dir());
        // One snapshot of SQLite for the checks and the catching up: a writer committing
        // meanwhile cannot make them disagree.
        let snapshot = store.conn.unchecked_transaction()?;
        let mut tries = 0;
        while let Some(file) = found.take() {
            match vi.load(&file, store) {
                Ok(()) => {}
                // Replaced by a newer save while it was being read: the newer one.
                Err(_) if !file.path.exists() && tries < 3 => {
                    tries += 1;
                    vi.index = Index::new(&options(dims)).map_err(err)?;
                    found = newest_file(store.dir());
                }
                Err(damage) => {
                    vi.index = Index::new(&options(dims)).map_err(err)?;
                    vi.covered = 0;
                    vi.damage = Some((file.path, damage));
                }
            }
        }
        vi.catch_up(store)?;
        let database = store.embedded_chunks()?;
        if vi.damage.is_none() && vi.index.size() as u64 != database {
            let file = newest_file(store.dir()).map(|f| f.path).unwrap_or_default();
            vi.damage = Some((file, FileDamage::Count { file: vi.index.size() as u64, database }));
            vi.rebuild(store)?;
        }
        drop(snapshot);
        if let Some((path, damage)) = &vi.damage {
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
        let index = Index::new(&options(dims)).map_err(err)?;
        let mut vi = VectorIndex { index, dims, covered: 0, unsaved: 0, damage: None };
        vi.rebuild(store)?;
        Ok(vi)
    }

    /// Loads `file` after its cheap checks: its checksum, a sequence number SQLite has reached,
    /// its dimensions.
    fn load(&mut self, file: &VectorFile, store: &Store) -> std::result::Result<(), FileDamage> {
        let unreadable = |e: &dyn fmt::Display| FileDamage::Unreadable { error: e.to_string() };
        if let Some(expected) = &file.sum {
            let found = checksum(&file.path).map_err(|e| unreadable(&e))?;
            if &found != expected {
                return Err(FileDamage::Checksum { expected: expected.clone(), found });
            }
        }
        let database = store.max_vec_seq().map_err(|e| unreadable(&e))?;
        if file.seq > database {
            return Err(FileDamage::Ahead { file: file.seq, database });
        }
        self.index.load(&file.path.to_string_lossy()).map_err(|e| unreadable(&e))?;
        if self.index.dimensions() != self.dims {
            return Err(FileDamage::Dims { file: self.index.dimensions(), index: self.dims });
        }
        self.covered = file.seq;
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
        if self.index.size() as u64 != store.embedded_chunks()? {
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
        let removed: Vec<i64> =
            store.graph_removals()?.into_iter().filter(|&id| self.index.contains(id as u64)).collect();
        self.apply(&VectorChanges { added, removed, ..VectorChanges::default() })?;
        self.covered = last;
        Ok(())
    }

    /// Rebuilds the graph from every vector in SQLite.
    pub fn rebuild(&mut self, store: &Store) -> Result<()> {
        self.index = Index::new(&options(self.dims)).map_err(err)?;
        self.covered = 0;
        self.catch_up(store)?;
        self.unsaved = self.unsaved.max(1);
        Ok(())
    }

    pub fn apply(&mut self, changes: &VectorChanges) -> Result<()> {
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
            self.index.add(*id as u64, v).map_err(err)?;
        }
        Ok(())
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
        let written = (|| -> Result<PathBuf> {
            self.index.save(&tmp.to_string_lossy()).map_err(err)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            let sum = checksum(&tmp)?;
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
        serde_json::json!({
            "kind": "usearch HNSW", "metric": "cos", "scalar": "f16", "dims": self.dims,
            "connectivity": PARAMS.connectivity, "expansion_add": PARAMS.expansion_add,
            "expansion_search": PARAMS.expansion_search,
        })
    }

    /// Nearest chunks to `query` (a unit vector): (chunk id, cosine similarity), best first.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<&dyn Fn(i64) -> bool>) -> Result<Vec<(i64, f32)>> {
        if self.index.size() == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let matches = match filter {
            Some(f) => self.index.filtered_search(query, k, |key| f(key as i64)).map_err(err)?,
            None => self.index.search(query, k).map_err(err)?,
        };
        Ok(matches.keys.iter().zip(&matches.distances).map(|(&k, &d)| (k as i64, 1.0 - d)).collect())
    }

    /// The `k` nearest of the chunks `among`, by exact cosine over their stored vectors: for a
    /// filter that allows few chunks, which a walk of the graph would visit most of the graph to
    /// find. Chunks without a vector are passed over.
    pub fn search_among(&self, query: &[f32], k: usize, among: &HashSet<i64>) -> Result<Vec<(i64, f32)>> {
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let qn = norm(query);
        let mut buf = vec![0f32; self.dims];
        let mut scored = Vec::with_capacity(among.len());
        for &id in among {
            if id < 0 || !self.index.contains(id as u64) {
                continue;
            }
            if self.index.get(id as u64, &mut buf).map_err(err)? == 0 {
                continue;
            }
            let dot: f32 = query.iter().zip(&buf).map(|(a, b)| a * b).sum();
            scored.push((id, dot / (qn * norm(&buf))));
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        Ok(scored)
    }

    /// Exact search, for measuring the graph's recall.
    pub fn exact_search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>> {
        let matches = self.index.exact_search(query, k).map_err(err)?;
        Ok(matches.keys.iter().zip(&matches.distances).map(|(&k, &d)| (k as i64, 1.0 - d)).collect())
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
