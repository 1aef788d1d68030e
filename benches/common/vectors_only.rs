//! The vector graph alone, without SQLite (`cargo bench --bench search -- N DIMS --vectors-only`):
//! N clustered unit vectors, each made again from its id (so a run of 10 million needs no copy
//! of them in memory), a usearch graph of each vector type built from them, then per type: build
//! time and rate, file bytes, the time to open the file as a reader (mapped) and its RSS after
//! the queries, search latency (p50/p95, with the rescoring of the candidates from f32 vectors
//! for i8 and binary) and recall@10 against exact f32 search.
//!
//! i8 vectors are rescaled before rounding: a unit vector of 1,024 dimensions has components of
//! about 0.03, which usearch's own f32 -> i8 cast (x * 127) rounds to a few levels (recall 0.79,
//! ../shared/guides/machine.md); here x * sqrt(dims) * 32, clamped to +-127 (4 standard deviations).
//! Binary vectors keep the sign of each component (Hamming distance), and the top `rescore`
//! candidates are ranked again by exact cosine.

use std::time::Instant;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind, b1x8};

use super::{Rng, normalize};

/// Where the vectors come from (`--data=latent|clusters`).
pub enum Data {
    /// 256 random centres in all `dims` dimensions, each vector a centre plus noise larger than
    /// it: nearly random points in 1,024 dimensions (local intrinsic dimension 90-140, a
    /// vector's nearest neighbour at cosine ~0.2), far harder for a graph than text embeddings
    /// (the first benches; `target/bench-vectors-N-DIMS-TYPE.usearch`).
    Clusters { centers: Vec<Vec<f32>> },
    /// Text embeddings' shape: a point of a 32-dimension latent space (256 Gaussian clusters,
    /// spread 0.8) mapped into `dims` dimensions, plus isotropic noise, plus a direction every
    /// vector shares (real embeddings' mean cosine is 0.1-0.2). Chosen against MiniLM's vectors
    /// of scifact, cosqa and known-item (15k, 6k, 9k chunks): nearest neighbour at cosine
    /// 0.71-0.84, 10th 0.57, 100th 0.38-0.42, local intrinsic dimension (MLE, k = 20) 9-17; this
    /// data at 15,000 x 1,024: 0.67, 0.60, 0.44, 22 (harder than the real ones on each).
    Latent { basis: Vec<Vec<f32>>, centres: Vec<Vec<f32>>, shared: Vec<f32> },
}

const LATENT: usize = 32;

impl Data {
    pub fn new(latent: bool, dims: usize) -> Data {
        let mut rng = Rng(0x9E3779B97F4A7C15);
        if !latent {
            let centers = (0..256).map(|_| normalize((0..dims).map(|_| rng.unit()).collect())).collect();
            return Data::Clusters { centers };
        }
        let scale = 1.0 / (dims as f32).sqrt();
        let basis = (0..LATENT).map(|_| (0..dims).map(|_| gauss(&mut rng) * scale).collect()).collect();
        let centres = (0..256).map(|_| (0..LATENT).map(|_| gauss(&mut rng)).collect()).collect();
        let shared = normalize((0..dims).map(|_| gauss(&mut rng)).collect());
        Data::Latent { basis, centres, shared }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Data::Clusters { .. } => "clusters",
            Data::Latent { .. } => "latent",
        }
    }

    /// The vector of `id` (and, with the high bit set, of query `id`).
    pub fn vector(&self, id: u64, dims: usize) -> Vec<f32> {
        let mut rng = Rng(id.wrapping_mul(0x9E3779B97F4A7C15) | 1);
        for _ in 0..4 {
            rng.next();
        }
        match self {
            Data::Clusters { centers } => {
                let c = &centers[rng.below(centers.len())];
                let scale = 0.6 / (dims as f32).sqrt() * 8.0;
                normalize(c.iter().map(|x| x + scale * rng.unit()).collect())
            }
            Data::Latent { basis, centres, shared } => {
                let c = &centres[rng.below(centres.len())];
                let noise = 0.6 * (LATENT as f32).sqrt() / (dims as f32).sqrt();
                let mut v: Vec<f32> = (0..dims).map(|_| noise * gauss(&mut rng)).collect();
                for (row, centre) in basis.iter().zip(c) {
                    let z = centre + 0.8 * gauss(&mut rng);
                    v.iter_mut().zip(row).for_each(|(x, b)| *x += z * b);
                }
                let v = normalize(v);
                normalize(v.iter().zip(shared).map(|(x, s)| x + 0.3 * s).collect())
            }
        }
    }
}

