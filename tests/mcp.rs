//! `qsearch mcp` driven by a client no one here wrote: the official MCP Python SDK (PyPI `mcp`,
//! installed into target/test-py by scripts/test.sh) runs tests/mcp_client.py against the server
//! while a watcher owns the index, and tests/mcp_http_client.py against `qsearch mcp --http`
//! with several clients at once. Then the wire itself: malformed input, a clean exit when the
//! client closes stdin (or on SIGTERM over HTTP), and addresses off loopback refused unless asked.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where scripts/test.sh installs the MCP Python SDK.
/// Where `scripts/test.sh` installs the official MCP Python SDK; a test that needs it fails
/// (never skips) when it is not there.
fn sdk_dir() -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("test-py");
    assert!(
        sdk.join("mcp").is_dir(),
        "the MCP Python SDK is not installed in {}: run `bash scripts/test.sh` (it installs it there once)",
        sdk.display()
    );
    sdk
}

/// A folder of notes indexed with the stand-in model, a secret file next to it, a symlink from
/// the folder to the secret, and a file the index ignores.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("notes");
    common::write(&root, "git.md", "# Git\n\n## Undo\n\nUse git reflog to find a lost commit.\n");
    common::write(
        &root,
        "cook.md",
        "---\ntags: [food/italian, Kitchen]\n---\n# Cooking\n\nRisotto needs constant stirring.\n",
    );
    common::write(&root, "code/own.md", "# Ownership\n\nThe borrow checker enforces ownership rules.\n");
    common::write(&root, "ignored.md", "# Ignored\n\nnot for agents\n");
    common::write(&root, ".qsearchignore", "ignored.md\n");
    common::write(&base, "secret.txt", "TOP SECRET\n");
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape.md")).unwrap();
    let index = base.join("index");
    let out = common::qsearch(&index).args(["index", "--model", "stand-in", "--quiet"]).arg(&root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, root, index)
}

