//! The watcher with real file-system events in temporary folders: after each kind of change the
//! index equals a fresh index of the tree; searches from other processes never fail meanwhile.

#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Watcher {
    child: Child,
    index: PathBuf,
}

impl Watcher {
    fn start(index: &Path, root: &Path) -> Watcher {
        Watcher::start_with(index, root, &[])
    }

    fn start_with(index: &Path, root: &Path, extra: &[&str]) -> Watcher {
        let _ = std::fs::remove_file(index.join("watch.json"));
        let child = common::qsearch(index)
            .args(["watch", "--model", "stand-in", "--debounce-ms", "100"])
            .args(extra)
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let w = Watcher { child, index: index.to_path_buf() };
        wait_for("the watcher to be ready", || qsearch::watch::State::read(index).is_some_and(|s| s.ready));
        w
    }

    /// SIGKILL: the watcher dies wherever it is, as on a crash (its socket stays behind).
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for Watcher {
    /// Stopped as a user stops it (SIGTERM), so that it removes its daemon socket; killed only
    /// if it has not ended within a few seconds.
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.index;
    }
}

/// Generous: CI machines are small and shared. The watcher is usually done in well under a second.
const PATIENCE: Duration = Duration::from_secs(240);

/// The two tests each run a watcher and many processes; running them one at a time keeps the
/// timing honest on a 2-core machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (path relative to root, chunk hash, has vector) for every chunk, read while the watcher runs.
fn snapshot(index: &Path, root: &Path) -> BTreeSet<(String, String, bool)> {
    let conn = rusqlite::Connection::open_with_flags(
        index.join(qsearch::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT d.display, c.hash, c.vec_seq IS NOT NULL FROM chunks c JOIN documents d ON d.id = c.doc_id")
        .unwrap();
    let root = root.display().to_string();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .map(|(p, h, v)| (p.strip_prefix(&root).unwrap_or(&p).to_string(), h, v))
        .collect()
}

fn fresh(root: &Path, tmp: &Path) -> BTreeSet<(String, String, bool)> {
    let index = tmp.join(format!(
        "fresh-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    let out = common::qsearch(&index).args(["index", "--model", "stand-in", "--quiet"]).arg(root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    snapshot(&index, root)
}

fn assert_converges(index: &Path, root: &Path, tmp: &Path, what: &str) {
    let expected = fresh(root, tmp);
    let t = Instant::now();
    loop {
        let got = snapshot(index, root);
        if got == expected {
            return;
        }
        if t.elapsed() > PATIENCE {
            let extra: Vec<_> = got.difference(&expected).take(5).collect();
            let missing: Vec<_> = expected.difference(&got).take(5).collect();
            panic!("after {what}: index differs from a fresh index; extra {extra:?}, missing {missing:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    common::write(&root, "a.md", "# Alpha\n\nalpha note about apples\n");
    common::write(&root, "dir/b.md", "# Beta\n\nbeta note about bananas\n");
    let root = root.canonicalize().unwrap();
    let index = tmp.path().join("index");
    (tmp, root, index)
}

#[test]
fn every_kind_of_change_ends_equal_to_a_fresh_index() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tmp, root, index) = tree();
    let _w = Watcher::start(&index, &root);
    assert_converges(&index, &root, tmp.path(), "start");

    common::write(&root, "new.md", "# New\n\ncherries\n");
    assert_converges(&index, &root, tmp.path(), "create");

    common::write(&root, "a.md", "# Alpha\n\nalpha note about apricots now\n");
    assert_converges(&index, &root, tmp.path(), "modify");

    std::fs::rename(root.join("new.md"), root.join("renamed.md")).unwrap();
    assert_converges(&index, &root, tmp.path(), "rename");

    // An editor's save: write a temporary file, then rename it over the original; plus a swap file.
    common::write(&root, ".a.md.swp", "swap");
    common::write(&root, "a.md.tmp~", "# Alpha\n\nsaved by an editor\n");
    std::fs::rename(root.join("a.md.tmp~"), root.join("a.md")).unwrap();
    std::fs::remove_file(root.join(".a.md.swp")).unwrap();
    assert_converges(&index, &root, tmp.path(), "editor save");

    std::fs::rename(root.join("dir"), root.join("moved")).unwrap();
    assert_converges(&index, &root, tmp.path(), "directory move");

    common::write(&root, ".gitignore", "moved/\n");
    assert_converges(&index, &root, tmp.path(), ".gitignore change");

    std::fs::remove_file(root.join("renamed.md")).unwrap();
    assert_converges(&index, &root, tmp.path(), "delete");

    // A batch looks only where events were; an ignore file's rules reach its whole folder.
    common::write(&root, "sub/keep.md", "# Keep\n\nkale\n");
    common::write(&root, "sub/skip.md", "# Skip\n\nskipped soon\n");
    assert_converges(&index, &root, tmp.path(), "a new folder");
    common::write(&root, "sub/.gitignore", "skip.md\n");
    assert_converges(&index, &root, tmp.path(), "a folder's own .gitignore");
    assert!(!snapshot(&index, &root).iter().any(|(p, _, _)| p.ends_with("skip.md")));

    // A folder moved in from outside, files and all, and git's exclude file.
    common::write(tmp.path(), "outside/inbox/deep/x.md", "# X\n\nxigua\n");
    std::fs::rename(tmp.path().join("outside/inbox"), root.join("inbox")).unwrap();
    assert_converges(&index, &root, tmp.path(), "a folder moved in");
    common::write(&root, ".git/info/exclude", "keep.md\n");
    assert_converges(&index, &root, tmp.path(), ".git/info/exclude");
    assert!(!snapshot(&index, &root).iter().any(|(p, _, _)| p.ends_with("keep.md")));

    // Regression: the watcher's own reads once triggered batch after batch. Idle means idle.
    std::thread::sleep(Duration::from_millis(500));
    let before = qsearch::watch::State::read(&index).unwrap().batches;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(qsearch::watch::State::read(&index).unwrap().batches, before, "batches ran with nothing changing");
}

#[test]
fn polling_fallback_sees_changes_too() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tmp, root, index) = tree();
    let _w = Watcher::start_with(&index, &root, &["--poll"]);
    assert!(qsearch::watch::State::read(&index).unwrap().backend.starts_with("polling"));
    common::write(&root, "polled.md", "# Polled\n\nfound by polling\n");
    std::fs::remove_file(root.join("a.md")).unwrap();
    assert_converges(&index, &root, tmp.path(), "changes seen by polling");
}

#[test]
fn a_burst_with_searches_running_and_a_kill_mid_batch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tmp, root, index) = tree();
    let w = Watcher::start(&index, &root);

    // Searches from another process in a loop while the watcher writes: none may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searcher = {
        let (index, stop) = (index.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out =
                    common::qsearch(&index).args(["search", "note", "--mode", "hybrid", "--json"]).output().unwrap();
                let err = String::from_utf8_lossy(&out.stderr).to_string();
                // 0: hits, 1: none yet; anything else (2: an error, 101: a panic, a signal) fails.
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "search failed while the watcher wrote ({}): {err}",
                    out.status
                );
                assert!(!err.contains("locked"), "{err}");
                runs += 1;
            }
            runs
        })
    };

    // A branch switch: 10,000 files at once.
    for i in 0..10_000 {
        common::write(&root, &format!("burst/{}/f{i}.md", i % 100), format!("burst note {i} about topic{}\n", i % 37));
    }
    std::thread::sleep(Duration::from_millis(700));
    w.kill(); // in the middle of absorbing the burst
    let _w = Watcher::start(&index, &root);
    assert_converges(&index, &root, tmp.path(), "a burst of 10,000 files and a kill");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = searcher.join().unwrap();
    assert!(runs > 0);

    // Every committed change becomes visible to a new search.
    common::write(&root, "late.md", "# Late\n\nquokka sighting\n");
    wait_for("the new file to be found", || {
        let out = common::qsearch(&index).args(["search", "quokka", "--mode", "keyword", "--json"]).output().unwrap();
        out.status.success()
    });
}