/// A standard normal sample (Box-Muller).
fn gauss(rng: &mut Rng) -> f32 {
    let u1 = ((rng.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

pub fn to_i8(v: &[f32]) -> Vec<i8> {
    let s = (v.len() as f32).sqrt() * 32.0;
    v.iter().map(|x| (x * s).round().clamp(-127.0, 127.0) as i8).collect()
}

pub fn to_bits(v: &[f32]) -> Vec<b1x8> {
    let mut out = vec![b1x8(0); v.len().div_ceil(8)];
    for (i, x) in v.iter().enumerate() {
        if *x > 0.0 {
            out[i / 8].0 |= 1 << (i % 8);
        }
    }
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    F16,
    I8,
    B1,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::F16 => "f16",
            Kind::I8 => "i8",
            Kind::B1 => "b1",
        }
    }
    fn options(self, dims: usize) -> IndexOptions {
        let (metric, quantization) = match self {
            Kind::F16 => (MetricKind::Cos, ScalarKind::F16),
            Kind::I8 => (MetricKind::Cos, ScalarKind::I8),
            Kind::B1 => (MetricKind::Hamming, ScalarKind::B1),
        };
        IndexOptions {
            dimensions: dims,
            metric,
            quantization,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 192,
            multi: false,
            enable_key_lookups: true,
        }
    }
    fn add(self, index: &Index, id: u64, v: &[f32]) {
        match self {
            Kind::F16 => index.add(id, v).unwrap(),
            Kind::I8 => index.add(id, &to_i8(v)).unwrap(),
            Kind::B1 => index.add(id, &to_bits(v)).unwrap(),
        }
    }
    fn search(self, index: &Index, q: &[f32], k: usize) -> Vec<u64> {
        match self {
            Kind::F16 => index.search(q, k).unwrap().keys,
            Kind::I8 => index.search(&to_i8(q), k).unwrap().keys,
            Kind::B1 => index.search(&to_bits(q), k).unwrap().keys,
        }
    }
}

/// The exact top 10 (cosine, id) of each query among the vectors `ids` made again by `data`
/// (every vector once, on every core).
pub fn exact_top10(data: &Data, dims: usize, ids: std::ops::Range<u64>, qs: &[Vec<f32>]) -> Vec<Vec<(f32, u64)>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let parts: Vec<Vec<Vec<(f32, u64)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ids = ids.clone();
                s.spawn(move || {
                    let mut best = vec![Vec::<(f32, u64)>::new(); qs.len()];
                    let mut id = ids.start + t;
                    while id < ids.end {
                        let v = data.vector(id, dims);
                        for (b, q) in best.iter_mut().zip(qs) {
                            let d = dot(q, &v);
                            if b.len() < 10 || d > b[9].0 {
                                b.push((d, id));
                                b.sort_by(|x, y| y.0.total_cmp(&x.0));
                                b.truncate(10);
                            }
                        }
                        id += threads;
                    }
                    best
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (0..qs.len())
        .map(|i| {
            let mut all: Vec<(f32, u64)> = parts.iter().flat_map(|p| p[i].clone()).collect();
            all.sort_by(|x, y| y.0.total_cmp(&x.0));
            all.truncate(10);
            all
        })
        .collect()
}

pub fn run(
    n: usize,
    dims: usize,
    kinds: &[Kind],
    queries: usize,
    data: &Data,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    let qs: Vec<Vec<f32>> = (0..queries as u64).map(|i| data.vector((1 << 63) | i, dims)).collect();
    // Exact f32 search: every vector made again once, against every query.
    let t = Instant::now();
    let exact = exact_top10(data, dims, 0..n as u64, &qs);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!("exact f32 top 10 of {queries} queries over {n} vectors in {:.0} s", t.elapsed().as_secs_f64());
    for &kind in kinds {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(match data {
            Data::Clusters { .. } => format!("target/bench-vectors-{n}-{dims}-{}.usearch", kind.name()),
            Data::Latent { .. } => format!("target/bench-vectors-{n}-{dims}-{}-latent.usearch", kind.name()),
        });
        if !path.exists() {
            let t = Instant::now();
            let index = Index::new(&kind.options(dims)).unwrap();
            index.reserve_capacity_and_threads(n, threads).unwrap();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let index = &index;
                    s.spawn(move || {
                        let mut id = t as u64;
                        while id < n as u64 {
                            kind.add(index, id, &data.vector(id, dims));
                            id += threads as u64;
                        }
                    });
                }
            });
            let secs = t.elapsed().as_secs_f64();
            eprintln!("{}: built {n} in {secs:.0} s ({:.0}/s on {threads} threads)", kind.name(), n as f64 / secs);
            out.insert(format!("{}_build_per_s", kind.name()), (n as f64 / secs).into());
            let tmp = path.with_extension("tmp");
            index.save(&tmp.to_string_lossy()).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        let bytes = std::fs::metadata(&path).unwrap().len();
        let rss0 = rss_mb();
        let t = Instant::now();
        let index = Index::new(&kind.options(dims)).unwrap();
        index.view(&path.to_string_lossy()).unwrap();
        let open_ms = t.elapsed().as_secs_f64() * 1000.0;
        if kind == Kind::F16 {
            // Every vector scanned (what qsearch does for a graph of up to
            // `vectors::EXACT_SCALARS` scalars): its cost against the graph's walk below.
            let ms: Vec<f64> = qs
                .iter()
                .map(|q| {
                    let t = Instant::now();
                    std::hint::black_box(index.exact_search(q, 10).unwrap());
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            let (p50, p95) = super::percentiles(ms);
            eprintln!("f16 exact scan    search p50 {p50:.2} ms p95 {p95:.2} ms");
            out.insert("f16_exact_p50_ms".into(), p50.into());
        }
        let rescores: &[usize] = if kind == Kind::F16 { &[0] } else { &[0, 30, 50, 100, 200] };
        for &rescore in rescores {
            let mut ms = Vec::new();
            let mut recall = 0.0;
            for (q, truth) in qs.iter().zip(&exact) {
                let t = Instant::now();
                let mut keys = kind.search(&index, q, rescore.max(10));
                // The graph's search alone: the rescoring below makes the candidates' vectors
                // again, which SQLite's reads replace in the index (timed in the full bench).
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if rescore > 0 {
                    // The f32 vectors, as SQLite would give them (made again here).
                    let mut scored: Vec<(f32, u64)> =
                        keys.iter().map(|&id| (dot(q, &data.vector(id, dims)), id)).collect();
                    scored.sort_by(|x, y| y.0.total_cmp(&x.0));
                    keys = scored.into_iter().take(10).map(|x| x.1).collect();
                }
                recall += truth.iter().filter(|x| keys.contains(&x.1)).count() as f64 / truth.len() as f64;
            }
            recall /= qs.len() as f64;
            let (p50, p95) = super::percentiles(ms);
            let name = if rescore > 0 { format!("{}+rescore{rescore}", kind.name()) } else { kind.name().into() };
            eprintln!(
                "{name:<16} file {:.0} MB ({:.0} B/vector), view {open_ms:.1} ms, search p50 {p50:.2} ms p95 {p95:.2} ms, recall@10 {recall:.4}, RSS +{:.0} MB",
                bytes as f64 / 1e6,
                bytes as f64 / n as f64,
                rss_mb() - rss0
            );
            out.insert(format!("{name}_recall_at_10"), recall.into());
            out.insert(format!("{name}_p50_ms"), p50.into());
            out.insert(format!("{name}_p95_ms"), p95.into());
            out.insert(format!("{name}_file_bytes"), bytes.into());
            out.insert(format!("{name}_view_ms"), open_ms.into());
        }
    }
}