/// A process killed when the test ends, whatever happens.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, patience: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < patience, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_python_sdk_searches_reads_and_is_refused_while_a_watcher_writes() {
    let sdk = sdk_dir();
    let (_tmp, root, index) = fixture();
    let watcher = common::qsearch(&index)
        .args(["watch", "--model", "stand-in", "--debounce-ms", "100"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _watcher = Reaped(watcher);
    wait_for("the watcher to be ready", Duration::from_secs(120), || {
        qsearch::watch::State::read(&index).is_some_and(|s| s.ready)
    });

    // The server's environment: what common::qsearch sets, passed through the SDK's spawn.
    let probe = common::qsearch(&index);
    let mut env: serde_json::Map<String, Value> =
        probe.get_envs().filter_map(|(k, v)| Some((k.to_str()?.to_string(), json!(v?.to_str()?)))).collect();
    env.insert("QSEARCH_LOG".into(), json!("qsearch=info"));
    let config = json!({
        "qsearch": env!("CARGO_BIN_EXE_qsearch"),
        "env": env,
        "root": root,
        "outside": root.parent().unwrap().join("secret.txt"),
    });
    let stdout = python_client(&sdk, "tests/mcp_client.py", &config);
    assert!(stdout.contains("ok: client closed"), "{stdout}");
}

/// Runs one of the Python clients with its JSON configuration; its stdout, once it succeeded.
fn python_client(sdk: &Path, script: &str, config: &Value) -> String {
    let out = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .arg(config.to_string())
        .env("PYTHONPATH", sdk)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the Python client failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    println!("{stdout}");
    stdout.into_owned()
}

/// `qsearch mcp --http ADDR` started, the URL it printed once listening (its readiness signal:
/// with port 0 the system picks the port) and what it printed until then. Its stderr is drained
/// from then on.
fn start_http(index: &Path, extra: &[&str]) -> (Reaped, String, String) {
    let mut child = common::qsearch(index)
        .args(["mcp", "--http"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let child = Reaped(child);
    let mut said = String::new();
    let url = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the server ended before listening:\n{said}");
        }
        said.push_str(&line);
        if let Some(at) = line.find("listening on http://") {
            let rest = &line[at + "listening on ".len()..];
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, url, said)
}

#[test]
fn the_python_sdk_over_streamable_http_serves_several_clients_and_is_refused_outside_the_folders() {
    let sdk = sdk_dir();
    let (_tmp, root, index) = fixture();
    let (mut server, url, said) = start_http(&index, &["127.0.0.1:0"]);
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "{url}");
    assert!(!said.contains("warning"), "{said}");
    let config = json!({ "url": url, "root": root, "outside": root.parent().unwrap().join("secret.txt") });
    let stdout = python_client(&sdk, "tests/mcp_http_client.py", &config);
    assert!(stdout.contains("ok: 3 clients at once"), "{stdout}");
    assert!(stdout.contains("ok: a foreign Host header is refused"), "{stdout}");

    // SIGTERM (as a service manager stops it): the server ends its sessions and exits cleanly.
    let pid = server.0.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the server did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the server exited with {status}");
}

#[test]
fn an_http_address_off_loopback_is_refused_unless_allow_remote_is_given() {
    let (_tmp, _root, index) = fixture();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = common::qsearch(&index).args(["mcp", "--http", addr]).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{addr} was served without --allow-remote: {stderr}");
        assert!(stderr.contains("is not a loopback address") && stderr.contains("--allow-remote"), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
    }
    // Asked for explicitly, it listens, and says what that exposes.
    let (_server, url, said) = start_http(&index, &["0.0.0.0:0", "--allow-remote"]);
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    assert!(said.contains("warning") && said.contains("read the indexed files"), "{said}");
}

/// The server on raw pipes, for what an SDK client never sends.
struct Raw {
    child: Reaped,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Raw {
    fn start(index: &Path) -> Raw {
        let mut child = common::qsearch(index)
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Raw { child: Reaped(child), stdin, stdout }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message from the server (it answers in order here: one request at a time).
    fn receive(&mut self) -> Value {
        let mut line = String::new();
        assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the server closed its output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON from the server ({e}): {line}"))
    }
}

#[test]
fn malformed_input_gets_errors_and_closing_stdin_ends_the_server_cleanly() {
    let (_tmp, _root, index) = fixture();
    let mut raw = Raw::start(&index);
    // Not JSON at all: ignored (there is no id to answer), as the other official SDKs do.
    raw.send("{this is not json");
    // JSON that is not a JSON-RPC message: an Invalid Request error.
    raw.send(r#"{"hello": "world"}"#);
    let error = raw.receive();
    assert_eq!(error["error"]["code"], -32600, "{error}");
    raw.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        .to_string(),
    );
    let init = raw.receive();
    assert_eq!(init["id"], 1, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "qsearch", "{init}");
    raw.send(r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#);
    raw.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search", "arguments": {"k": 3}}}).to_string());
    let bad = raw.receive();
    assert_eq!(bad["id"], 2, "{bad}");
    assert_eq!(bad["result"]["isError"], true, "arguments that do not fit are a tool error: {bad}");
    assert!(bad["result"]["content"][0]["text"].as_str().unwrap().contains("query"), "{bad}");
    raw.send(
        &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "nope", "arguments": {}}})
            .to_string(),
    );
    let unknown = raw.receive();
    assert_eq!(unknown["id"], 4, "{unknown}");
    assert_eq!(unknown["error"]["code"], -32602, "an unknown tool: {unknown}");
    raw.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "qsearch/nope"}).to_string());
    let unknown = raw.receive();
    assert!(matches!(unknown["error"]["code"].as_i64(), Some(-32601 | -32600)), "an unknown method: {unknown}");
    raw.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "risotto"}}}).to_string());
    let good = raw.receive();
    assert_eq!(good["id"], 3, "{good}");
    let hits = &good["result"]["structuredContent"]["hits"];
    assert!(hits[0]["path"].as_str().unwrap().ends_with("cook.md"), "{good}");

    // The client goes away: the server exits by itself, successfully, and soon.
    drop(raw.stdin.take());
    let t = Instant::now();
    let status = loop {
        if let Some(status) = raw.child.0.try_wait().unwrap() {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the server did not exit after its stdin closed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the server exited with {status}");
}

#[test]
fn the_index_tool_refreshes_registered_folders_through_the_writer_and_no_others() {
    let (tmp, root, index) = fixture();
    let engine = common::mcp_engine(&index, common::stand_in_plan());
    // As the server does at start: the model loads in the background, and the index tool
    // shares it (waiting for the load under way) instead of loading a second copy.
    engine.warm_up();
    let search = |q: &str| {
        engine.search(&qsearch::mcp::engine::SearchRequest { query: q.into(), ..Default::default() }).unwrap()
    };
    // By keyword: the stand-in model may be warm already, and meaning always finds a nearest note.
    let keyword = qsearch::mcp::engine::SearchRequest {
        query: "kingfisher".into(),
        mode: Some(qsearch::search::Mode::Keyword),
        ..Default::default()
    };
    assert!(engine.search(&keyword).unwrap().hits.is_empty());

    common::write(&root, "birds.md", "# Birds\n\nA kingfisher by the river.\n");
    std::fs::remove_file(root.join("cook.md")).unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let out = engine.index(None, &cancel).unwrap();
    assert!(out.refreshed, "{out:?}");
    let report = out.report.unwrap();
    assert_eq!((report.indexed, report.removed, report.pending), (1, 1, 0), "{report:?}");
    assert!(qsearch::store::lock::holder(&index).is_none(), "the writer lock is released after the call");
    let found = search("kingfisher");
    assert!(found.hits[0].path.ends_with("birds.md"), "{found:?}");
    assert!(found.notes.is_empty(), "the model is warm after indexing: {:?}", found.notes);
    assert!(search("risotto").hits.iter().all(|h| !h.path.ends_with("cook.md")), "the removed file is gone");

    let named = engine.index(Some(root.to_str().unwrap()), &cancel).unwrap();
    assert_eq!(named.folders, vec![root.display().to_string()]);
    let elsewhere = engine.index(Some(tmp.path().to_str().unwrap()), &cancel).unwrap_err();
    assert!(format!("{elsewhere:#}").contains("is not an indexed folder"), "{elsewhere:#}");
}

/// An embedding server with OpenAI's API whose answers wait until it is opened: a model that
/// loads only when the test lets it (a timed delay would race a slow machine). Its vectors are
/// the stand-in's.
struct HeldServer {
    url: String,
    open: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl HeldServer {
    fn start(open: bool) -> HeldServer {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let gate = std::sync::Arc::new((std::sync::Mutex::new(open), std::sync::Condvar::new()));
        let held = gate.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let held = held.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let (mut line, mut length) = (String::new(), 0);
                    reader.read_line(&mut line).unwrap();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        match header.trim_end().split_once(':') {
                            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                                length = value.trim().parse().unwrap()
                            }
                            Some(_) => {}
                            None => break,
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let (lock, opened) = &*held;
                    drop(opened.wait_while(lock.lock().unwrap(), |open| !*open).unwrap());
                    let request: Value = serde_json::from_slice(&body).unwrap();
                    let model = qsearch::embed::stand_in::StandIn::new(64);
                    let data: Vec<Value> = request["input"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(i, text)| json!({ "index": i, "embedding": model.vector(text.as_str().unwrap()) }))
                        .collect();
                    let reply = json!({ "object": "list", "data": data, "model": request["model"] }).to_string();
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                });
            }
        });
        HeldServer { url, open: gate }
    }

    fn set_open(&self, open: bool) {
        *self.open.0.lock().unwrap() = open;
        self.open.1.notify_all();
    }
}

