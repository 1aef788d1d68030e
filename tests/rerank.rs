//! `search --rerank` with a reranker on a server speaking the `/rerank` API. The server here is an
//! HTTP server in the test that scores a document by how often it says "stir" and answers out of
//! order, fails on demand (429, 503, then well) or for good: what is checked is the protocol, the
//! order it gives, the first-stage scores kept beside, and that a reranker that fails leaves the
//! first stage's hits with the reason.

mod common;

use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qsearch::rerank::served::ServedReranker;
use qsearch::search::Mode;
use qsearch::session::{self, Note, Request, Session};
use serde_json::{Value, json};

#[derive(Default)]
struct State {
    /// Statuses to answer, one per request, before answering properly.
    fail_next: VecDeque<u16>,
    /// Answer 500 to everything.
    broken: bool,
    /// Documents per request seen.
    asked: Vec<usize>,
}

struct RerankServer {
    url: String,
    state: Arc<Mutex<State>>,
}

impl RerankServer {
    fn start() -> RerankServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &shared);
            }
        });
        RerankServer { url, state }
    }

    fn server(&self) -> qsearch::embed::server::Server {
        qsearch::embed::server::Server { url: self.url.clone(), key: None }
    }
}

fn answer(stream: TcpStream, state: &Mutex<State>) {
    let (line, _, body) = common::read_request(&stream);
    let (status, reply) = respond(&line, &body, state);
    common::write_json(stream, status, &reply);
}

fn respond(line: &str, body: &[u8], state: &Mutex<State>) -> (u16, Value) {
    if !line.starts_with("POST /v1/rerank ") {
        return (404, json!({ "error": format!("no route {line}") }));
    }
    let request: Value = serde_json::from_slice(body).unwrap();
    let documents: Vec<String> =
        request["documents"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_lowercase()).collect();
    {
        let mut s = state.lock().unwrap();
        if s.broken {
            return (500, json!({ "error": "the model crashed" }));
        }
        if let Some(status) = s.fail_next.pop_front() {
            return (status, json!({ "error": "busy, try later" }));
        }
        s.asked.push(documents.len());
    }
    // Out of order, as a server may answer (sorted by score, best first).
    let mut results: Vec<(usize, f64)> =
        documents.iter().enumerate().map(|(i, d)| (i, d.matches("stir").count() as f64)).collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1));
    let results: Vec<Value> = results.iter().map(|&(i, s)| json!({ "index": i, "relevance_score": s })).collect();
    (200, json!({ "results": results }))
}

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap().join("notes");
    common::write(&root, "git.md", "# Git\n\nUse git reflog to find a lost commit, then cook up a reset.\n");
    common::write(&root, "cook.md", "# Cooking\n\nRisotto needs constant stirring while it cooks.\n");
    common::write(&root, "tools.md", "# Tools\n\nStir with a wooden spoon; stirring cooks evenly.\n");
    let index = tmp.path().join("index");
    let out = common::qsearch(&index).args(["index", "--quiet", "--model", "stand-in"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, index)
}

fn session(index: &Path) -> Session {
    let setup =
        session::Setup { index_dir: index.to_path_buf(), model: common::stand_in_plan(), defaults: Default::default() };
    Session::new(setup, None)
}

/// A keyword search (the same first stage whether or not the stand-in model has loaded yet).
fn request(rerank: bool) -> Request {
    Request { text: "cook".into(), mode: Some(Mode::Keyword), rerank, ..Default::default() }
}

