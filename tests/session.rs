//! The query session is the one way to search: the CLI (`qsearch search --json`), the TUI's worker
//! and the MCP engine, over one index, give the same hits, in the same order, with the same notes,
//! and the context a client asks for (`-C N`, `--neighbours`, MCP's `context_lines`).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qsearch::mcp::engine::SearchRequest;
use qsearch::search::{Mode, Query};
use qsearch::session::{Around, ModelState};
use qsearch::tui::worker::{IndexState, Reply};
use serde_json::Value;

fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap().join("notes");
    common::write(
        &root,
        "git.md",
        "# Git\n\nIntro.\n\n## Undo\n\nUse git reflog to find a lost commit.\nThen reset.\n",
    );
    common::write(&root, "cook.md", "# Cooking\n\nRisotto needs constant stirring.\nAnd broth, added slowly.\n");
    common::write(&root, "tools.md", "# Tools\n\nA whisk, a pan.\n\n## Stirring\n\nStir with a wooden spoon.\n");
    let index = tmp.path().join("index");
    let out = common::qsearch(&index).args(["index", "--quiet", "--model", "stand-in"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, root, index)
}

/// (file name, line, match kind) of each hit.
type Row = (String, u64, String);

fn name(path: &str) -> String {
    Path::new(path).file_name().unwrap().to_string_lossy().into_owned()
}

fn cli(index: &Path, query: &str, extra: &[&str]) -> Value {
    let out = common::qsearch(index).args(["search", "--json", "-k", "10"]).args(extra).arg(query).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cli_rows(json: &Value) -> Vec<Row> {
    json["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (name(h["path"].as_str().unwrap()), h["line"].as_u64().unwrap(), h["match"].as_str().unwrap().into()))
        .collect()
}

fn kind(k: qsearch::search::MatchKind) -> String {
    serde_json::to_value(k).unwrap().as_str().unwrap().to_string()
}

/// The TUI worker's complete answer to `text`.
fn tui(index: &Path, text: &str) -> qsearch::tui::worker::Found {
    let (worker, rx) = common::tui_worker(index);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut asked = false;
    while let Ok(reply) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        match reply {
            // Asked once the model is ready, so that the answer is hybrid, as the others are.
            Reply::Model(ModelState::Ready { .. }) if !asked => {
                asked = true;
                let query =
                    Query { text: text.into(), k: 10, mode: Mode::Hybrid, filter: Default::default(), per_doc: 2 };
                worker.search(1, query);
            }
            Reply::Answer(a) if a.complete => return a.outcome.unwrap(),
            Reply::Index(IndexState::Broken(why)) => panic!("{why}"),
            _ => {}
        }
    }
    panic!("no complete answer from the TUI worker");
}

fn mcp_engine(index: &Path) -> qsearch::mcp::Engine {
    let engine = common::mcp_engine(index, common::stand_in_plan());
    engine.warm_up();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(engine.status().unwrap().model, ModelState::Ready { .. }) {
        assert!(Instant::now() < deadline, "the MCP engine's model did not load");
        std::thread::sleep(Duration::from_millis(20));
    }
    engine
}

#[test]
fn the_cli_the_tui_and_mcp_give_the_same_hits_and_notes() {
    let (_tmp, _root, index) = fixture();
    let engine = mcp_engine(&index);
    for query in ["risotto stirring", "lost commit", "zebra migration"] {
        let json = cli(&index, query, &[]);
        let by_cli = cli_rows(&json);
        let found = tui(&index, query);
        let by_tui: Vec<Row> =
            found.results.hits.iter().map(|h| (name(&h.path), h.line as u64, kind(h.kind))).collect();
        let out = engine.search(&SearchRequest { query: query.into(), ..Default::default() }).unwrap();
        let by_mcp: Vec<Row> = out.hits.iter().map(|h| (name(&h.path), h.line as u64, kind(h.kind))).collect();
        assert_eq!(by_cli, by_tui, "{query}: CLI and TUI");
        assert_eq!(by_cli, by_mcp, "{query}: CLI and MCP");

        // The same notes, less "no results", which the CLI says by its exit code.
        let cli_notes: Vec<String> =
            json["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
        let others = |notes: Vec<String>| notes.into_iter().filter(|n| n != "no results").collect::<Vec<_>>();
        assert_eq!(cli_notes, others(found.note_texts()), "{query}: CLI and TUI notes");
        assert_eq!(
            cli_notes,
            others(out.notes.iter().map(ToString::to_string).collect()),
            "{query}: CLI and MCP notes"
        );
        if by_cli.is_empty() {
            assert_eq!(out.notes.last().map(ToString::to_string).as_deref(), Some("no results"));
        }
    }
    // Hybrid found something by meaning: the model ran in all three.
    let found = tui(&index, "risotto stirring");
    assert!(found.results.hits.iter().any(|h| kind(h.kind) != "keyword"), "{:?}", found.results.hits);
}

#[test]
fn context_lines_and_neighbours_come_with_each_hit() {
    let (_tmp, _root, index) = fixture();
    let json = cli(&index, "reflog", &["--mode", "keyword", "-C", "1", "--neighbours"]);
    let hit = &json["hits"][0];
    assert_eq!(name(hit["path"].as_str().unwrap()), "git.md");
    assert_eq!(hit["line"], 7, "{hit}");
    let lines = &hit["context"]["lines"];
    assert_eq!((lines["start_line"].as_u64(), lines["end_line"].as_u64()), (Some(6), Some(8)), "{hit}");
    assert_eq!(lines["text"], "\nUse git reflog to find a lost commit.\nThen reset.\n");
    let neighbours = hit["context"]["neighbours"].as_array().unwrap();
    assert!(neighbours.iter().any(|n| n["chunk_id"] == hit["chunk_id"]), "the hit's own chunk: {hit}");

    // Without the flags, no context.
    let plain = cli(&index, "reflog", &["--mode", "keyword"]);
    assert!(plain["hits"][0].get("context").is_none(), "{}", plain["hits"][0]);

    // The text form numbers the lines as grep does: ':' on the hit's line, '-' around it.
    let out = common::qsearch(&index).args(["search", "--mode", "keyword", "-C", "1", "reflog"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("7: Use git reflog to find a lost commit."), "{text}");
    assert!(text.contains("8- Then reset."), "{text}");

    // MCP: the same context, asked by the tool's arguments.
    let engine = common::mcp_engine(&index, common::stand_in_plan());
    let request = SearchRequest {
        query: "reflog".into(),
        mode: Some(Mode::Keyword),
        around: Around { lines: 1, neighbours: true },
        ..Default::default()
    };
    let out = engine.search(&request).unwrap();
    let context = serde_json::to_value(out.hits[0].context.as_ref().unwrap()).unwrap();
    assert_eq!(context, hit["context"], "MCP and the CLI give the same context");
}
