//! One warm model per machine (issue 26): `qsearch serve` and `qsearch watch` answer other
//! processes' query embeddings over the index's socket. Each test runs the real binary on a
//! temporary index (the stand-in model) with its own runtime folder: searches through the daemon
//! answer exactly as in-process ones, and every way a daemon can fail (another fingerprint, killed,
//! dying mid-query, silent, a socket folder others can enter) ends in an in-process answer.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A temporary index of a few notes and a runtime folder of its own.
struct Place {
    _tmp: tempfile::TempDir,
    index: PathBuf,
    root: PathBuf,
    run: PathBuf,
}

impl Place {
    fn new() -> Place {
        let tmp = tempfile::tempdir().unwrap();
        let (index, root, run) = (tmp.path().join("index"), tmp.path().join("notes"), tmp.path().join("run"));
        common::write(&root, "retry.md", "# Retry\n\nThe retry loop backs off exponentially after a failed request.\n");
        common::write(&root, "cache.md", "# Cache\n\nThe cache keeps entries for an hour, then asks again.\n");
        common::write(&root, "deploy.md", "# Deploy\n\nDeploys roll out one region at a time, with a retry budget.\n");
        std::fs::create_dir_all(&run).unwrap();
        let place = Place { _tmp: tmp, index, root, run };
        let out = place.qsearch().args(["index", "--model", "stand-in"]).arg(&place.root).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        place
    }

    fn qsearch(&self) -> Command {
        let mut cmd = common::qsearch(&self.index);
        cmd.env("XDG_RUNTIME_DIR", &self.run).env_remove("QSEARCH_DAEMON_TIMEOUT_MS");
        cmd
    }

    /// `search --json QUERY` (with `extra` flags before it): the answer.
    fn search(&self, extra: &[&str], query: &str) -> Value {
        let out = self.qsearch().args(extra).args(["search", "--json", query]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn status(&self) -> Value {
        let out = self.qsearch().args(["status", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Where a daemon of this index listens (as `status` says it).
    fn socket(&self) -> PathBuf {
        PathBuf::from(self.status()["daemon"]["socket"].as_str().unwrap())
    }

    /// Starts `args` (`serve`, `watch ROOT`) and waits for its line that it answers queries.
    fn daemon(&self, args: &[&str]) -> Daemon {
        let mut child = self.qsearch().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            // Read to the end, so the daemon never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.contains("answering queries") => break,
                Ok(line) => seen.push(line),
                Err(_) => {}
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{args:?} ended ({status}) before it answered: {seen:?}");
            }
            assert!(started.elapsed() < Duration::from_secs(120), "{args:?} never said it answers: {seen:?}");
        }
        Daemon { child }
    }
}

struct Daemon {
    child: Child,
}

impl Daemon {
    fn kill(&mut self, signal: i32) {
        // SAFETY: a signal to the child this test started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hits of an answer, for comparing two answers to the same query.
fn hits(answer: &Value) -> &Value {
    let hits = &answer["hits"];
    assert!(!hits.as_array().unwrap().is_empty(), "some hits: {answer}");
    hits
}

#[test]
fn serve_answers_exactly_as_the_process_would() {
    let place = Place::new();
    let mut serve = place.daemon(&["serve"]);
    for query in ["retry loop", "how long are entries kept", "regions"] {
        let through = place.search(&[], query);
        let alone = place.search(&["--no-daemon"], query);
        assert_eq!(through["via"], "daemon", "{through}");
        assert_eq!(alone["via"], "process", "{alone}");
        assert_eq!(hits(&through), hits(&alone), "{query}: the same hits, scores included");
    }
    let keyword = place.qsearch().args(["search", "--json", "--mode", "keyword", "retry"]).output().map(|o| {
        assert!(o.status.success());
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    });
    assert_eq!(keyword.unwrap()["via"], Value::Null, "a keyword search embeds nothing");

    // Private: the folder 0700, the socket 0600.
    let socket = place.socket();
    assert!(socket.starts_with(place.run.join("qsearch")), "under XDG_RUNTIME_DIR: {}", socket.display());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);

    // status says so.
    let daemon = &place.status()["daemon"];
    assert_eq!(daemon["state"], "live", "{daemon}");
    assert_eq!(daemon["info"]["pid"], serve.child.id());
    assert_eq!(daemon["info"]["role"], "serve");
    let text = place.qsearch().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("daemon:   qsearch serve (pid {})", serve.child.id())), "{text}");

    // A second server for the same index is refused, and names the first.
    let second = place.qsearch().arg("serve").output().unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains(&format!("a daemon (pid {}) already answers", serve.child.id())), "{said}");

    // Ctrl-C (SIGINT) stops it, and the socket goes with it.
    serve.kill(libc::SIGINT);
    assert!(!socket.exists(), "the socket is removed on exit");
    assert_eq!(place.status()["daemon"]["state"], "none");
    assert_eq!(place.search(&[], "retry loop")["via"], "process");
}

#[test]
fn a_killed_daemon_costs_one_fallback_and_its_socket_is_replaced() {
    let place = Place::new();
    let alone = place.search(&["--no-daemon"], "retry loop");
    let mut serve = place.daemon(&["serve"]);
    let socket = place.socket();
    serve.kill(libc::SIGKILL);
    assert!(socket.exists(), "SIGKILL leaves the socket behind");
    assert_eq!(place.status()["daemon"]["state"], "stale");

    let after = place.search(&[], "retry loop");
    assert_eq!(after["via"], "process", "{after}");
    assert_eq!(hits(&after), hits(&alone));

    // The next server replaces the stale socket, and searches go through it again.
    let _again = place.daemon(&["serve"]);
    assert_eq!(place.status()["daemon"]["state"], "live");
    let through = place.search(&[], "retry loop");
    assert_eq!(through["via"], "daemon", "{through}");
    assert_eq!(hits(&through), hits(&alone));
}

#[test]
fn the_watcher_answers_queries_with_its_writers_model() {
    let place = Place::new();
    let root = place.root.to_str().unwrap().to_string();
    let _watch = place.daemon(&["watch", "--model", "stand-in", "--debounce-ms", "100", &root]);
    let through = place.search(&[], "retry loop");
    assert_eq!(through["via"], "daemon", "{through}");
    assert_eq!(hits(&through), hits(&place.search(&["--no-daemon"], "retry loop")));
    let daemon = &place.status()["daemon"];
    assert_eq!(daemon["info"]["role"], "watch", "{daemon}");
    assert_eq!(daemon["info"]["model"]["state"], "ready", "{daemon}");
}

/// What a fake daemon does with the asks it gets.
#[derive(Clone, Copy)]
enum Fake {
    /// Answers `info` as a daemon of another model would.
    OtherFingerprint,
    /// Answers `info` as the right daemon, then closes the connection on `embed`.
    DiesMidQuery,
    /// Answers `info` as the right daemon, then never answers `embed`.
    Silent,
}

/// A fake daemon at `socket`: answers `info` with `fingerprint` (the index's, or changed), then
/// does what `fake` says. The receiver hears each ask's `op`.
fn fake_daemon(socket: &Path, index: &Path, fingerprint: Value, fake: Fake) -> mpsc::Receiver<String> {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).unwrap();
    let (tx, rx) = mpsc::channel();
    let index = index.canonicalize().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let ask: Value = serde_json::from_str(&line).unwrap();
            let op = ask["op"].as_str().unwrap().to_string();
            let _ = tx.send(op.clone());
            match (op.as_str(), fake) {
                ("info", _) => {
                    let mut fp = fingerprint.clone();
                    if let Fake::OtherFingerprint = fake {
                        fp["model"] = "another-model:256d".into();
                    }
                    let info = serde_json::json!({
                        "answer": "info", "v": 1, "pid": 1, "role": "serve", "index": index, "since": 0,
                        "fingerprint": fp, "task": null,
                        "model": {"state": "ready", "model": "stand-in", "device": "none", "notes": []},
                    });
                    writeln!(stream, "{info}").unwrap();
                }
                (_, Fake::DiesMidQuery) => drop(stream),
                (_, Fake::Silent) => std::thread::sleep(Duration::from_secs(30)),
                (_, Fake::OtherFingerprint) => {
                    // Never asked: its answer would be a vector of the wrong model.
                    writeln!(stream, r#"{{"answer":"vector","v":1,"dims":256,"f32le":"{}"}}"#, "00".repeat(1024))
                        .unwrap();
                }
            }
        }
    });
    rx
}

