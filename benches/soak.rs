//! A long day under load (issue 25, item 4): `qsearch watch` on a folder, `qsearch mcp --http`
//! on the same index, searches through both (`qsearch search` processes and MCP clients over
//! HTTP), and file churn (creates, edits in place and by rename, edits of the corpus's own
//! files, renames, deletes, folder moves; a steady rate plus bursts), all at once for a set time.
//!
//!     cargo bench --bench soak -- [--secs 600 | --short] [--corpus DIR | --corpus none] [--model stand-in]
//!         [--rate 2] [--burst 100] [--burst-every 60] [--cli 2] [--mcp 2] [--bound 30] [--files 300]
//!         [--no-nice] [--no-abandon] [--keep]
//!
//! The folder is a copy of DIR (default ../shared/corpora/til-simonw, else generated notes) in a
//! temporary directory. Every few seconds it samples the two servers' resident memory, open file
//! descriptors and threads (/proc). Each churn step writes a unique token into a file (or moves
//! or removes one), and a keyword search (in process, polling) measures how long until the token
//! is found at its file's current path, or no longer found once removed. At the end, after a
//! settle, every promise is checked again through the searcher, the MCP server and (a sample)
//! the CLI, and the index is compared with a fresh index of the final folder.
//!
//! Prints a table as the run goes and a JSON summary (with the samples) on stdout. Exits 1 on a
//! lost update (a token not found at its file, or found after its removal), an update slower
//! than `--bound` seconds, a server that exits or stops uncleanly, a search that errs, or growth
//! from the first quarter of the run after a 5-minute warm-up (the first half of a shorter run)
//! to its last quarter beyond the thresholds in soak/report.rs (a leak).
//! `QSEARCH_BIN=PATH` runs another qsearch build.

#[path = "soak/churn.rs"]
mod churn;
mod common;
#[path = "soak/corpus.rs"]
mod corpus;
#[path = "soak/load.rs"]
mod load;
#[path = "soak/mcp_client.rs"]
mod mcp_client;
#[path = "soak/procs.rs"]
mod procs;
#[path = "soak/report.rs"]
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use churn::{Churn, Want};
use corpus::{copy_tree, count_files, generate_notes, read_corpus};
use load::{Qsearch, Sample, Shared, checker, churn_loop, cli_client, keyword, mcp_client, sampler};
use mcp_client::McpClient;
use procs::Server;
use qsearch::search::Searcher;
use report::{cpu_name, growth_line, growth_of, short_stats, stats, table_header, table_row};

struct Args {
    secs: u64,
    corpus: Option<PathBuf>,
    model: String,
    rate: f64,
    burst: usize,
    burst_every: u64,
    cli: usize,
    mcp: usize,
    sample_secs: u64,
    settle_secs: u64,
    bound_secs: f64,
    files: usize,
    nice: bool,
    /// MCP clients always end their sessions with a DELETE (by default every other one is left
    /// open, as a killed client leaves it).
    no_abandon: bool,
    keep: bool,
}