#[test]
fn searches_answer_by_keyword_while_the_model_loads_and_its_whole_name_shows() {
    let (_tmp, root, _) = fixture();
    // A served model whose name holds a slash, as Hugging Face names do.
    let model = "openai:BAAI/bge-small-en";
    let server = HeldServer::start(true);
    let index = root.parent().unwrap().join("served-index");
    let out = common::qsearch(&index)
        .args(["index", "--quiet", "--model", model, "--endpoint", &server.url])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    server.set_open(false);
    let mut plan = qsearch::embed::load::Plan::named(qsearch::models::reference::ModelRef::parse(model));
    plan.server.url = server.url.clone();
    let engine = common::mcp_engine(&index, plan);
    let request = qsearch::mcp::engine::SearchRequest { query: "risotto stirring".into(), ..Default::default() };
    let early = engine.search(&request).unwrap();
    assert!(early.hits[0].path.ends_with("cook.md"), "{early:?}");
    let notes: Vec<String> = early.notes.iter().map(ToString::to_string).collect();
    assert_eq!(notes, vec!["the model is not loaded yet: keyword results only".to_string()]);
    match engine.status().unwrap().model {
        qsearch::session::ModelState::Loading { model: shown, .. } => assert_eq!(shown, model),
        other => panic!("not loading: {other:?}"),
    }
    server.set_open(true);
    wait_for("the model", Duration::from_secs(30), || {
        matches!(engine.status().unwrap().model, qsearch::session::ModelState::Ready { .. })
    });
    let later = engine.search(&request).unwrap();
    assert!(later.notes.is_empty(), "{:?}", later.notes);
    assert!(later.hits.iter().any(|h| h.kind != qsearch::search::MatchKind::Keyword), "{later:?}");
}