#[test]
fn a_daemon_of_another_model_or_one_that_fails_is_not_trusted() {
    let place = Place::new();
    let alone = place.search(&["--no-daemon"], "retry loop");
    let fingerprint = place.status()["stats"]["fingerprint"].clone();
    assert!(fingerprint.is_object(), "{fingerprint}");
    let socket = place.socket();
    std::fs::DirBuilder::new().mode(0o700).recursive(true).create(socket.parent().unwrap()).unwrap();

    for fake in [Fake::OtherFingerprint, Fake::DiesMidQuery, Fake::Silent] {
        let asks = fake_daemon(&socket, &place.index, fingerprint.clone(), fake);
        let out = place
            .qsearch()
            .env("QSEARCH_DAEMON_TIMEOUT_MS", "500")
            .args(["search", "--json", "retry loop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["via"], "process", "{answer}");
        assert_eq!(hits(&answer), hits(&alone));
        let asked: Vec<String> = asks.try_iter().collect();
        match fake {
            Fake::OtherFingerprint => assert_eq!(asked, ["info"], "another model's daemon is never asked to embed"),
            _ => assert_eq!(asked, ["info", "embed"]),
        }
        let said = String::from_utf8_lossy(&out.stderr);
        if !matches!(fake, Fake::OtherFingerprint) {
            assert!(said.contains("loading the model here"), "the fallback is said: {said}");
        }
    }

    // A socket folder others may enter is not trusted at all.
    let asks = fake_daemon(&socket, &place.index, fingerprint, Fake::DiesMidQuery);
    std::fs::set_permissions(socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let answer = place.search(&[], "retry loop");
    assert_eq!(answer["via"], "process", "{answer}");
    assert_eq!(asks.try_iter().count(), 0, "nothing was asked through a folder others can enter");
}
