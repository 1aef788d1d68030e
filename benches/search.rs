//! Search latency and HNSW recall at scale, beyond the query's embedding: an index of N chunks
//! (default 100,000) with clustered random unit vectors and generated text, then hybrid,
//! semantic and keyword queries timed end to end through `Searcher::search`, and recall@10 of
//! the graph against exact search.
//!
//!     cargo bench --bench search -- [CHUNKS] [DIMS] [--vector-type=i8|f16|b1]
//!
//! The index is kept in target/bench-search-v8-<TYPE>-<N>-<DIMS> so a rerun skips building it.
//!
//!     cargo bench --bench search -- [CHUNKS] [DIMS] --vectors-only [--kinds=f16,i8,b1] [--queries=100]
//!         [--data=latent|clusters]
//!
//! measures the vector graph alone, per vector type (benches/common/vectors_only.rs), on vectors
//! shaped like text embeddings (`latent`, the default) or the first benches' `clusters`.

mod common;

use std::time::Instant;

use qsearch::search::{Filter, Mode, Query, Searcher};
use qsearch::session::{self, Around, Session};
use qsearch::store::vectors::VectorType;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dims: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let flags: Vec<String> = std::env::args().filter(|a| a.starts_with("--")).collect();
    if flags.iter().any(|f| f == "--vectors-only") {
        use common::vectors_only::Kind;
        let kinds: Vec<Kind> = flags
            .iter()
            .filter_map(|f| f.strip_prefix("--kinds="))
            .flat_map(|k| k.split(','))
            .map(|k| match k {
                "f16" => Kind::F16,
                "i8" => Kind::I8,
                "b1" => Kind::B1,
                other => panic!("unknown vector kind {other} (f16, i8, b1)"),
            })
            .collect();
        let kinds = if kinds.is_empty() { vec![Kind::F16, Kind::I8, Kind::B1] } else { kinds };
        let queries = flags.iter().find_map(|f| f.strip_prefix("--queries=")?.parse().ok()).unwrap_or(100);
        let mut out = serde_json::Map::new();
        out.insert("chunks".into(), n.into());
        out.insert("dims".into(), dims.into());
        let data = match flags.iter().find_map(|f| f.strip_prefix("--data=")).unwrap_or("latent") {
            "latent" => common::vectors_only::Data::new(true, dims),
            "clusters" => common::vectors_only::Data::new(false, dims),
            other => panic!("unknown --data={other} (latent, clusters)"),
        };
        out.insert("data".into(), data.name().into());
        common::vectors_only::run(n, dims, &kinds, queries, &data, &mut out);
        println!("{}", serde_json::Value::Object(out));
        return;
    }
    let ty = flags.iter().find_map(|f| f.strip_prefix("--vector-type=")).map(|t| VectorType::parse(t).unwrap());
    let mut synthetic = common::synthetic_index(n, dims, ty);
    let dir = synthetic.dir.clone();
    if flags.iter().any(|f| f == "--keyword-cut") {
        keyword_cut(&dir, &synthetic.queries(200));
        return;
    }
    let mut out_early = serde_json::Map::new();
    let rss_before = rss_mb();
    let t = Instant::now();
    let mut searcher = Searcher::open(&dir).unwrap();
    let sqlite_ms = t.elapsed().as_secs_f64() * 1000.0;
    searcher.load_vectors().unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mapped = searcher.vectors().is_some_and(|v| v.is_mapped());
    eprintln!(
        "opened the index (vector file {}) in {open_ms:.1} ms ({sqlite_ms:.1} ms of it SQLite's)",
        if mapped { "mapped" } else { "loaded" }
    );
    // What a reader's check of its graph against SQLite costs: the count the database keeps
    // (read at every open) against counting the chunks (what an open did before).
    let store = qsearch::store::Store::open_read(&dir).unwrap();
    let t = Instant::now();
    let counted = store.count_embedded_chunks().unwrap();
    let counted_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let kept = store.embedded_chunks().unwrap();
    let kept_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(counted, kept, "the kept count and the chunks disagree");
    eprintln!("vectors in SQLite: counted in {counted_ms:.2} ms, the kept count read in {kept_ms:.3} ms");
    drop(store);
    // The open again, beside usearch's view of the same file with its table of keys (what a
    // reader's open built before session 19) and without (what it builds now), in turns.
    let vector_file = qsearch::store::vectors::newest_path(&dir).expect("a vector file");
    let (mut opens, mut with_keys, mut without) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let mut again = Searcher::open(&dir).unwrap();
        again.load_vectors().unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(again);
        with_keys.push(view_ms(&vector_file, true));
        without.push(view_ms(&vector_file, false));
    }
    let show = |v: &[f64]| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(" ");
    eprintln!(
        "open again {} ms; usearch's view with its key table {} ms, without {} ms",
        show(&opens),
        show(&with_keys),
        show(&without)
    );
    out_early.insert("open_again_ms".into(), opens.into());
    out_early.insert("view_with_keys_ms".into(), with_keys.into());
    out_early.insert("view_without_keys_ms".into(), without.into());
    let queries = synthetic.queries(200);
    let mut out = out_early;
    out.insert("chunks".into(), n.into());
    out.insert("dims".into(), dims.into());
    out.insert("open_ms".into(), open_ms.into());
    // The index on disk, by file.
    let mut total = 0u64;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            total += meta.len();
            eprintln!(
                "  {:<50} {:>14} bytes ({:.0} B/chunk)",
                entry.file_name().to_string_lossy(),
                meta.len(),
                meta.len() as f64 / n as f64
            );
        }
    }
    eprintln!("index on disk: {total} bytes, {:.0} B/chunk", total as f64 / n as f64);
    out.insert("disk_bytes_per_chunk".into(), (total as f64 / n as f64).into());
    stored_vectors(&dir, &mut out);
    for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
        let mut ms: Vec<f64> = queries
            .iter()
            .map(|(text, v)| {
                let q = Query { text: text.clone(), k: 10, mode, filter: Default::default(), per_doc: 2 };
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
    // The TUI's answer for one keystroke (50 hits, each with its neighbouring chunks), through the
    // query session as the TUI asks it: keyword at once, hybrid once the query vector is there
    // (its embedding is timed in benches/embed.rs).
    let setup = session::Setup { index_dir: dir.clone(), model: Default::default(), defaults: Default::default() };
    let session = Session::new(setup, None);
    session.with_searcher(|s| s.load_vectors()).unwrap();
    let around = Around { lines: 0, neighbours: true };
    for mode in [Mode::Keyword, Mode::Hybrid] {
        let mut ms: Vec<f64> = queries
            .iter()
            .map(|(text, v)| {
                let q = Query { text: text.clone(), k: 50, mode, filter: Default::default(), per_doc: 2 };
                let t = Instant::now();
                let found = match mode {
                    Mode::Keyword => session.keyword_answer(&q, around),
                    _ => session.answer(&q, Some(v), around),
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
    // Filters (hybrid, k = 10): the first search with a filter works out the chunks it allows
    // (two filters alternate, so each search is a first one); the next ones with the same
    // filter reuse them, as the terminal UI does while the query is typed. One document is 10
    // chunks (searched by meaning chunk by chunk), `path` and `tag` about 10% of the index
    // (a filtered walk of the graph), `since` half of it.
    let docs = (n / 10) as i64;
    let path = |glob: &str| Filter { path: Some(glob.into()), ..Filter::default() };
    let filters = [
        ("one-document", path("docs/1234.md"), path("docs/2345.md")),
        ("path", path("docs/1*.md"), path("docs/2*.md")),
        (
            "tag",
            Filter { tags: vec!["t3".into()], ..Filter::default() },
            Filter { tags: vec!["t4".into()], ..Filter::default() },
        ),
        (
            "since",
            Filter { since_ns: Some(docs / 2 * 86_400_000_000_000), ..Filter::default() },
            Filter { since_ns: Some(docs / 3 * 86_400_000_000_000), ..Filter::default() },
        ),
    ];
    for (name, a, b) in filters {
        for (kind, alternate) in [("first", true), ("again", false)] {
            let ms: Vec<f64> = queries
                .iter()
                .enumerate()
                .map(|(i, (text, v))| {
                    let filter = if alternate && i % 2 == 1 { b.clone() } else { a.clone() };
                    let q = Query { text: text.clone(), k: 10, mode: Mode::Hybrid, filter, per_doc: 2 };
                    let t = Instant::now();
                    std::hint::black_box(searcher.search(&q, Some(v)).unwrap());
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            let (p50, p95) = common::percentiles(ms);
            eprintln!("hybrid, {name} filter, {kind}: p50 {p50:.2} ms  p95 {p95:.2} ms");
            out.insert(format!("filter_{name}_{kind}_p50_ms"), p50.into());
        }
    }
    // A reader's memory after its queries (before the recall below reads every vector): its
    // own (anonymous) pages, and the pages of mapped files it touched, which the page cache
    // shares with every other process and takes back under pressure.
    let (anon, file) = (status_mb("RssAnon:"), status_mb("RssFile:"));
    eprintln!("reader RSS after the queries: {anon:.0} MB own + {file:.0} MB of mapped files");
    out.insert("reader_rss_anon_mb".into(), anon.into());
    out.insert("reader_rss_file_mb".into(), file.into());
    // Recall@10 of the graph's answers (rescored where the type is not f16) against exact f32
    // search over the vectors made again.
    let vi = searcher.vectors().expect("the vector graph is loaded");
    let t = Instant::now();
    let vectors: Vec<Vec<f32>> = queries.iter().map(|q| q.1.clone()).collect();
    let exact = synthetic.exact_top10(n, &vectors);
    eprintln!("exact f32 top 10 of {} queries in {:.0} s", queries.len(), t.elapsed().as_secs_f64());
    let mut recall = 0.0;
    for ((_, v), exact) in queries.iter().zip(&exact) {
        let approx: std::collections::HashSet<i64> = vi.search(v, 10, None).unwrap().into_iter().map(|x| x.0).collect();
        recall += exact.iter().filter(|x| approx.contains(x)).count() as f64 / exact.len() as f64;
    }
    recall /= queries.len() as f64;
    eprintln!("HNSW recall@10 vs exact: {recall:.4}");
    out.insert("recall_at_10".into(), recall.into());
    let rss = rss_mb();
    eprintln!("RSS after every query above: {rss:.0} MB ({:.0} MB since the open)", rss - rss_before);
    out.insert("rss_mb".into(), rss.into());
    // What a reader paid before the vector file was mapped: its whole checksum, then a load.
    let file = vector_file;
    let t = Instant::now();
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(&file).unwrap()).unwrap();
    std::hint::black_box(hasher.finalize());
    let sum_ms = t.elapsed().as_secs_f64() * 1000.0;
    let before = rss_mb();
    let t = Instant::now();
    let loaded = usearch::Index::restore(&file.to_string_lossy()).unwrap();
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "before the map: checksum {sum_ms:.0} ms + load {load_ms:.0} ms, RSS +{:.0} MB for {} vectors",
        rss_mb() - before,
        loaded.size()
    );
    out.insert("checksum_ms".into(), sum_ms.into());
    out.insert("load_ms".into(), load_ms.into());
    println!("{}", serde_json::Value::Object(out));
}

/// Milliseconds usearch takes to view `file`, building its table of keys or not.
fn view_ms(file: &std::path::Path, keys: bool) -> f64 {
    let path = file.to_string_lossy();
    let head = usearch::Index::metadata(&path).unwrap();
    let options = usearch::IndexOptions { enable_key_lookups: keys, ..usearch::IndexOptions::from(head) };
    let t = Instant::now();
    let index = usearch::Index::new(&options).unwrap();
    index.view(&path).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    std::hint::black_box(index.size());
    ms
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A line of /proc/self/status, in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The "some of the words" list with SQLite ranking at most `SOME_WORDS_RANKED` chunks, against
/// ranking every chunk that holds a query word (`--keyword-cut`): time per query (two searchers,
/// each with its own word cache, taking turns at going first) and how many of the exact top 10
/// the cut keeps.
fn keyword_cut(dir: &std::path::Path, queries: &[(String, Vec<f32>)]) {
    let mut every = Searcher::open(dir).unwrap();
    every.set_some_words_ranked(i64::MAX);
    let cut = Searcher::open(dir).unwrap();
    let (mut every_ms, mut cut_ms, mut kept, mut same_order) = (Vec::new(), Vec::new(), 0usize, 0usize);
    let run = |s: &Searcher, text: &str| {
        let t = Instant::now();
        let hits: Vec<i64> = s.keyword(text, 10, None).unwrap().iter().map(|h| h.chunk_id).collect();
        (hits, t.elapsed().as_secs_f64() * 1000.0)
    };
    for (i, (text, _)) in queries.iter().enumerate() {
        let ((a, a_ms), (b, b_ms)) = if i % 2 == 0 {
            let a = run(&every, text);
            (a, run(&cut, text))
        } else {
            let b = run(&cut, text);
            (run(&every, text), b)
        };
        every_ms.push(a_ms);
        cut_ms.push(b_ms);
        kept += a.iter().filter(|id| b.contains(id)).count();
        same_order += (a == b) as usize;
    }
    let (e50, e95) = common::percentiles(every_ms);
    let (c50, c95) = common::percentiles(cut_ms);
    let share = kept as f64 / (queries.len() * 10) as f64;
    eprintln!("keyword, every chunk ranked: p50 {e50:.2} ms  p95 {e95:.2} ms");
    eprintln!(
        "keyword, at most {} ranked: p50 {c50:.2} ms  p95 {c95:.2} ms; top 10 kept {share:.4}, same list in {same_order} of {}",
        qsearch::search::SOME_WORDS_RANKED,
        queries.len()
    );
}

/// What SQLite's copy of a vector costs to read back (every rescored candidate and filtered
/// chunk pays it): 2,000 blobs as stored, their mean length, and the time to decode one, beside
/// the same vectors as plain f16 blobs (the format before the planes).
fn stored_vectors(dir: &std::path::Path, out: &mut serde_json::Map<String, serde_json::Value>) {
    use qsearch::store::blob::blob_to_vec;
    let db = rusqlite::Connection::open(dir.join(qsearch::store::DB_FILE)).unwrap();
    let blobs: Vec<Vec<u8>> = db
        .prepare("SELECT data FROM vectors LIMIT 2000")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plain: Vec<Vec<u8>> = blobs
        .iter()
        .map(|b| {
            let mut p: Vec<u8> =
                blob_to_vec(b).unwrap().iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect();
            p.push(0x16);
            p
        })
        .collect();
    let per_vector_us = |blobs: &[Vec<u8>]| {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for b in blobs {
                std::hint::black_box(blob_to_vec(b).unwrap());
            }
            best = best.min(t.elapsed().as_secs_f64() * 1e6 / blobs.len() as f64);
        }
        best
    };
    let (stored_us, plain_us) = (per_vector_us(&blobs), per_vector_us(&plain));
    let mean = |b: &[Vec<u8>]| b.iter().map(Vec::len).sum::<usize>() as f64 / b.len() as f64;
    eprintln!(
        "stored vectors: {:.0} bytes, read back in {stored_us:.2} us each (plain f16: {:.0} bytes, {plain_us:.2} us)",
        mean(&blobs),
        mean(&plain)
    );
    out.insert("stored_vector_bytes".into(), mean(&blobs).into());
    out.insert("stored_vector_decode_us".into(), stored_us.into());
    out.insert("plain_f16_decode_us".into(), plain_us.into());
}