/// `qsearch mcp --http` started with its own data directory (where its token lives), all it
/// prints on stderr collected as it comes (the refusals' log lines among it).
struct Served {
    _child: Reaped,
    url: String,
    /// The address to connect to: the listening port on 127.0.0.1 (also for `0.0.0.0`).
    addr: std::net::SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    fn start(index: &Path, data_dir: &Path, extra: &[&str]) -> Served {
        let mut child = common::qsearch(index)
            .env("QSEARCH_DATA_DIR", data_dir)
            .args(["mcp", "--http"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let child = Reaped(child);
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on http://") {
                    let _ = tx.send(line[at + "listening on ".len()..].split_whitespace().next().unwrap().to_string());
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not listen:\n{}", log.lock().unwrap()));
        let port: u16 = url.rsplit_once(':').unwrap().1.trim_end_matches("/mcp").parse().unwrap();
        Served { _child: child, url, addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)), log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log's refusal lines once there are `count` of them (a line is written as the request
    /// is answered, or just after).
    fn refusals(&self, count: usize) -> Vec<String> {
        let lines =
            || -> Vec<String> { self.log().lines().filter(|l| l.contains("refused ")).map(String::from).collect() };
        wait_for(&format!("{count} refusals in the log"), Duration::from_secs(5), || lines().len() >= count);
        lines()
    }

    /// POSTs an `initialize` to /mcp with `headers` (`Host` is 127.0.0.1:PORT unless given);
    /// the status and the response's head and start.
    fn initialize(&self, headers: &[(&str, &str)]) -> (u16, String) {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        .to_string();
        let defaults = [
            ("Host", self.addr.to_string()),
            ("Content-Type", "application/json".into()),
            ("Accept", "application/json, text/event-stream".into()),
            ("Content-Length", body.len().to_string()),
        ];
        let given = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let mut all: Vec<(&str, String)> = defaults.into_iter().filter(|(name, _)| !given(name)).collect();
        all.extend(headers.iter().map(|(name, value)| (*name, value.to_string())));
        raw_http(self.addr, "POST", "/mcp", &all, body.as_bytes())
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and what came back until the end of
/// the head (and a little more, or the connection's end).
fn raw_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{method} {path}: {e}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status =
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text:?}"));
    (status, text)
}

#[test]
fn http_on_loopback_refuses_foreign_origins_and_hosts_and_admits_local_ones() {
    let (tmp, _root, index) = fixture();
    let data = tmp.path().join("data");
    let server = Served::start(&index, &data, &["127.0.0.1:0"]);
    let own = format!("http://{}", server.addr);

    // No token on loopback (none is asked for, and no file is made); local pages may call.
    for origin in [None, Some("http://localhost:3000"), Some(own.as_str()), Some("http://[::1]:8765")] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let (status, said) = server.initialize(&headers);
        assert_eq!(status, 200, "Origin {origin:?}: {said}");
    }
    let (status, said) = server.initialize(&[("Host", &format!("localhost:{}", server.addr.port()))]);
    assert_eq!(status, 200, "{said}");
    assert!(!data.join("mcp-token").exists(), "a token was made on loopback without --token");

    // A page elsewhere: its own Origin, or its own name as Host (DNS rebinding), or both.
    let mut refused = 0;
    for (headers, what) in [
        (vec![("Origin", "https://evil.example")], "evil.example"),
        (vec![("Origin", "null")], "\"null\""),
        (vec![("Origin", "http://127.0.0.1.evil.example")], "127.0.0.1.evil.example"),
        (vec![("Host", "attacker.example:8765")], "attacker.example"),
        (vec![("Host", "attacker.example"), ("Origin", "http://attacker.example")], "attacker.example"),
    ] {
        let (status, said) = server.initialize(&headers);
        assert_eq!(status, 403, "{headers:?} was not refused: {said}");
        refused += 1;
        let lines = server.refusals(refused);
        assert_eq!(lines.len(), refused, "one log line per refusal: {lines:#?}");
        let line = &lines[refused - 1];
        assert!(
            line.contains("WARN") && line.contains("refused POST /mcp from 127.0.0.1") && line.contains(what),
            "{line}"
        );
    }
    // Refused before any path is looked at.
    let (status, said) = raw_http(
        server.addr,
        "GET",
        "/elsewhere",
        &[("Host", server.addr.to_string()), ("Origin", "https://evil.example".into())],
        b"",
    );
    assert_eq!(status, 403, "{said}");

    // A body over 4 MiB is refused as soon as its length is known (the body is never sent).
    let (status, said) = server.initialize(&[("Content-Length", &(5 << 20).to_string())]);
    assert_eq!(status, 413, "{said}");

    // --token: the token is asked for on loopback too.
    let guarded = Served::start(&index, &data, &["127.0.0.1:0", "--token"]);
    let token = std::fs::read_to_string(data.join("mcp-token")).unwrap().trim().to_string();
    assert_eq!(guarded.initialize(&[]).0, 401);
    assert_eq!(guarded.initialize(&[("Authorization", &format!("Bearer {token}"))]).0, 200);
    assert!(!guarded.log().contains("warning"), "no warning on loopback: {}", guarded.log());
}

#[test]
fn http_off_loopback_needs_the_token_which_the_python_sdk_sends() {
    let sdk = sdk_dir();
    let (tmp, root, index) = fixture();
    let data = tmp.path().join("data");
    // Listening on every address: off loopback, whatever address a client comes from.
    let server = Served::start(&index, &data, &["0.0.0.0:0", "--allow-remote"]);
    assert!(server.url.starts_with("http://0.0.0.0:"), "{}", server.url);

    // The token: made now, readable by the user only, printed with the client's configuration.
    let file = data.join("mcp-token");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()), "{token:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let said = server.log();
    assert!(said.contains("warning") && said.contains("read the indexed files"), "{said}");
    assert!(said.contains("made now"), "{said}");
    assert!(said.contains("claude mcp add --transport http qsearch http://"), "{said}");
    assert!(said.contains(&format!("--header \"Authorization: Bearer {token}\"")), "{said}");