fn parse_args() -> Args {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let default_corpus = manifest.join("../shared/corpora/til-simonw");
    let mut a = Args {
        secs: 600,
        corpus: default_corpus.is_dir().then_some(default_corpus),
        model: "stand-in".into(),
        rate: 2.0,
        burst: 100,
        burst_every: 60,
        cli: 2,
        mcp: 2,
        sample_secs: 5,
        settle_secs: 60,
        bound_secs: 30.0,
        files: 300,
        nice: true,
        no_abandon: false,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        let number = |v: String, name: &str| -> f64 { v.parse().unwrap_or_else(|_| usage(&format!("{name}: {v}?"))) };
        match arg.as_str() {
            "--bench" => {}
            "--short" => {
                a.secs = 60;
                a.burst_every = 20;
                a.settle_secs = 30;
            }
            "--secs" => a.secs = number(value("--secs"), "--secs") as u64,
            "--corpus" => {
                let v = value("--corpus");
                a.corpus = (v != "none").then(|| PathBuf::from(v));
            }
            "--model" => a.model = value("--model"),
            "--rate" => a.rate = number(value("--rate"), "--rate"),
            "--burst" => a.burst = number(value("--burst"), "--burst") as usize,
            "--burst-every" => a.burst_every = number(value("--burst-every"), "--burst-every") as u64,
            "--cli" => a.cli = number(value("--cli"), "--cli") as usize,
            "--mcp" => a.mcp = number(value("--mcp"), "--mcp") as usize,
            "--bound" => a.bound_secs = number(value("--bound"), "--bound"),
            "--files" => a.files = number(value("--files"), "--files") as usize,
            "--no-nice" => a.nice = false,
            "--no-abandon" => a.no_abandon = true,
            "--keep" => a.keep = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: cargo bench --bench soak -- [--secs N | --short] [--corpus DIR|none] [--model M] \
         [--rate OPS_PER_S] [--burst N] [--burst-every S] [--cli N] [--mcp N] [--bound S] [--files N] [--no-nice] [--no-abandon] [--keep]"
    );
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    match run(&args) {
        Ok(failures) if failures.is_empty() => eprintln!("soak passed"),
        Ok(failures) => {
            for f in &failures {
                eprintln!("FAIL: {f}");
            }
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("soak could not run: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run(args: &Args) -> Result<Vec<String>> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("notes");
    let corpus_name = match &args.corpus {
        Some(dir) => {
            copy_tree(dir, &root).with_context(|| format!("copying {}", dir.display()))?;
            dir.display().to_string()
        }
        None => {
            generate_notes(&root, 400)?;
            "generated (400 notes)".to_string()
        }
    };
    let root = root.canonicalize()?;
    let (words, editable) = read_corpus(&root);
    let files_at_start = count_files(&root);
    eprintln!("corpus: {corpus_name}: {files_at_start} files, {} words to query, in {}", words.len(), root.display());
    let q = Qsearch {
        bin: std::env::var_os("QSEARCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_qsearch").into()),
        index: tmp.path().join("index"),
        data: std::env::var_os("QSEARCH_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-data")),
    };
    let (watcher, mcp, url) = start_servers(args, &q, &root, tmp.path())?;
    let servers = Arc::new(Mutex::new([watcher, mcp]));
    let shared = Arc::new(Shared::new());
    let churn = Churn::new(&root, words.clone(), editable, args.files, 0x5EED_0001);
    let (ran, checker, sampler) = drive(args, &shared, &servers, churn, words, &q, &url);

    let crashed = shared.crashed.lock().unwrap().clone();
    if !crashed.is_empty() {
        for s in servers.lock().unwrap().iter_mut() {
            s.stop(Duration::from_secs(20));
        }
        shared.stop_checker.store(true, Ordering::Relaxed);
        println!("{}", json!({ "cpu": cpu_name(), "seconds": ran, "failures": crashed }));
        if args.keep {
            eprintln!("kept {}", tmp.keep().display());
        }
        return Ok(crashed);
    }
    // Settle: the promises still open get time to hold.
    let settle_start = Instant::now();
    while !shared.ledger.open().is_empty() && settle_start.elapsed().as_secs() < args.settle_secs {
        std::thread::sleep(Duration::from_millis(100));
    }
    let settle_s = settle_start.elapsed().as_secs_f64();
    shared.stop_checker.store(true, Ordering::Relaxed);
    let _ = checker.join();
    let _ = sampler.join();
    let open_after_settle = shared.ledger.open().len();
    eprintln!("settled in {settle_s:.1} s; {open_after_settle} promises still open");

    let finals = final_checks(args, &shared, &servers, &q, &url, &root, tmp.path())?;
    let mut failures = finals.failures(args, &shared);
    let samples = shared.samples.lock().unwrap().clone();
    let mut growth = serde_json::Map::new();
    for (name, watcher) in [("watcher", true), ("mcp", false)] {
        let g = growth_of(&samples, ran, |s: &Sample| if watcher { s.watcher } else { s.mcp });
        failures.extend(g.iter().flat_map(|g| g.failures(name)));
        growth.insert(name.into(), serde_json::to_value(&g)?);
    }
    let delays = shared.ledger.delays();
    let lat = |v: &Mutex<Vec<(f64, f64)>>| stats(v.lock().unwrap().iter().map(|(_, ms)| *ms).collect());
    let summary = json!({
        "cpu": cpu_name(),
        "corpus": corpus_name,
        "files_at_start": files_at_start,
        "model": args.model,
        "seconds": ran,
        "settle_seconds": settle_s,
        "churn": {"rate_per_s": args.rate, "burst": args.burst, "burst_every_s": args.burst_every,
            "ops": shared.ops.load(Ordering::Relaxed)},
        "clients": {"cli": args.cli, "mcp": args.mcp, "mcp_sessions_abandoned": !args.no_abandon},
        "search_ms": {"cli": lat(&shared.cli_ms), "mcp": lat(&shared.mcp_ms)},
        "update_ms": stats(delays.iter().map(|(_, ms)| *ms).collect()),
        "updates": {
            "tokens": finals.promises,
            "promises_made": shared.ledger.made(),
            "held": delays.len(),
            "superseded": shared.ledger.superseded(),
            "late": finals.late,
            "open_after_settle": open_after_settle,
            "wrong_searcher": finals.searcher.wrong.len(),
            "wrong_mcp": finals.mcp.wrong.len(),
            "wrong_cli_sample": finals.cli.wrong.len(),
            "cli_sample": finals.cli.checked,
        },
        "index": {"watched": finals.watched["stats"], "fresh": finals.fresh["stats"]},
        "growth": growth,
        "errors": shared.error_count.load(Ordering::Relaxed),
        "warnings_logged": finals.warnings,
        "failures": failures,
        "samples": samples,
    });
    print_summary(&summary);
    println!("{summary}");
    if args.keep {
        eprintln!("kept {}", tmp.keep().display());
    }
    Ok(failures)
}

/// The watcher on `root` (ready once its first reconcile is done), then the MCP server on the
/// same index, with the URL it listens at.
fn start_servers(args: &Args, q: &Qsearch, root: &Path, logs: &Path) -> Result<(Server, Server, String)> {
    let mut watch = q.command(&q.index);
    watch.args(["watch", "--model", &args.model]).arg(root);
    if !args.nice {
        watch.arg("--no-nice");
    }
    let t = Instant::now();
    let mut watcher = Server::start("watcher", watch, &logs.join("watch.log"))?;
    while !qsearch::watch::State::read(&q.index).is_some_and(|s| s.ready) {
        if !watcher.alive() {
            bail!("the watcher ended before it was ready:\n{}", watcher.log_tail(20));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("watcher ready (initial index) in {:.1} s", t.elapsed().as_secs_f64());
    let mut mcp = q.command(&q.index);
    mcp.args(["mcp", "--http", "127.0.0.1:0"]);
    let mut mcp = Server::start("MCP server", mcp, &logs.join("mcp.log"))?;
    let line = mcp.wait_for_line("listening on http://", Duration::from_secs(120))?;
    let url = line[line.find("http://").unwrap()..].split_whitespace().next().unwrap().to_string();
    McpClient::connect(&url)?.close()?;
    eprintln!("MCP server listening on {url}");
    Ok((watcher, mcp, url))
}

/// The run itself: churn, clients, checker and sampler for `args.secs` (or until a server
/// exits), a table row per tenth of it. Returns how long it ran, and the checker and sampler,
/// which go on through the settle.
fn drive(
    args: &Args,
    shared: &Arc<Shared>,
    servers: &Arc<Mutex<[Server; 2]>>,
    churn: Churn,
    words: Vec<String>,
    q: &Qsearch,
    url: &str,
) -> (f64, JoinHandle<()>, JoinHandle<()>) {
    let words = Arc::new(words);
    let mut threads = Vec::new();
    {
        let (shared, rate, burst, every) = (shared.clone(), args.rate, args.burst, args.burst_every);
        threads.push(std::thread::spawn(move || churn_loop(churn, &shared, rate, burst, every)));
    }
    for i in 0..args.cli {
        let (shared, q, words) = (shared.clone(), q.clone(), words.clone());
        threads.push(std::thread::spawn(move || cli_client(&shared, &q, &words, 0xC11 + i as u64)));
    }
    for i in 0..args.mcp {
        let (shared, url, words, abandon) = (shared.clone(), url.to_string(), words.clone(), !args.no_abandon);
        threads.push(std::thread::spawn(move || mcp_client(&shared, &url, &words, abandon, 0x3C9 + i as u64)));
    }
    let checker = {
        let (shared, index) = (shared.clone(), q.index.clone());
        std::thread::spawn(move || checker(&shared, &index))
    };
    let sampler = {
        let (shared, servers, index) = (shared.clone(), servers.clone(), q.index.clone());
        let every = Duration::from_secs(args.sample_secs);
        std::thread::spawn(move || sampler(&shared, &servers, &index, every))
    };
    let window = (args.secs / 10).max(10) as f64;
    eprintln!("{}", table_header());
    let mut row_start = 0.0;
    while shared.now() < args.secs as f64 && !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if shared.now() >= row_start + window {
            eprintln!("{}", table_row(shared, row_start, row_start + window));
            row_start += window;
        }
    }
    let ran = shared.now();
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    if ran > row_start + 1.0 {
        eprintln!("{}", table_row(shared, row_start, ran));
    }
    (ran, checker, sampler)
}

/// What the end of the run found.
struct Finals {
    promises: usize,
    searcher: Check,
    mcp: Check,
    cli: Check,
    late: usize,
    watched: Value,
    fresh: Value,
    watcher_exit: Option<ExitStatus>,
    mcp_exit: Option<ExitStatus>,
    warnings: Value,
}

/// Every promise checked again through each way of searching; the servers stopped as at the
/// end of a session (SIGTERM); the watched index compared with a fresh index of the final folder.
fn final_checks(
    args: &Args,
    shared: &Shared,
    servers: &Mutex<[Server; 2]>,
    q: &Qsearch,
    url: &str,
    root: &Path,
    tmp: &Path,
) -> Result<Finals> {
    let promises = shared.ledger.all();
    let searcher = {
        let mut searcher = Searcher::open(&q.index)?;
        searcher.refresh()?;
        verify(&promises, |token| keyword(&searcher, token))
    };
    let mcp = {
        let mut client = McpClient::connect(url)?;
        let check = verify(&promises, |token| client.search(token, "keyword", 5));
        client.close()?;
        check
    };
    let cli = {
        let mut sample: Vec<(String, Want)> =
            promises.iter().filter(|(_, w)| *w != Want::Gone).take(10).cloned().collect();
        sample.extend(promises.iter().filter(|(_, w)| *w == Want::Gone).take(10).cloned());
        verify(&sample, |token| cli_keyword(q, token))
    };
    let watched = status(q, &q.index)?;
    let (watcher_exit, mcp_exit, warnings) = {
        let mut servers = servers.lock().unwrap();
        let watcher_exit = servers[0].stop(Duration::from_secs(60));
        let mcp_exit = servers[1].stop(Duration::from_secs(20));
        let warnings: serde_json::Map<String, Value> =
            servers.iter().map(|s| (s.name.to_string(), Value::from(warnings(&s.log_text())))).collect();
        (watcher_exit, mcp_exit, Value::Object(warnings))
    };
    let fresh_dir = tmp.join("fresh");
    let out = q.command(&fresh_dir).args(["index", "--quiet", "--model", &args.model]).arg(root).output()?;
    if !out.status.success() {
        bail!("indexing the final folder afresh failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let fresh = status(q, &fresh_dir)?;
    let late = shared.ledger.delays().iter().filter(|(_, ms)| *ms > args.bound_secs * 1e3).count();
    Ok(Finals { promises: promises.len(), searcher, mcp, cli, late, watched, fresh, watcher_exit, mcp_exit, warnings })
}

impl Finals {
    fn failures(&self, args: &Args, shared: &Shared) -> Vec<String> {
        let mut failures = Vec::new();
        for (name, check) in [("searcher", &self.searcher), ("MCP", &self.mcp), ("CLI (a sample)", &self.cli)] {
            if !check.wrong.is_empty() {
                failures.push(format!(
                    "{name}: {} of {} promises do not hold after the settle (lost updates): {:?}",
                    check.wrong.len(),
                    check.checked,
                    &check.wrong[..check.wrong.len().min(5)]
                ));
            }
        }
        if self.late > 0 {
            failures.push(format!("{} updates took over {} s to be found", self.late, args.bound_secs));
        }
        let errors = shared.error_count.load(Ordering::Relaxed);
        if errors > 0 {
            failures.push(format!("{errors} errors: {:?}", shared.errors.lock().unwrap()));
        }
        for (name, exit) in [("watcher", self.watcher_exit), ("MCP server", self.mcp_exit)] {
            match exit {
                Some(s) if s.success() => {}
                Some(s) => failures.push(format!("the {name} ended with {s} on SIGTERM")),
                None => failures.push(format!("the {name} did not stop on SIGTERM")),
            }
        }
        for key in ["documents", "chunks"] {
            let (watched, fresh) = (&self.watched["stats"][key], &self.fresh["stats"][key]);
            if watched != fresh {
                failures.push(format!(
                    "the watched index holds {watched} {key}, a fresh index of the final folder {fresh}"
                ));
            }
        }
        failures
    }
}

fn print_summary(s: &Value) {
    let u = &s["updates"];
    eprintln!("\nsummary ({}):", s["cpu"].as_str().unwrap_or_default());
    eprintln!("  search ms: CLI {}; MCP {}", short_stats(&s["search_ms"]["cli"]), short_stats(&s["search_ms"]["mcp"]));
    eprintln!("  save -> found ms: {}", short_stats(&s["update_ms"]));
    eprintln!(
        "  {} churn steps, {} tokens, {} promises: {} held, {} superseded, {} late; wrong after the settle: searcher {}, \
         MCP {}, CLI {} of a sample of {}",
        s["churn"]["ops"],
        u["tokens"],
        u["promises_made"],
        u["held"],
        u["superseded"],
        u["late"],
        u["wrong_searcher"],
        u["wrong_mcp"],
        u["wrong_cli_sample"],
        u["cli_sample"]
    );
    for (name, g) in s["growth"].as_object().into_iter().flatten() {
        eprintln!("  {name}: {}", growth_line(g));
    }
    let (w, f) = (&s["index"]["watched"], &s["index"]["fresh"]);
    eprintln!(
        "  index: watched {} documents / {} chunks, fresh {} / {}",
        w["documents"], w["chunks"], f["documents"], f["chunks"]
    );
}

// ---- the final checks ----

struct Check {
    checked: usize,
    /// (token, what it should find, what it found).
    wrong: Vec<String>,
}

fn verify(promises: &[(String, Want)], mut search: impl FnMut(&str) -> Result<Vec<String>>) -> Check {
    let mut wrong = Vec::new();
    for (token, want) in promises {
        match search(token) {
            Ok(paths) if want.holds(&paths) => {}
            Ok(paths) => wrong.push(format!("{token}: want {want:?}, found {paths:?}")),
            Err(e) => wrong.push(format!("{token}: search failed: {e:#}")),
        }
    }
    Check { checked: promises.len(), wrong }
}

fn cli_keyword(q: &Qsearch, token: &str) -> Result<Vec<String>> {
    let out = q.command(&q.index).args(["search", "--json", "--mode", "keyword", "-k", "5", token]).output()?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!("exit {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["hits"].as_array().into_iter().flatten().filter_map(|h| h["path"].as_str().map(String::from)).collect())
}

fn status(q: &Qsearch, index: &Path) -> Result<Value> {
    let out = q.command(index).args(["status", "--json"]).output()?;
    if !out.status.success() {
        bail!("status failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The log's warning and error lines, counted, with the first few.
fn warnings(log: &str) -> String {
    let lines: Vec<&str> =
        log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("error")).collect();
    match lines.len() {
        0 => "none".into(),
        n => format!("{n}: {}", lines[..n.min(3)].join(" | ")),
    }
}
