//! `--model openai:NAME`: qsearch asks an embedding server with OpenAI's API. The server here is
//! an HTTP server in the test whose vectors come from the real all-MiniLM-L6-v2 on ONNX Runtime
//! (qsearch's own engine), so what is checked is the protocol, the failures real servers have,
//! and that search through a server finds what the model run locally finds.

mod common;

use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use qsearch::embed::{Embedder, InputKind};
use serde_json::{Value, json};

/// What the server was asked.
#[derive(Debug, Clone)]
struct Seen {
    model: String,
    inputs: Vec<String>,
    auth: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Statuses to answer, one per request, before answering properly.
    fail_next: VecDeque<u16>,
    /// Answer 500 once this many requests were answered properly.
    fail_after: Option<usize>,
    served: usize,
    /// The only key accepted, when set.
    key: Option<String>,
}

struct EmbeddingServer {
    url: String,
    state: Arc<Mutex<State>>,
}

impl EmbeddingServer {
    /// Serves `POST /v1/embeddings` for the model `all-minilm` with all-MiniLM-L6-v2.
    fn start() -> EmbeddingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let model = Mutex::new(common::minilm());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                answer(stream, &shared, &model);
            }
        });
        EmbeddingServer { url, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap())
    }
}

/// One request, one answer, then the connection is closed.
fn answer(stream: TcpStream, state: &Mutex<State>, model: &Mutex<Box<dyn Embedder>>) {
    let (line, auth, body) = common::read_request(&stream);
    let (status, reply) = respond(&line, &body, auth, state, model);
    common::write_json(stream, status, &reply);
}

fn respond(
    line: &str,
    body: &[u8],
    auth: Option<String>,
    state: &Mutex<State>,
    model: &Mutex<Box<dyn Embedder>>,
) -> (u16, Value) {
    if !line.starts_with("POST /v1/embeddings ") {
        return (404, json!({ "error": { "message": format!("no route {line}") } }));
    }
    let request: Value = serde_json::from_slice(body).unwrap();
    let name = request["model"].as_str().unwrap().to_string();
    let inputs: Vec<String> =
        request["input"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen { model: name.clone(), inputs: inputs.clone(), auth: auth.clone() });
        if let Some(status) = s.fail_next.pop_front() {
            return (status, json!({ "error": { "message": "busy, try later" } }));
        }
        if s.fail_after.is_some_and(|n| s.served >= n) {
            return (500, json!({ "error": { "message": "the model crashed" } }));
        }
        if s.key.is_some() && auth != s.key.as_ref().map(|k| format!("Bearer {k}")) {
            return (401, json!({ "error": { "message": "Incorrect API key provided" } }));
        }
        if name != "all-minilm" {
            return (
                404,
                json!({ "error": { "message": format!("model \"{name}\" not found, try pulling it first") } }),
            );
        }
        s.served += 1;
    }
    let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let out = model.lock().unwrap().embed(&texts, InputKind::Document).unwrap();
    // Out of order, as a server may answer: each vector says which input it is.
    let data: Vec<Value> = out
        .vectors
        .iter()
        .enumerate()
        .rev()
        .map(|(i, v)| json!({ "object": "embedding", "index": i, "embedding": v }))
        .collect();
    (
        200,
        json!({ "object": "list", "data": data, "model": name, "usage": { "prompt_tokens": out.tokens, "total_tokens": out.tokens } }),
    )
}

/// Short notes (one chunk each, so that chunking by estimate and by tokenizer agree) on topics
/// that a question can reach without sharing its words.
fn notes(root: &Path) {
    common::write(
        root,
        "bread.md",
        "# Sourdough\n\nFeed the starter, knead the dough and let it prove overnight before baking.\n",
    );
    common::write(
        root,
        "deploy.md",
        "# Deploying\n\nShip the container image to the cluster and roll out the new version.\n",
    );
    common::write(root, "taxes.md", "# Taxes\n\nKeep every receipt; the annual return is due in April.\n");
    common::write(root, "cat.md", "# Our cat\n\nThe kitten sleeps on the windowsill and chases string.\n");
}

fn run(cmd: &mut std::process::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `qsearch search --mode semantic` with `cmd` (an index, its environment): paths and scores.
fn semantic(mut cmd: std::process::Command, query: &str) -> Vec<(String, f64)> {
    let (code, out, err) = run(cmd.args(["search", "--json", "--mode", "semantic", query]));
    assert_eq!(code, Some(0), "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    json["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["path"].as_str().unwrap().to_string(), h["score"].as_f64().unwrap()))
        .collect()
}

