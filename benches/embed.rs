//! Embedding speed through qsearch's own embedder (tokenizer, batching, feeds, pooling):
//! tokens per second on ~512-token documents (one per run, and 8 per run) and the latency of
//! one short query. Run against any Qwen3-shaped ONNX graph:
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
    let model = std::env::args().skip(1).find(|a| !a.starts_with("--")).map(PathBuf::from).expect("usage: embed MODEL.onnx");
    let data = std::env::var_os("QSEARCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-data"));
    qsearch::paths::set_data_dir(data);
    let rt = qsearch::runtime::get(None, &mut |m| eprintln!("{m}")).unwrap();
    let spec = catalog::find(catalog::DEFAULT_MODEL).unwrap();
    let tokenizer_only = catalog::ModelSpec { files: vec![spec.file(Role::Tokenizer).unwrap().clone()], ..spec.clone() };
    let sources = Sources { user_dir: None, allow_pip: true, allow_download: false };
    let tokenizer = source::resolve(&tokenizer_only, &sources, &mut |_| {}).unwrap().files.remove(0);
    let files = ModelFiles {
        spec: spec.clone(),
        files: vec![Located { role: Role::Model, path: model.clone(), origin: Origin::UserDir }, tokenizer],
    };
    let words = ["search", "local", "vector", "index", "notes", "semantic", "the", "of", "query", "model", "rust", "chunk"];
    let mut results = serde_json::Map::new();
    for (label, batch_tokens, rows) in [("docs_1x512", 512usize, 8usize), ("docs_8x512", 4096, 8)] {
        let mut e = OnnxEmbedder::load(rt, &files, &Options { batch_tokens, ..Options::default() }).unwrap();
        let docs: Vec<String> = (0..rows)
            .map(|r| {
                let text: String = (0..2000).map(|i| words[(i * 7 + r * 3 + i / 5) % words.len()]).collect::<Vec<_>>().join(" ");
                let ids = e.token_ids(&text, InputKind::Document).unwrap();
                e.tokenizer().unwrap().decode(&ids[..511], true).unwrap()
            })
            .collect();
        let texts: Vec<&str> = docs.iter().map(String::as_str).collect();
        e.embed(&texts[..1], InputKind::Document).unwrap(); // warm-up
        let mut rates = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let out = e.embed(&texts, InputKind::Document).unwrap();
            rates.push(out.tokens as f64 / t.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        eprintln!("{label}: {:.0} tokens/s (median of 3; {} tokens per text)", rates[1], e.token_ids(texts[0], InputKind::Document).unwrap().len());
        results.insert(format!("{label}_tokens_per_s"), rates[1].into());
    }
    let mut e = OnnxEmbedder::load(rt, &files, &Options::default()).unwrap();
    // 40 tokens with the instruction and the end token, like the Python baseline.
    let query = "how do I keep a local semantic search index fresh and consistent while many files in my notes folder change!";
    let n = e.token_ids(query, InputKind::Query).unwrap().len();
    e.embed(&[query], InputKind::Query).unwrap();
    let mut ms: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            e.embed(&[query], InputKind::Query).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    eprintln!("query ({n} tokens with instruction): {:.1} ms median", ms[ms.len() / 2]);
    results.insert("query_tokens".into(), n.into());
    results.insert("query_ms_median".into(), ms[ms.len() / 2].into());
    results.insert("model".into(), model.display().to_string().into());
    println!("{}", serde_json::Value::Object(results));
}
