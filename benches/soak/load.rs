//! The soak's moving parts, each on its own thread: the churn, the checker that polls every
//! open promise, the searching clients (`qsearch search` processes, MCP sessions), and the
//! sampler that reads the servers' /proc every few seconds and notices one that exited.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use crate::churn::{Churn, Ledger};
use crate::common::Rng;
use crate::mcp_client::McpClient;
use crate::procs::{self, ProcSample, Server};
use qsearch::search::{Mode, Query, Searcher};

/// One tick of the sampler.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub t: f64,
    pub watcher: Option<ProcSample>,
    pub mcp: Option<ProcSample>,
    pub index_bytes: u64,
    pub wal_bytes: u64,
    pub live_files: usize,
    pub ops: u64,
    pub open_promises: usize,
    pub oldest_open_ms: f64,
}

/// What every thread shares.
pub struct Shared {
    pub start: Instant,
    /// Stops the churn and the searching clients.
    pub stop: AtomicBool,
    /// Stops the checker (after the settle).
    pub stop_checker: AtomicBool,
    pub ledger: Ledger,
    /// (seconds into the run, milliseconds) of each search.
    pub cli_ms: Mutex<Vec<(f64, f64)>>,
    pub mcp_ms: Mutex<Vec<(f64, f64)>>,
    pub samples: Mutex<Vec<Sample>>,
    /// What went wrong (the first few of each kind kept whole, all counted).
    pub errors: Mutex<Vec<String>>,
    pub error_count: AtomicU64,
    pub crashed: Mutex<Vec<String>>,
    pub ops: AtomicU64,
    pub live_files: AtomicU64,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            start: Instant::now(),
            stop: AtomicBool::new(false),
            stop_checker: AtomicBool::new(false),
            ledger: Ledger::default(),
            cli_ms: Mutex::default(),
            mcp_ms: Mutex::default(),
            samples: Mutex::default(),
            errors: Mutex::default(),
            error_count: AtomicU64::new(0),
            crashed: Mutex::default(),
            ops: AtomicU64::new(0),
            live_files: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn error(&self, what: String) {
        if self.error_count.fetch_add(1, Ordering::Relaxed) < 20 {
            self.errors.lock().unwrap().push(format!("[{:.0}s] {what}", self.now()));
        }
    }
}

/// How to run qsearch against the soak's index.
#[derive(Clone)]
pub struct Qsearch {
    pub bin: OsString,
    pub index: PathBuf,
    pub data: PathBuf,
}

impl Qsearch {
    pub fn command(&self, index: &Path) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("QSEARCH_INDEX", index).env("QSEARCH_DATA_DIR", &self.data).env_remove("QSEARCH_MODEL");
        c
    }
}

pub fn churn_loop(mut churn: Churn, shared: &Shared, rate: f64, burst: usize, every: u64) {
    let pause = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let mut next_burst = every as f64;
    if let Err(e) = churn.populate(&shared.ledger, shared.now()) {
        shared.error(format!("churn: {e}"));
    }
    let mut next_step = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let now = shared.now();
        let result = if burst > 0 && now >= next_burst {
            next_burst += every as f64;
            (0..burst)
                .try_for_each(|_| churn.step(&shared.ledger, now, true))
                .and_then(|()| churn.move_folder(&shared.ledger, now))
        } else {
            churn.step(&shared.ledger, now, false)
        };
        if let Err(e) = result {
            shared.error(format!("churn: {e}"));
        }
        shared.ops.store(churn.ops.total(), Ordering::Relaxed);
        shared.live_files.store(churn.live() as u64, Ordering::Relaxed);
        next_step += pause;
        let now = Instant::now();
        if next_step > now {
            std::thread::sleep(next_step - now);
        } else {
            next_step = now;
        }
    }
    eprintln!("churn: {:?}", churn.ops);
}

