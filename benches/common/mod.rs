//! The synthetic index the search benchmarks share: N chunks of generated text over a Zipfian
//! vocabulary, with vectors shaped like text embeddings (`vectors_only::Data::Latent`), written
//! through the `Writer` like any index and kept in target/bench-search-v5-<N>-<DIMS> so a rerun
//! skips building it.

#![allow(dead_code)]

pub mod vectors_only;

use std::path::PathBuf;
use std::time::Instant;

use qsearch::embed::stand_in::StandIn;
use qsearch::indexer::{self, Writer};
use qsearch::store::docs::{NewChunk, NewDocument};
use qsearch::store::lock::Role;
use qsearch::store::vectors::VectorType;

/// A small deterministic generator (xorshift), so runs are comparable.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A vocabulary with roughly Zipfian frequencies (log-uniform ranks over 5,000 words), like text.
pub fn word(rng: &mut Rng) -> String {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    format!("w{}", (5000f64.powf(u) as usize).saturating_sub(1))
}

/// The index and what makes vectors like its own.
pub struct Synthetic {
    pub dir: PathBuf,
    pub rng: Rng,
    data: vectors_only::Data,
    dims: usize,
    /// The next vector's id (queries count down from the top bit).
    next: u64,
}

impl Synthetic {
    /// The next vector of the index's kind (shaped like text embeddings: `vectors_only::Data`).
    pub fn sample(&mut self) -> Vec<f32> {
        self.next += 1;
        self.data.vector(self.next, self.dims)
    }

    /// The exact top 10 chunk ids of each query vector (chunk ids are 1..=n: the index's vectors
    /// were made in chunk order).
    pub fn exact_top10(&self, n: usize, qs: &[Vec<f32>]) -> Vec<Vec<i64>> {
        let top = vectors_only::exact_top10(&self.data, self.dims, 1..n as u64 + 1, qs);
        top.into_iter().map(|t| t.into_iter().map(|(_, id)| id as i64).collect()).collect()
    }

    /// `count` queries of three words and a document tag, each with a vector.
    pub fn queries(&mut self, count: usize) -> Vec<(String, Vec<f32>)> {
        (0..count)
            .map(|i| {
                let words: Vec<String> = (0..3).map(|_| word(&mut self.rng)).collect();
                (format!("{} doc{}", words.join(" "), i * 3), self.data.vector((1 << 63) | i as u64, self.dims))
            })
            .collect()
    }
}

/// Opens (building it the first time) the index of `n` chunks with `dims`-dimension vectors, its
/// vector file of type `ty` (the default for a new index when `None`).
pub fn synthetic_index(n: usize, dims: usize, ty: Option<VectorType>) -> Synthetic {
    // v8: vectors shaped like text embeddings, f16 planes in SQLite, 32 KiB pages, the kept count.
    let ty = ty.unwrap_or_default();
    let name = format!("target/bench-search-v8-{}-{n}-{dims}", ty.name());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    let rng = Rng(0x9E3779B97F4A7C15);
    let data = vectors_only::Data::new(true, dims);
    let mut s = Synthetic { dir, rng, data, dims, next: 0 };
    if !s.dir.join(qsearch::store::DB_FILE).exists() {
        let t = Instant::now();
        // Written through the writer like any index; the stand-in embedder only names the
        // vectors' model: they are the random ones below.
        let settings = indexer::Settings {
            role: Role::Index,
            rebuild: indexer::Rebuild::Always,
            options: indexer::Options { vector_type: Some(ty), ..indexer::Options::default() },
        };
        let mut writer = Writer::open(&s.dir, settings, |_| Ok(Box::new(StandIn::new(dims)))).unwrap();
        let root = writer.add_root(&s.dir).unwrap();
        let per_doc = 10;
        for d in 0..n / per_doc {
            let path = s.dir.join(format!("docs/{d}.md"));
            let chunks: Vec<NewChunk> = (0..per_doc)
                .map(|seq| {
                    let text: String = (0..60).map(|_| word(&mut s.rng)).collect::<Vec<_>>().join(" ");
                    let end = text.len();
                    NewChunk::new(seq, format!("Doc {d}"), 0, end, 1, 1, format!("{text} doc{d} part{seq}"))
                })
                .collect();
            // For the filters: one tag of ten, and a day per document (document d modified on day d).
            let (tags, mtime_ns) = (vec![format!("t{}", d % 10)], d as i64 * 86_400 * 1_000_000_000);
            let doc = NewDocument {
                root_id: root,
                path,
                size: 1,
                mtime_ns,
                hash: "x".into(),
                kind: "markdown",
                title: "t".into(),
                lossy: false,
                tags,
                stated_ns: None,
            };
            let items: Vec<(String, Vec<f32>)> = chunks.iter().map(|c| (c.hash.clone(), s.sample())).collect();
            writer.write_document(doc, chunks).unwrap();
            writer.attach_vectors(&items).unwrap();
        }
        writer.save().unwrap();
        eprintln!("built {n} chunks x {dims} dims in {:.0}s", t.elapsed().as_secs_f64());
    }
    s
}

/// (p50, p95) of timings in milliseconds.
pub fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() * 95 / 100])
}
