//! Code chunked along its syntax tree, on small real-looking files of each language with a
//! grammar: every chunk within the token budget, text and line ranges matching the file, nothing
//! lost, and each definition headed by its enclosing path.

use std::path::Path;

use qsearch::text::chunk::{self, Chunk, Settings, Sizer};
use qsearch::text::kind::{self, Kind};

fn fixture(name: &str) -> (String, Kind) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/code").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let kind = kind::of(&path).unwrap();
    assert!(matches!(kind, Kind::Code(Some(_))), "{name} has a grammar");
    (text, kind)
}

/// Splits a fixture with a budget of `tokens` and checks what holds for any code chunk.
fn split_checked(name: &str, tokens: usize) -> Vec<Chunk> {
    let (text, kind) = fixture(name);
    let chunks = chunk::split(&text, kind, Settings::new(tokens, 0), Sizer::Approx);
    assert!(!chunks.is_empty());
    let mut covered = 0;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.seq, i);
        assert_eq!(&text[c.start_byte..c.end_byte], c.text, "{name}: chunk text is its byte range");
        assert!(c.text.len().div_ceil(4) <= tokens, "{name}: chunk {i} over {tokens} tokens: {:?}", c.text);
        assert_eq!(c.start_line, text[..c.start_byte].matches('\n').count() + 1, "{name}: start line of {i}");
        assert_eq!(c.end_line, text[..c.end_byte].matches('\n').count() + 1, "{name}: end line of {i}");
        assert!(c.start_byte >= covered, "{name}: chunks in order, no overlap");
        assert!(text[covered..c.start_byte].trim().is_empty(), "{name}: nothing lost before chunk {i}");
        covered = c.end_byte;
    }
    assert!(text[covered..].trim().is_empty(), "{name}: nothing lost at the end");
    chunks
}

fn headings(chunks: &[Chunk]) -> Vec<String> {
    chunks.iter().map(Chunk::heading_path).collect()
}

/// The chunk that holds `needle`, which must start a line of it.
fn chunk_with<'a>(chunks: &'a [Chunk], needle: &str) -> &'a Chunk {
    chunks.iter().find(|c| c.text.contains(needle)).unwrap_or_else(|| panic!("no chunk has {needle:?}"))
}

#[test]
fn every_language_stays_within_budget_and_keeps_lines() {
    for name in [
        "store.rs",
        "parser.py",
        "events.js",
        "cache.ts",
        "server.go",
        "Inventory.java",
        "ring.c",
        "matrix.cpp",
        "deploy.sh",
    ] {
        for tokens in [24, 48, 96, 200, 2000] {
            split_checked(name, tokens);
        }
    }
}

/// (file, a line of a definition, the heading its chunk carries) at 96 tokens a chunk.
const HEADED: &[(&str, &str, &str)] = &[
    ("store.rs", "pub fn save(&self)", "impl Store > fn save"),
    ("store.rs", "fn apply(&mut self, change: Change) {", "impl Apply for Store"),
    ("parser.py", "def parse(self, text):", "class Parser > def parse"),
    ("parser.py", "def load_config(path):", "def load_config"),
    ("events.js", "emit(name, ...args) {", "class EventEmitter > method emit"),
    ("cache.ts", "get(key: Key): V | undefined {", "class LruCache > method get"),
    ("server.go", "func (s *Server) ServeHTTP(", "func (s *Server) ServeHTTP"),
    ("Inventory.java", "public void addStock(", "class Inventory > method addStock"),
    ("ring.c", "struct ring *ring_new(size_t cap) {", "function ring_new"),
    (
        "matrix.cpp",
        "Matrix multiply(const Matrix &other) const {",
        "namespace linalg > class Matrix > function multiply",
    ),
    ("deploy.sh", "upload() {", "function upload"),
];

#[test]
fn definitions_carry_their_enclosing_path() {
    for &(name, line, heading) in HEADED {
        let chunks = split_checked(name, 96);
        let c = chunk_with(&chunks, line);
        assert_eq!(c.heading_path(), heading, "{name}: {:#?}", headings(&chunks));
    }
}

#[test]
fn long_functions_are_cut_inside_and_small_ones_share_a_chunk() {
    let chunks = split_checked("store.rs", 96);
    let open: Vec<&Chunk> = chunks.iter().filter(|c| c.heading_path() == "impl Store > fn open").collect();
    assert!(open.len() >= 2, "fn open (~130 tokens) is cut in two: {:#?}", headings(&chunks));
    assert!(open[0].text.contains("pub fn open") && !open[0].text.contains("fn get"));
    let small = chunk_with(&chunks, "pub fn get(&self");
    assert!(small.text.contains("pub fn set(&mut self"), "get and set share a chunk");
    assert_eq!(small.heading_path(), "impl Store > fn get, fn set");
    // With room for the whole file, it is one chunk.
    let whole = split_checked("store.rs", 2000);
    assert_eq!(whole.len(), 1);
    assert_eq!((whole[0].start_line, whole[0].end_line), (1, 74));
}

#[test]
fn languages_without_a_grammar_use_the_text_chunker() {
    let text = "local function greet(name)\n  print('hello ' .. name)\nend\n";
    let kind = kind::of(Path::new("x.lua")).unwrap();
    assert_eq!(kind, Kind::Code(None));
    let chunks = chunk::split(text, kind, Settings::new(100, 0), Sizer::Approx);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].heading.is_empty());
}

#[test]
fn minified_code_is_chunked_as_text() {
    let line: String = (0..400).map(|i| format!("function f{i}(a){{return a+{i}}};")).collect();
    let kind = kind::of(Path::new("bundle.min.js")).unwrap();
    let chunks = chunk::split(&line, kind, Settings::new(200, 0), Sizer::Approx);
    assert!(chunks.len() > 1);
    assert!(chunks.iter().all(|c| c.heading.is_empty() && c.text.len().div_ceil(4) <= 200));
}