/// Polls every open promise with a keyword search until it holds.
pub fn checker(shared: &Shared, index: &Path) {
    let mut searcher = match Searcher::open(index) {
        Ok(s) => s,
        Err(e) => return shared.error(format!("checker: cannot open the index: {e:#}")),
    };
    while !shared.stop_checker.load(Ordering::Relaxed) {
        let open = shared.ledger.open();
        if open.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        if let Err(e) = searcher.refresh() {
            shared.error(format!("checker: refresh: {e:#}"));
        }
        for promise in &open {
            match keyword(&searcher, &promise.token) {
                Ok(paths) if promise.want.holds(&paths) => shared.ledger.met(promise),
                Ok(_) => {}
                Err(e) => shared.error(format!("checker: search {}: {e:#}", promise.token)),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn keyword(searcher: &Searcher, token: &str) -> Result<Vec<String>> {
    let q = Query { text: token.to_string(), k: 5, mode: Mode::Keyword, filter: Default::default(), per_doc: 1 };
    Ok(searcher.search(&q, None)?.hits.into_iter().map(|h| h.path).collect())
}

pub fn query(rng: &mut Rng, words: &[String]) -> Vec<String> {
    (0..1 + rng.below(3)).map(|_| words[rng.below(words.len())].clone()).collect()
}

/// `qsearch search` processes one after another, as a user at a shell (hybrid, the default).
pub fn cli_client(shared: &Shared, q: &Qsearch, words: &[String], seed: u64) {
    let mut rng = Rng(seed);
    while !shared.stop.load(Ordering::Relaxed) {
        let words = query(&mut rng, words);
        let t = Instant::now();
        let out = q.command(&q.index).args(["search", "--json", "-k", "10"]).args(&words).output();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        match out {
            Ok(out) if out.status.code() == Some(0) || out.status.code() == Some(1) => {
                let parsed: Result<Value, _> = serde_json::from_slice(&out.stdout);
                if !parsed.as_ref().is_ok_and(|v| v["hits"].is_array()) {
                    shared.error(format!("CLI search {words:?}: not JSON with hits: {:?}", out.stdout));
                }
                shared.cli_ms.lock().unwrap().push((shared.now(), ms));
            }
            Ok(out) => shared.error(format!(
                "CLI search {words:?} ended with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => shared.error(format!("CLI search: cannot start: {e}")),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An agent's MCP session: searches (mostly hybrid), and every 100 calls a new session, the
/// old one closed (DELETE) or, every other time when `abandon`, left open as a killed client
/// leaves it.
pub fn mcp_client(shared: &Shared, url: &str, words: &[String], abandon: bool, seed: u64) {
    let mut rng = Rng(seed);
    let mut sessions = 0u64;
    let mut client: Option<McpClient> = None;
    let mut calls = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        if client.is_none() {
            match McpClient::connect(url) {
                Ok(c) => {
                    client = Some(c);
                    sessions += 1;
                }
                Err(e) => {
                    shared.error(format!("MCP connect: {e:#}"));
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let c = client.as_mut().unwrap();
        let text = query(&mut rng, words).join(" ");
        let mode = if rng.below(5) == 0 { "keyword" } else { "hybrid" };
        let t = Instant::now();
        match c.search(&text, mode, 10) {
            Ok(_) => shared.mcp_ms.lock().unwrap().push((shared.now(), t.elapsed().as_secs_f64() * 1e3)),
            Err(e) => shared.error(format!("MCP search {text:?}: {e:#}")),
        }
        calls += 1;
        if calls % 100 == 0 {
            let old = client.take().unwrap();
            // Dropped without a DELETE, a session stays open on the server until it times out.
            if (!abandon || sessions.is_multiple_of(2))
                && let Err(e) = old.close()
            {
                shared.error(format!("MCP close: {e:#}"));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn sampler(shared: &Shared, servers: &Mutex<[Server; 2]>, index: &Path, every: Duration) {
    loop {
        let t = shared.now();
        let (watcher, mcp) = {
            let mut servers = servers.lock().unwrap();
            for s in servers.iter_mut() {
                if !s.alive() {
                    let what = format!(
                        "the {} exited during the run ({}) at {t:.0} s; its log ends:\n{}",
                        s.name,
                        s.exited.map_or("?".into(), |e| e.to_string()),
                        s.log_tail(20)
                    );
                    shared.crashed.lock().unwrap().push(what);
                    shared.stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
            (procs::sample(servers[0].pid()), procs::sample(servers[1].pid()))
        };
        let size = |name: &str| std::fs::metadata(index.join(name)).map(|m| m.len()).unwrap_or(0);
        let index_bytes = std::fs::read_dir(index)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        let sample = Sample {
            t,
            watcher,
            mcp,
            index_bytes,
            wal_bytes: size("index.sqlite-wal"),
            live_files: shared.live_files.load(Ordering::Relaxed) as usize,
            ops: shared.ops.load(Ordering::Relaxed),
            open_promises: shared.ledger.open().len(),
            oldest_open_ms: shared.ledger.oldest_open_ms(),
        };
        shared.samples.lock().unwrap().push(sample);
        let wake = shared.start + Duration::from_secs_f64(t) + every;
        while Instant::now() < wake {
            if shared.stop_checker.load(Ordering::Relaxed) && shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