#[test]
fn a_folder_indexed_through_a_server_is_searched_as_with_the_model_itself() {
    let server = EmbeddingServer::start();
    server.set(|s| s.key = Some("sekret".into()));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    notes(&root);
    let remote = tmp.path().join("remote");
    // A proxy that would refuse everything: texts for a server on this machine do not go there.
    let (code, _, err) = run(common::qsearch(&remote)
        .env("QSEARCH_API_KEY", "sekret")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .args(["index", "--model", "openai:all-minilm", "--endpoint", &server.url])
        .arg(&root));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("indexed 4 files"), "{err}");
    assert!(!err.contains("not on this machine"), "a server on this machine is not called remote: {err}");
    let seen = server.seen();
    assert!(seen.iter().all(|r| r.model == "all-minilm" && r.auth.as_deref() == Some("Bearer sekret")), "{seen:?}");
    assert!(
        seen.iter().any(|r| r.inputs.iter().any(|t| t.contains("knead the dough"))),
        "documents go as they are: {seen:?}"
    );

    let local = tmp.path().join("local");
    let (code, _, err) = run(common::qsearch(&local).args(["index", "--model", "all-minilm-l6-v2"]).arg(&root));
    assert_eq!(code, Some(0), "{err}");

    // No --model, no --endpoint: the index remembers both.
    for query in ["how long should bread rise", "putting a service into production"] {
        let mut cmd = common::qsearch(&remote);
        cmd.env("QSEARCH_API_KEY", "sekret");
        let through_server = semantic(cmd, query);
        let here = semantic(common::qsearch(&local), query);
        assert_eq!(through_server.len(), here.len());
        for ((a, x), (b, y)) in through_server.iter().zip(&here) {
            assert_eq!(a, b, "{query}: {through_server:?} vs {here:?}");
            assert!((x - y).abs() < 1e-4, "{query}: {through_server:?} vs {here:?}");
        }
    }
    assert!(semantic(common::qsearch(&local), "how long should bread rise")[0].0.ends_with("bread.md"));
    let last = server.seen().pop().unwrap();
    assert_eq!(
        last.inputs,
        vec!["putting a service into production"],
        "the query went as typed (MiniLM takes no prompt)"
    );

    let (_, out, _) = run(common::qsearch(&remote).args(["status"]));
    assert!(out.contains("openai:all-minilm:384d") && out.contains(&server.url), "{out}");
    let mut doctor = common::qsearch(&remote);
    let (_, out, _) = run(doctor.env("QSEARCH_API_KEY", "sekret").arg("doctor"));
    assert!(out.contains(&format!("server:   {} answers for openai:all-minilm (384 dimensions)", server.url)), "{out}");
    let (code, out, _) = run(common::qsearch(&remote).arg("doctor"));
    assert!(
        code == Some(1) && out.contains("server:   PROBLEM") && out.contains("QSEARCH_API_KEY"),
        "without the key: {out}"
    );
}

#[test]
fn a_server_that_fails_is_said_and_nothing_is_lost() {
    let server = EmbeddingServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    notes(&root);
    for i in 0..150 {
        common::write(
            &root,
            &format!("more/n{i:03}.md"),
            format!("# Note {i}\n\nItem number {i} of the list, about gardening and tomatoes.\n"),
        );
    }
    let index = tmp.path().join("index");
    let index_cmd = |model: &str, url: &str| {
        let mut cmd = common::qsearch(&index);
        cmd.args(["index", "--model", model, "--endpoint", url]).arg(&root);
        cmd
    };

    // Nobody listens: said at once, nothing written.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let (code, _, err) = run(&mut index_cmd("openai:all-minilm", &closed));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot reach the embedding server at {closed}")) && err.contains("--endpoint"),
        "{err}"
    );
    // A model the server lacks, a key it refuses: the server's words and what to do.
    let (code, _, err) = run(&mut index_cmd("openai:nope", &server.url));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("model \"nope\" not found") && err.contains("ollama pull"), "{err}");
    server.set(|s| s.key = Some("sekret".into()));
    let (code, _, err) = run(&mut index_cmd("openai:all-minilm", &server.url));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("401") && err.contains("QSEARCH_API_KEY"), "{err}");
    server.set(|s| s.key = None);
    let (code, _, err) = run(common::qsearch(&index).args(["search", "tomatoes"]));
    assert_eq!(code, Some(1), "nothing was indexed: {err}");
    assert!(err.contains("no results"), "{err}");

    // The server dies after the probe and two batches: every file is still written, the rest of
    // the vectors wait for the next run.
    server.set(|s| s.fail_after = Some(3));
    let (code, _, err) = run(&mut index_cmd("openai:all-minilm", &server.url));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("answered 500") && err.contains("the model crashed"), "{err}");
    assert!(err.contains("run `qsearch index` again"), "{err}");
    let (_, out, _) = run(common::qsearch(&index).args(["status", "--json"]));
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["stats"]["documents"], 154, "{stats}");
    assert!(stats["stats"]["pending"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["endpoint"], server.url.as_str(), "{stats}");
    // Search still answers by keyword, and says why not by meaning.
    let (code, out, err) = run(common::qsearch(&index).args(["search", "kitten windowsill"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("cat.md"), "{out}");
    assert!(err.contains("answered 500"), "{err}");

    // Back, but busy twice: tried again, and the run finishes what was left.
    server.set(|s| {
        s.fail_after = None;
        s.fail_next = VecDeque::from([503, 429]);
    });
    let before = server.seen().len();
    let (code, _, err) = run(common::qsearch(&index).args(["index"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(server.seen().len() >= before + 3, "the busy answers were tried again");
    let (_, out, _) = run(common::qsearch(&index).args(["status", "--json"]));
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["stats"]["pending"], 0, "{stats}");
    assert_eq!(stats["stats"]["documents"], 154, "{stats}");
    assert!(semantic(common::qsearch(&index), "how long should bread rise")[0].0.ends_with("bread.md"));
}
