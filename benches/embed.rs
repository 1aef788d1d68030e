//! Embedding speed through qsearch's own embedder (tokenizer, batching, feeds, pooling):
//! tokens per second on ~512-token documents (one per run, and 8 per run) and the latency of
//! one short query, for the prepared graph and for the export as it is, side by side, with the
//! lowest cosine between their vectors. Run against any Qwen3-shaped ONNX graph:
//!
//!     cargo bench --bench embed -- target/bench-models/qwen3-full-int8/model.onnx
//!
//! The full-size random-weight graphs come from `scripts/qwen3_graph.py` (see scripts/README.md).

use std::path::PathBuf;
use std::time::Instant;

use qsearch::embed::onnx::{OnnxEmbedder, Options};
use qsearch::embed::{Embedder, InputKind};
use qsearch::models::catalog::{self, Role};
use qsearch::models::source::{self, Located, ModelFiles, Origin, Sources};

fn main() {
    let model =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).map(PathBuf::from).expect("usage: embed MODEL.onnx");
    let data = std::env::var_os("QSEARCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-data"));
    qsearch::paths::set_data_dir(data);
    let rt = qsearch::runtime::get(None, &mut |m| eprintln!("{m}")).unwrap();
    let spec = catalog::find(catalog::DEFAULT_MODEL).unwrap();
    let tokenizer_only =
        catalog::ModelSpec { files: vec![spec.file(Role::Tokenizer).unwrap().clone()], ..spec.clone() };
    let sources = Sources { user_dir: None, allow_pip: true, allow_download: false };
    let tokenizer = source::resolve(&tokenizer_only, &sources, &mut |_| {}).unwrap().files.remove(0);
    let files = ModelFiles {
        spec: spec.clone(),
        files: vec![Located { role: Role::Model, path: model.clone(), origin: Origin::UserDir }, tokenizer],
    };
    let words =
        ["search", "local", "vector", "index", "notes", "semantic", "the", "of", "query", "model", "rust", "chunk"];
    // The prepared graph (what qsearch runs) and the export as it is. One session at a time (two
    // sessions' idle threads would spin against each other on a small machine), in the order
    // A B A B so that slow phases of the machine fall on both; the better round counts.
    let variants = [("prepared", true), ("as_is", false)];
    let mut results = serde_json::Map::new();
    let docs = |e: &OnnxEmbedder, tokens: usize| -> Vec<String> {
        (0..8)
            .map(|r| {
                let text: String =
                    (0..2000).map(|i| words[(i * 7 + r * 3 + i / 5) % words.len()]).collect::<Vec<_>>().join(" ");
                let ids = e.token_ids(&text, InputKind::Document).unwrap();
                e.tokenizer().unwrap().decode(&ids[..tokens - 1], true).unwrap()
            })
            .collect()
    };
    // 40 tokens with the instruction and the end token, like the Python baseline.
    let query =
        "how do I keep a local semantic search index fresh and consistent while many files in my notes folder change!";
    let mut vectors: Vec<Vec<Vec<f32>>> = Vec::new();
    for round in 0..2 {
        for (v, &(name, prepare)) in variants.iter().enumerate() {
            let mut e = OnnxEmbedder::load_with(rt, &files, &Options { prepare, ..Options::default() }, &mut |m| {
                eprintln!("{m}")
            })
            .unwrap();
            let long = docs(&e, 512);
            let long: Vec<&str> = long.iter().map(String::as_str).collect();
            if round == 0 {
                vectors.push(e.embed(&long, InputKind::Document).unwrap().vectors);
            }
            for (label, batch_tokens) in [("docs_1x512", 512usize), ("docs_2x512", 1024), ("docs_8x512", 4096)] {
                let rate = docs_rate(&mut e, &long, batch_tokens);
                eprintln!("round {round} {label} {name}: {rate:.0} tokens/s (8 texts of 512 tokens)");
                best(&mut results, &format!("{label}_{name}_tokens_per_s"), rate, f64::max);
            }
            // Chunk-sized texts (128 tokens), for the batch budget.
            let short_docs: Vec<String> = (0..4).flat_map(|_| docs(&e, 128)).collect();
            let short_docs: Vec<&str> = short_docs.iter().map(String::as_str).collect();
            for batch_tokens in [512usize, 1024, 4096] {
                let rate = docs_rate(&mut e, &short_docs, batch_tokens);
                eprintln!("round {round} docs 32x128, batches of {batch_tokens} tokens, {name}: {rate:.0} tokens/s");
                best(&mut results, &format!("docs_32x128_batch{batch_tokens}_{name}_tokens_per_s"), rate, f64::max);
            }
            let median = query_ms(&mut e, query);
            eprintln!("round {round} query {name}: {median:.1} ms median of 11");
            best(&mut results, &format!("query_{name}_ms_median"), median, f64::min);
            if round == 0 && v == 0 {
                results.insert("query_tokens".into(), e.token_ids(query, InputKind::Query).unwrap().len().into());
            }
            results.insert(format!("query_{name}_reused_instruction"), (e.prefix_hits() > 0).into());
            // A short query, as typed in the TUI.
            let short = "rust error handling";
            let median = query_ms(&mut e, short);
            eprintln!("round {round} short query {name}: {median:.1} ms median of 11; resident memory {} MB", rss_mb());
            best(&mut results, &format!("short_query_{name}_ms_median"), median, f64::min);
        }
    }
    let agreement = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| cosine(a, b)).fold(1.0, f64::min);
    eprintln!("lowest cosine between prepared and as-is vectors: {agreement:.6}");
    results.insert("min_cosine_prepared_vs_as_is".into(), agreement.into());
    results.insert("model".into(), model.display().to_string().into());
    println!("{}", serde_json::Value::Object(results));
}

/// Tokens per second embedding `texts` as documents with this batch budget.
fn docs_rate(e: &mut OnnxEmbedder, texts: &[&str], batch_tokens: usize) -> f64 {
    e.set_batch_tokens(batch_tokens);
    let t = Instant::now();
    let out = e.embed(texts, InputKind::Document).unwrap();
    out.tokens as f64 / t.elapsed().as_secs_f64()
}

/// Median of 11 timed embeddings of one query, after one warm-up, in ms.
fn query_ms(e: &mut OnnxEmbedder, query: &str) -> f64 {
    e.embed(&[query], InputKind::Query).unwrap();
    let mut ms: Vec<f64> = (0..11)
        .map(|_| {
            let t = Instant::now();
            e.embed(&[query], InputKind::Query).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn best(results: &mut serde_json::Map<String, serde_json::Value>, key: &str, value: f64, pick: fn(f64, f64) -> f64) {
    let value = results.get(key).and_then(|v| v.as_f64()).map_or(value, |old| pick(old, value));
    results.insert(key.to_string(), value.into());
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// This process's resident memory (Linux), in MB; 0 elsewhere.
fn rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
