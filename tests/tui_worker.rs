//! The TUI's background worker over a real index (built by the binary with the stand-in model):
//! keyword results first, then hybrid; only the newest of a burst of queries is finished; a
//! change to the index is picked up; missing and broken indexes are reported.

mod common;

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use qsearch::search::{MatchKind, Mode, Query};
use qsearch::session::{self, Around, Session};
use qsearch::tui::worker::{Answer, IndexState, ModelState, Reply, Worker};

const WAIT: Duration = Duration::from_secs(20);

fn index(index: &Path, root: &Path) {
    let out = common::qsearch(index).args(["index", "--quiet", "--model", "stand-in"]).arg(root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn notes(root: &Path) {
    common::write(root, "git.md", "# Git\n\nIntro.\n\n## Undo\n\nUse git reflog to find a lost commit.\n");
    common::write(root, "cook.md", "# Cooking\n\nRisotto needs constant stirring.\n");
}

fn worker(index: &Path) -> (Worker, Receiver<Reply>) {
    common::tui_worker(index)
}

/// Replies until `done` says so (returning everything seen), or a failure after WAIT.
fn until(rx: &Receiver<Reply>, what: &str, mut done: impl FnMut(&Reply) -> bool) -> Vec<Reply> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while let Ok(reply) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let stop = done(&reply);
        seen.push(reply);
        if stop {
            return seen;
        }
    }
    panic!("no {what} within {WAIT:?}; saw {seen:#?}");
}

fn query(text: &str) -> Query {
    Query { text: text.into(), k: 10, mode: Mode::Hybrid, filter: Default::default(), per_doc: 2 }
}

fn answer_of(reply: &Reply) -> Option<&Answer> {
    match reply {
        Reply::Answer(a) => Some(a),
        _ => None,
    }
}

fn paths(a: &Answer) -> Vec<String> {
    let found = a.outcome.as_ref().expect("an answer, not an error");
    found.results.hits.iter().map(|h| Path::new(&h.path).file_name().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn keyword_first_then_hybrid_only_the_newest_and_live_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, dir) = (tmp.path().join("notes"), tmp.path().join("index"));
    notes(&root);
    index(&dir, &root);
    let (worker, rx) = worker(&dir);
    until(&rx, "index", |r| matches!(r, Reply::Index(IndexState::Ready(info)) if info.stats.documents == 2));
    until(&rx, "model", |r| matches!(r, Reply::Model(ModelState::Ready { model, .. }) if model == "stand-in"));

    worker.search(1, query("lost commit reflog"));
    let seen = until(&rx, "a complete answer", |r| answer_of(r).is_some_and(|a| a.complete));
    let answers: Vec<&Answer> = seen.iter().filter_map(answer_of).collect();
    assert_eq!(answers.len(), 2, "keyword results, then hybrid: {answers:#?}");
    assert!(!answers[0].complete);
    assert_eq!(paths(answers[0])[0], "git.md");
    let first = &answers[0].outcome.as_ref().unwrap().results.hits[0];
    assert_eq!(first.kind, MatchKind::Keyword, "the first answer needs no model");
    let last = answers[1].outcome.as_ref().unwrap();
    assert_eq!(last.results.hits[0].kind, MatchKind::Both, "the second is hybrid");
    assert_eq!(last.results.hits[0].line, 7);
    let context = last.context[0].as_ref().expect("the hit's neighbourhood");
    assert!(context.neighbours.iter().any(|p| p.chunk_id == last.results.hits[0].chunk_id));

    // A burst: only the newest is finished, older ones are skipped or answered only in part.
    for generation in 2..=20 {
        let q = if generation == 20 {
            Query { mode: Mode::Keyword, ..query("milanese") }
        } else {
            query("risotto stirring")
        };
        worker.search(generation, q);
    }
    let seen = until(&rx, "the newest answer", |r| answer_of(r).is_some_and(|a| a.generation == 20 && a.complete));
    let answers: Vec<&Answer> = seen.iter().filter_map(answer_of).collect();
    assert!(answers.len() < 19, "queries that piled up were skipped: {} answers", answers.len());
    assert!(paths(answers.last().unwrap()).is_empty(), "no note says milanese yet");

    // The index changes underneath: the status and the current results follow.
    common::write(&root, "milan.md", "# Milan\n\nRisotto alla milanese is yellow.\n");
    index(&dir, &root);
    until(&rx, "new stats", |r| matches!(r, Reply::Index(IndexState::Ready(info)) if info.stats.documents == 3));
    let seen = until(&rx, "a refreshed answer", |r| answer_of(r).is_some_and(|a| a.complete));
    let refreshed = seen.iter().filter_map(answer_of).next_back().unwrap();
    assert_eq!(refreshed.generation, 20, "the current query, answered again");
    assert_eq!(paths(refreshed), vec!["milan.md"]);
}

#[test]
fn missing_index_then_created_and_broken_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, dir) = (tmp.path().join("notes"), tmp.path().join("index"));
    let (_worker, rx) = worker(&dir);
    until(&rx, "missing", |r| matches!(r, Reply::Index(IndexState::Missing)));
    notes(&root);
    index(&dir, &root);
    until(&rx, "the new index", |r| matches!(r, Reply::Index(IndexState::Ready(_))));

    let broken = tmp.path().join("broken");
    common::write(&broken, "index.sqlite", "this is not a database, just text long enough to look like a file header");
    let (_worker, rx) = worker(&broken);
    let seen = until(&rx, "broken", |r| matches!(r, Reply::Index(IndexState::Broken(_))));
    let Some(Reply::Index(IndexState::Broken(why))) = seen.last() else { unreachable!() };
    assert!(why.contains("not a database"), "{why}");
}

#[test]
fn the_session_answers_a_keystroke_with_neighbours() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, dir) = (tmp.path().join("notes"), tmp.path().join("index"));
    notes(&root);
    index(&dir, &root);
    let setup = session::Setup { index_dir: dir, model: common::stand_in_plan(), defaults: Default::default() };
    let session = Session::new(setup, None);
    let fp = session.fingerprint().unwrap().expect("an index with vectors");
    session.model().load_now(&fp, &mut |_| {});
    let vector = session.model().query_vector("constant stirring").unwrap();
    session.with_searcher(|s| s.load_vectors()).unwrap();
    let around = Around { lines: 0, neighbours: true };
    let found = session.answer(&query("constant stirring"), Some(&vector), around).unwrap();
    assert!(found.results.hits[0].path.ends_with("cook.md"));
    // "constant stirring" is the note's own phrase: found as such by either answer.
    assert_eq!(found.results.hits[0].kind, MatchKind::Phrase);
    assert_eq!(found.context.len(), found.results.hits.len());
    assert!(found.context.iter().all(|c| c.as_ref().is_some_and(|c| !c.neighbours.is_empty())));
    let keyword = session.keyword_answer(&query("constant stirring"), around).unwrap();
    assert_eq!(keyword.results.hits[0].kind, MatchKind::Phrase);
    let keyword = session.keyword_answer(&query("stirring constant"), around).unwrap();
    assert_eq!(keyword.results.hits[0].kind, MatchKind::Keyword);
}