fn names(answer: &session::Answer) -> Vec<String> {
    answer.results.hits.iter().map(|h| Path::new(&h.path).file_name().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn reranked_hits_follow_the_rerankers_scores_and_keep_their_first_scores() {
    let (_tmp, index) = fixture();
    let server = RerankServer::start();
    let s = session(&index);
    let first = s.search(&request(false)).unwrap();
    assert_eq!(first.results.hits.len(), 3, "{:?}", names(&first));
    s.set_reranker(Box::new(ServedReranker::connect("bge", server.server()).unwrap()), Duration::from_millis(150));
    let answer = s.search(&request(true)).unwrap();
    assert_eq!(names(&answer), ["tools.md", "cook.md", "git.md"]);
    let scores: Vec<Option<f32>> = answer.results.hits.iter().map(|h| h.rerank_score).collect();
    assert_eq!(scores, [Some(2.0), Some(1.0), Some(0.0)]);
    let done = answer.reranked.as_ref().unwrap();
    assert_eq!((done.count, done.reranker.as_str(), done.budget_ms), (3, "openai:bge", 150));
    // Each hit keeps the first stage's score.
    for hit in &answer.results.hits {
        let before = first.results.hits.iter().find(|h| h.chunk_id == hit.chunk_id).unwrap();
        assert_eq!(hit.score, before.score);
    }
    // A request without rerank is not reranked.
    assert!(s.search(&request(false)).unwrap().reranked.is_none());
}

#[test]
fn a_busy_server_is_tried_again_and_a_broken_one_leaves_the_first_order_and_says_why() {
    let (_tmp, index) = fixture();
    let server = RerankServer::start();
    let s = session(&index);
    let first = names(&s.search(&request(false)).unwrap());
    assert_ne!(first, ["tools.md", "cook.md", "git.md"], "the first stage's order is not the reranker's");
    s.set_reranker(Box::new(ServedReranker::connect("bge", server.server()).unwrap()), Duration::from_millis(150));
    server.state.lock().unwrap().fail_next.extend([429, 503]);
    let answer = s.search(&request(true)).unwrap();
    assert_eq!(names(&answer), ["tools.md", "cook.md", "git.md"], "answered after two refusals");
    server.state.lock().unwrap().broken = true;
    let answer = s.search(&request(true)).unwrap();
    assert_eq!(names(&answer), first, "the first stage's order");
    assert!(answer.reranked.is_none());
    let note = answer.notes.iter().find(|n| matches!(n, Note::NotReranked(_))).expect("a note says why");
    assert!(note.to_string().contains("500"), "{note}");
    // No reranker at all: said too.
    let plain = session(&index);
    let answer = plain.search(&request(true)).unwrap();
    assert!(answer.notes.iter().any(|n| matches!(n, Note::NotReranked(_))), "{:?}", answer.notes);
    // A server that is not there is said when connecting.
    let dead = qsearch::embed::server::Server { url: "http://127.0.0.1:9/v1".into(), key: None };
    let err = ServedReranker::connect("bge", dead).err().unwrap().to_string();
    assert!(err.contains("cannot reach the reranker"), "{err}");
}

#[test]
fn the_cli_reranks_and_reports_both_scores_in_json() {
    let (_tmp, index) = fixture();
    let server = RerankServer::start();
    let out = common::qsearch(&index)
        .args(["search", "--json", "--rerank", "--reranker", "openai:bge", "--reranker-endpoint", &server.url, "cook"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hits = json["hits"].as_array().unwrap();
    let files: Vec<&str> = hits.iter().map(|h| h["path"].as_str().unwrap().rsplit('/').next().unwrap()).collect();
    assert_eq!(files, ["tools.md", "cook.md", "git.md"]);
    assert!(hits.iter().all(|h| h["score"].is_number() && h["rerank_score"].is_number()), "{json}");
    assert_eq!(json["reranked"]["count"], 3);
    // The probe (one document), then the query with every hit.
    assert_eq!(server.state.lock().unwrap().asked, [1, 3]);
    // A reranker that cannot be reached: the hits come unreranked, and stderr says why.
    let out = common::qsearch(&index)
        .args([
            "search",
            "--json",
            "--rerank",
            "--reranker",
            "openai:bge",
            "--reranker-endpoint",
            "http://127.0.0.1:9/v1",
        ])
        .arg("cook")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not reranking"));
}

#[test]
fn eval_reports_reranked_hits_as_a_fourth_mode_and_an_oracle_lifts_them_to_the_judgements() {
    let tmp = tempfile::tempdir().unwrap();
    let beir = tmp.path().join("beir");
    // Every document holds the query's words alike; only the judgements tell them apart.
    let corpus: String = (0..12)
        .map(|i| {
            format!(
                "{}\n",
                json!({"_id": format!("d{i}"), "title": "", "text": format!("notes on stirring a risotto, part {i}")})
            )
        })
        .collect();
    common::write(&beir, "corpus.jsonl", corpus);
    common::write(&beir, "queries.jsonl", format!("{}\n", json!({"_id": "q1", "text": "stirring risotto"})));
    common::write(&beir, "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td7\t1\n");
    let out = common::qsearch(&tmp.path().join("index"))
        .args(["eval", "--json", "--model", "stand-in", "--rerank", "oracle", "--beir"])
        .arg(&beir)
        .arg("--work")
        .arg(tmp.path().join("work"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ndcg = |mode: &str| {
        json["results"].as_array().unwrap().iter().find(|r| r["mode"] == mode).unwrap()["metrics"]["ndcg_at_10"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(ndcg("reranked"), 1.0, "{json}");
    assert!(ndcg("hybrid") < 1.0, "the first stage alone does not put d7 first: {json}");
}
