//! Kill the indexer with SIGKILL at many moments, rerun it, and check after each kill that the
//! index opens and is consistent, and at the end that it equals an uninterrupted run. Reading,
//! writing and embedding overlap in a run (workers, the writer and the model's thread at once),
//! so the kills land while documents and vectors are both being written.

#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use qsearch::embed::stand_in::StandIn;
use qsearch::indexer::{self, Writer};
use qsearch::store::Store;
use qsearch::store::lock::Role;

/// The options `run_index` gives on the command line.
fn crash_options() -> indexer::Options {
    let mut options = indexer::Options::default();
    options.chunk.tokens = 32;
    options.chunk.overlap = 0;
    options
}

fn run_index(index: &Path, root: &Path) -> Child {
    common::qsearch(index)
        .args(["index", "--model", "stand-in", "--quiet", "--chunk-tokens", "32", "--chunk-overlap", "0"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// (path, chunk hash, has vector) for every chunk, and the vector count.
fn snapshot(index: &Path) -> (BTreeSet<(String, String, bool)>, u64) {
    let store = Store::open_read(index).expect("index opens after a kill");
    let conn = rusqlite::Connection::open(index.join(qsearch::store::DB_FILE)).unwrap();
    let mut stmt = conn
        .prepare("SELECT d.display, c.hash, c.vec_seq IS NOT NULL FROM chunks c JOIN documents d ON d.id = c.doc_id")
        .unwrap();
    let rows: BTreeSet<(String, String, bool)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.hash = c.hash WHERE c.vec_seq IS NOT NULL AND v.hash IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "an embedded chunk lost its vector");
    let fts: i64 = conn.query_row("SELECT count(*) FROM chunks_fts", [], |r| r.get(0)).unwrap();
    assert_eq!(fts as usize, rows.len(), "keyword index and chunks disagree");
    let embedded = store.count_embedded_chunks().unwrap();
    // The count the triggers keep moved in the same transactions as the chunks.
    assert_eq!(store.embedded_chunks().unwrap(), embedded, "the kept count and the chunks disagree");
    if let Some(fp) = store.fingerprint().unwrap() {
        // The writer's open: it repairs the graph from SQLite if the kill left them apart.
        let settings = indexer::Settings { role: Role::Index, rebuild: indexer::Rebuild::No, options: crash_options() };
        let w = Writer::open(index, settings, |_| Ok(Box::new(StandIn::new(fp.dims))))
            .expect("index opens for writing after a kill");
        assert_eq!(w.vector_count() as u64, embedded, "vector index and database disagree");
    }
    (rows, embedded)
}

/// After a kill: the index opens and is consistent, or the kill came before its schema was
/// written (the database file exists, its version is still 0), and readers say it is empty.
fn check_after_kill(index: &Path) {
    let db = index.join(qsearch::store::DB_FILE);
    if !db.exists() {
        return;
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    drop(conn);
    if version == 0 {
        let err = Store::open_read(index).err().expect("a schema-less index is refused");
        assert!(err.to_string().contains("is empty"), "{err}");
        return;
    }
    snapshot(index);
}

enum Outcome {
    Killed,
    Finished(Duration),
}

/// SIGKILL the child once `delay` has passed, unless it ended first (then: how long it ran).
fn kill_after(mut child: Child, delay: Duration) -> Outcome {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Outcome::Finished(start.elapsed());
        }
        if start.elapsed() >= delay {
            child.kill().unwrap();
            child.wait().unwrap();
            return Outcome::Killed;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn killed_at_any_moment_the_index_stays_consistent_and_finishes_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    common::note_tree(&root, 300, 12, 10);

    let reference = tmp.path().join("reference");
    let t0 = Instant::now();
    assert!(run_index(&reference, &root).wait().unwrap().success());
    let full = t0.elapsed();
    let expected = snapshot(&reference);
    assert!(expected.1 > 1000, "enough work to interrupt: {} chunks", expected.1);

    // The earliest kill: the database file exists, no migration has committed yet.
    let unborn = tmp.path().join("unborn");
    std::fs::create_dir_all(&unborn).unwrap();
    rusqlite::Connection::open(unborn.join(qsearch::store::DB_FILE))
        .unwrap()
        .execute_batch("PRAGMA journal_mode = WAL")
        .unwrap();
    check_after_kill(&unborn);
    assert!(run_index(&unborn, &root).wait().unwrap().success());
    assert_eq!(snapshot(&unborn), expected, "after a kill before the schema");

    // Kills at many points of a fresh run; each killed index is checked, then finished. The
    // reference run's time is only an estimate (the first run pays for a cold cache, the machine
    // is shared): a run that ends before its kill teaches a shorter time, and the step is retried
    // on a fresh index.
    let mut full = full;
    let mut kills = 0;
    for step in 1..=8u32 {
        let index = tmp.path().join(format!("killed-{step}"));
        for _attempt in 0..4 {
            if index.exists() {
                std::fs::remove_dir_all(&index).unwrap();
            }
            match kill_after(run_index(&index, &root), full.mul_f64(step as f64 / 9.0)) {
                Outcome::Killed => {
                    kills += 1;
                    break;
                }
                Outcome::Finished(took) => full = full.min(took),
            }
        }
        check_after_kill(&index);
        assert!(run_index(&index, &root).wait().unwrap().success());
        assert_eq!(snapshot(&index), expected, "after a kill at step {step}");
    }
    assert!(kills >= 5, "only {kills} runs were interrupted (full run took {full:?})");

    // A chain of kills, each run resuming the last one's work.
    let index = tmp.path().join("chain");
    for _ in 0..5 {
        let mut child = run_index(&index, &root);
        std::thread::sleep(full / 6);
        let _ = child.kill();
        child.wait().unwrap();
        check_after_kill(&index);
    }
    assert!(run_index(&index, &root).wait().unwrap().success());
    assert_eq!(snapshot(&index), expected);
    // And the finished index is not redone.
    let out = common::qsearch(&index)
        .args(["index", "--model", "stand-in", "--json", "--chunk-tokens", "32", "--chunk-overlap", "0"])
        .arg(&root)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["indexed"], 0);
    assert_eq!(report["embedded"], 0);
}
