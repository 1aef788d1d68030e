//! The vector index: a usearch HNSW graph keyed by chunk id, derived from the vectors in SQLite.
//!
//! The file is named after the last vector sequence number it covers (`vectors-<seq>.usearch`)
//! and written to a temporary name then renamed, so a file on disk is always whole and says
//! exactly what it holds. Opening it adds whatever SQLite attached after that number and removes
//! the chunks removed since it was written (`graph_removals`); a file that still does not match
//! SQLite (wrong size, dimensions) is rebuilt from SQLite. So the file need not be written after
//! every change: it is written once [`SAVE_AFTER`] changes wait, and when a command ends.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
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
    /// rebuilds it from SQLite if it still disagrees (removals a crash kept in the file).
    pub(crate) fn open(store: &Store, dims: usize) -> Result<VectorIndex> {
        let mut vi = VectorIndex::open_for_search(store, dims)?;
        if vi.index.size() as u64 != store.embedded_chunks()? {
            tracing::warn!("the vector file disagrees with the database; rebuilding it");
            vi.rebuild(store)?;
        }
        Ok(vi)
    }

    /// For readers: the newest vector file, with what SQLite attached and removed since. Should
    /// it still hold a removed chunk (a crash before `graph_removals` existed), searches skip
    /// it, since its row is gone.
    pub fn open_for_search(store: &Store, dims: usize) -> Result<VectorIndex> {
        let index = Index::new(&options(dims)).map_err(err)?;
        let mut vi = VectorIndex { index, dims, covered: 0, unsaved: 0 };
        if let Some((path, seq)) = newest_file(store.dir()) {
            let loaded = vi.index.load(&path.to_string_lossy()).map_err(err);
            match loaded {
                Ok(()) if vi.index.dimensions() == dims => vi.covered = seq,
                _ => {
                    tracing::warn!("vector file {} is unusable; rebuilding from the database", path.display());
                    vi.index = Index::new(&options(dims)).map_err(err)?;
                }
            }
        }
        vi.catch_up(store)?;
        Ok(vi)
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

    /// Writes the graph atomically, marked as covering `store`'s vectors up to now.
    pub fn save(&mut self, store: &WriteStore) -> Result<()> {
        let seq = store.max_vec_seq()?;
        if self.unsaved == 0 && newest_file(store.dir()).is_some_and(|(_, s)| s == seq) {
            return Ok(());
        }
        let dir = store.dir();
        let final_path = dir.join(format!("vectors-{seq}.usearch"));
        let tmp = dir.join(format!(".vectors-{seq}.usearch.tmp"));
        self.index.save(&tmp.to_string_lossy()).map_err(err)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &final_path).context("saving the vector index")?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        // The file in place holds none of the removed chunks.
        store.clear_graph_removals()?;
        for (path, s) in files(dir) {
            if s != seq {
                let _ = std::fs::remove_file(path);
            }
        }
        self.covered = seq;
        self.unsaved = 0;
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

fn files(dir: &Path) -> Vec<(PathBuf, i64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let seq = name.strip_prefix("vectors-")?.strip_suffix(".usearch")?.parse().ok()?;
            Some((e.path(), seq))
        })
        .collect()
}

fn newest_file(dir: &Path) -> Option<(PathBuf, i64)> {
    files(dir).into_iter().max_by_key(|(_, s)| *s)
}

pub fn remove_files(dir: &Path) -> Result<()> {
    for (path, _) in files(dir) {
        std::fs::remove_file(path)?;
    }
    Ok(())
}
