//! Search latency and HNSW recall at scale, beyond the query's embedding: an index of N chunks
//! (default 100,000) with clustered random unit vectors and generated text, then hybrid,
//! semantic and keyword queries timed end to end through `Searcher::search`, and recall@10 of
//! the graph against exact search.
//!
//!     cargo bench --bench search -- [CHUNKS] [DIMS]
//!
//! The index is kept in target/bench-search-<N>-<DIMS> so a rerun skips building it.

use std::path::PathBuf;
use std::time::Instant;

use qsearch::embed::stand_in::StandIn;
use qsearch::indexer::{self, Writer};
use qsearch::search::{Mode, Query, Searcher};
use qsearch::store::docs::{NewChunk, NewDocument};
use qsearch::store::lock::Role;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A vocabulary with roughly Zipfian frequencies (log-uniform ranks over 5,000 words), like text.
fn word(rng: &mut Rng) -> String {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    format!("w{}", (5000f64.powf(u) as usize).saturating_sub(1))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dims: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-search-v3-{n}-{dims}"));
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let centers: Vec<Vec<f32>> = (0..256).map(|_| normalize((0..dims).map(|_| rng.unit()).collect())).collect();
    let sample = |rng: &mut Rng| -> Vec<f32> {
        let c = &centers[(rng.next() % 256) as usize];
        normalize(c.iter().map(|x| x + 0.6 * rng.unit() / (dims as f32).sqrt() * 8.0).collect())
    };
    if !dir.join(qsearch::store::DB_FILE).exists() {
        let t = Instant::now();
        // Written through the writer like any index; the stand-in embedder only names the
        // vectors' model: they are the random ones below.
        let settings = indexer::Settings { role: Role::Index, rebuild: true, options: indexer::Options::default() };
        let mut writer = Writer::open(&dir, settings, |_| Ok(Box::new(StandIn::new(dims)))).unwrap();
        let root = writer.add_root(&dir).unwrap();
        let per_doc = 10;
        for d in 0..n / per_doc {
            let path = dir.join(format!("docs/{d}.md"));
            let chunks: Vec<NewChunk> = (0..per_doc)
                .map(|s| {
                    let text: String = (0..60).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" ");
                    NewChunk {
                        seq: s,
                        hash: format!("{d}-{s}"),
                        heading: format!("Doc {d}"),
                        start_byte: 0,
                        end_byte: text.len(),
                        start_line: 1,
                        end_line: 1,
                        text: format!("{text} doc{d} part{s}"),
                    }
                })
                .collect();
            let doc = NewDocument { root_id: root, path, size: 1, mtime_ns: 0, hash: "x".into(), kind: "markdown", title: "t".into(), lossy: false };
            let items: Vec<(String, Vec<f32>)> = chunks.iter().map(|c| (c.hash.clone(), sample(&mut rng))).collect();
            writer.write_document(doc, chunks).unwrap();
            writer.attach_vectors(&items).unwrap();
        }
        writer.save().unwrap();
        eprintln!("built {n} chunks x {dims} dims in {:.0}s", t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let mut searcher = Searcher::open(&dir).unwrap();
    searcher.load_vectors().unwrap();
    eprintln!("opened the index (vector file load) in {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);
    let queries: Vec<(String, Vec<f32>)> = (0..200)
        .map(|i| {
            let words: Vec<String> = (0..3).map(|_| word(&mut rng)).collect();
            (format!("{} doc{}", words.join(" "), i * 3), sample(&mut rng))
        })
        .collect();
    let mut out = serde_json::Map::new();
    out.insert("chunks".into(), n.into());
    out.insert("dims".into(), dims.into());
    for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
        let mut ms: Vec<f64> = queries
            .iter()
            .map(|(text, v)| {
                let q = Query { text: text.clone(), k: 10, mode, path_glob: None, per_doc: 2 };
                let t = Instant::now();
                let r = searcher.search(&q, Some(v)).unwrap();
                std::hint::black_box(r);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let (p50, p95) = (ms[ms.len() / 2], ms[ms.len() * 95 / 100]);
        eprintln!("{mode:<8} p50 {p50:.2} ms  p95 {p95:.2} ms");
        out.insert(format!("{mode}_p50_ms"), p50.into());
        out.insert(format!("{mode}_p95_ms"), p95.into());
    }
    // The TUI's answer for one keystroke (50 hits, each with its neighbouring chunks): keyword at
    // once, hybrid once the query vector is there (its embedding is timed in benches/embed.rs).
    for mode in [Mode::Keyword, Mode::Hybrid] {
        let mut ms: Vec<f64> = queries
            .iter()
            .map(|(text, v)| {
                let q = Query { text: text.clone(), k: 50, mode, path_glob: None, per_doc: 2 };
                let t = Instant::now();
                let found = match mode {
                    Mode::Keyword => qsearch::search::answer::keyword_answer(&searcher, &q),
                    _ => qsearch::search::answer::answer(&searcher, &q, Some(v)),
                };
                std::hint::black_box(found.unwrap());
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let (p50, p95) = (ms[ms.len() / 2], ms[ms.len() * 95 / 100]);
        eprintln!("tui {mode:<8} answer (50 hits + neighbours) p50 {p50:.2} ms  p95 {p95:.2} ms");
        out.insert(format!("tui_{mode}_p50_ms"), p50.into());
        out.insert(format!("tui_{mode}_p95_ms"), p95.into());
    }
    // Recall@10 of the HNSW graph against exact search, on the same index.
    let vi = searcher.vectors().expect("the vector graph is loaded");
    let mut recall = 0.0;
    for (_, v) in &queries {
        let approx: std::collections::HashSet<i64> = vi.search(v, 10, None).unwrap().into_iter().map(|x| x.0).collect();
        let exact = vi.exact_search(v, 10).unwrap();
        recall += exact.iter().filter(|x| approx.contains(&x.0)).count() as f64 / exact.len() as f64;
    }
    recall /= queries.len() as f64;
    eprintln!("HNSW recall@10 vs exact: {recall:.4}");
    out.insert("recall_at_10".into(), recall.into());
    println!("{}", serde_json::Value::Object(out));
}