    let bearer = format!("Bearer {token}");
    let wrong = format!("Bearer {}", "0".repeat(64));
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let refusals: [(Headers, u16, &str); 6] = [
        (&[], 401, "no bearer token"),
        (&[("Authorization", &wrong)], 401, "not this server's"),
        (&[("Authorization", "Basic cXNlYXJjaDpxc2VhcmNo")], 401, "no bearer token"),
        (&[("Authorization", &token)], 401, "no bearer token"),
        (&[("Host", "attacker.example:8765")], 401, "no bearer token"),
        (&[("Authorization", &bearer), ("Origin", "https://evil.example")], 403, "evil.example"),
    ];
    for (n, (headers, expected, why)) in refusals.into_iter().enumerate() {
        let (status, said) = server.initialize(headers);
        assert_eq!(status, expected, "request {n} ({why}): {said}");
        if expected == 401 {
            assert!(said.to_ascii_lowercase().contains("www-authenticate: bearer"), "{said}");
        }
        let lines = server.refusals(n + 1);
        assert_eq!(lines.len(), n + 1, "one log line per refusal: {lines:#?}");
        assert!(lines[n].contains("refused POST /mcp") && lines[n].contains(why), "{}", lines[n]);
    }
    assert!(!server.log().contains(&"0".repeat(64)), "a presented token is not logged");

    // With the token: admitted, from a client (no Origin) or from the server's own page.
    assert_eq!(server.initialize(&[("Authorization", &bearer)]).0, 200);
    let own = format!("http://{}", server.addr);
    assert_eq!(server.initialize(&[("Authorization", &bearer), ("Origin", &own)]).0, 200);

    // The official SDK client, configured with the token as a user would.
    let url = format!("http://{}/mcp", server.addr);
    let config =
        json!({ "url": url, "root": root, "outside": root.parent().unwrap().join("secret.txt"), "token": token });
    let stdout = python_client(&sdk, "tests/mcp_http_client.py", &config);
    assert!(stdout.contains("ok: 3 clients at once"), "{stdout}");
    assert!(stdout.contains("ok: the clients were admitted with the bearer token"), "{stdout}");
    drop(server);

    // A later start keeps the token: clients configured once keep working.
    let again = Served::start(&index, &data, &["0.0.0.0:0", "--allow-remote"]);
    assert!(!again.log().contains("made now"), "{}", again.log());
    assert!(again.log().contains(&format!("Bearer {token}")), "{}", again.log());
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    assert_eq!(again.initialize(&[("Authorization", &bearer)]).0, 200);
}

#[test]
fn http_connections_idle_too_long_are_closed_and_large_bodies_refused() {
    use std::io::Read;
    let (_tmp, _root, index) = fixture();
    let engine = std::sync::Arc::new(common::mcp_engine(&index, common::stand_in_plan()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let limits = qsearch::mcp::http::Limits { max_body: 64 << 10, idle: Duration::from_secs(1) };
    let stop = tokio_util::sync::CancellationToken::new();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let options = qsearch::mcp::http::Options { token: None, limits };
    let served = runtime.spawn(qsearch::mcp::http::serve(engine, listener, options, stop.clone()));

    // A connection that sends nothing, and one that goes quiet after a request: closed after
    // the idle limit (the read sees the end), not kept for ever.
    let closed_after = |stream: &mut std::net::TcpStream| {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = Instant::now();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(read.is_ok(), "the idle connection was not closed: {read:?}");
        t.elapsed()
    };
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    let waited = closed_after(&mut silent);
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    let mut quiet = std::net::TcpStream::connect(addr).unwrap();
    write!(quiet, "GET /elsewhere HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    quiet.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 404");
    let waited = closed_after(&mut quiet);
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");

    // A body over the limit: refused by its announced length, or (sent in chunks, with no
    // length) once the limit is passed while it is read.
    let post = |transfer: (&str, String), body: &[u8]| {
        let headers = [
            ("Host", addr.to_string()),
            ("Content-Type", "application/json".into()),
            ("Accept", "application/json, text/event-stream".into()),
            transfer,
        ];
        raw_http(addr, "POST", "/mcp", &headers, body)
    };
    let (status, said) = post(("Content-Length", (100 << 10).to_string()), b"");
    assert_eq!(status, 413, "{said}");
    let padding = "x".repeat(100 << 10);
    let message = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": padding, "version": "0"}}})
    .to_string();
    let chunked = format!("{:x}\r\n{message}\r\n0\r\n\r\n", message.len());
    let (status, said) = post(("Transfer-Encoding", "chunked".into()), chunked.as_bytes());
    assert_eq!(status, 413, "{said}");
    // Under the limit, the same message in chunks is served.
    let message = message.replace(&padding, "small");
    let chunked = format!("{:x}\r\n{message}\r\n0\r\n\r\n", message.len());
    let (status, said) = post(("Transfer-Encoding", "chunked".into()), chunked.as_bytes());
    assert_eq!(status, 200, "{said}");

    stop.cancel();
    runtime.block_on(served).unwrap().unwrap();
    runtime.shutdown_background();
}
