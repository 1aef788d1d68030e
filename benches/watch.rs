//! The watcher's latency and idle cost: from a file saved to its words found by keyword search,
//! and to its vectors being searchable; then CPU used while nothing changes.
//!
//!     cargo bench --bench watch -- [MODEL] [DIR]  (default all-minilm-l6-v2; `stand-in` for none)
//!
//! DIR's files are copied beside the 200 notes (a folder of PDFs, say: each batch syncs the whole
//! folder). `QSEARCH_BIN=PATH` runs that qsearch binary instead of this build's (a build of an
//! earlier commit, to compare side by side).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qsearch::search::{Mode, Query, Searcher};

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// Bytes the process has caused to be written to storage (`/proc/PID/io`, `write_bytes`).
fn written_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (path, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let model = args.first().cloned().unwrap_or_else(|| "all-minilm-l6-v2".into());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("notes");
    if let Some(beside) = args.get(1) {
        copy_tree(Path::new(beside), &root.join("beside"));
    }
    for i in 0..200 {
        let p = root.join(format!("n{i}.md"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("# Note {i}\n\nSome ordinary text about topic {i}.\n")).unwrap();
    }
    let index = tmp.path().join("index");
    let data = std::env::var_os("QSEARCH_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-data"));
    let bin = std::env::var_os("QSEARCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_qsearch").into());
    let mut child = Command::new(bin)
        .args(["watch", "--model", &model, "--no-nice"])
        .arg(&root)
        .env("QSEARCH_INDEX", &index)
        .env("QSEARCH_DATA_DIR", &data)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !qsearch::watch::State::read(&index).is_some_and(|s| s.ready) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut searcher = Searcher::open(&index).unwrap();
    let (mut keyword_ms, mut vector_ms) = (Vec::new(), Vec::new());
    let written_before = written_bytes(child.id());
    for i in 0..10 {
        let word = format!("zqx{i}marker");
        let t = Instant::now();
        std::fs::write(root.join(format!("new{i}.md")), format!("# New {i}\n\nA fresh note with {word} inside.\n"))
            .unwrap();
        let q = Query { text: word.clone(), k: 5, mode: Mode::Keyword, filter: Default::default(), per_doc: 1 };
        loop {
            searcher.refresh().unwrap();
            if !searcher.search(&q, None).unwrap().hits.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        keyword_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        while searcher.pending_chunks().unwrap() > 0 {
            std::thread::sleep(Duration::from_millis(5));
            searcher.refresh().unwrap();
        }
        vector_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(300));
    }
    // Let the last batch finish before reading what the batches wrote.
    std::thread::sleep(Duration::from_secs(3));
    let written_mb = (written_bytes(child.id()) - written_before) as f64 / 1e6 / 10.0;
    eprintln!("written to storage per batch: {written_mb:.2} MB");
    keyword_ms.sort_by(f64::total_cmp);
    vector_ms.sort_by(f64::total_cmp);
    eprintln!("save -> keyword hit: median {:.0} ms, max {:.0} ms", keyword_ms[5], keyword_ms[9]);
    eprintln!("save -> vector stored: median {:.0} ms, max {:.0} ms", vector_ms[5], vector_ms[9]);
    // Then measure 20 s of nothing happening.
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_secs(20));
    let idle = (cpu_ticks(child.id()) - before) as f64 / 100.0 / 20.0 * 100.0;
    eprintln!("idle CPU over 20 s: {idle:.2}% of one core");
    println!(
        "{}",
        serde_json::json!({"model": model, "keyword_ms_median": keyword_ms[5], "keyword_ms_max": keyword_ms[9],
            "vector_ms_median": vector_ms[5], "vector_ms_max": vector_ms[9], "idle_cpu_percent": idle,
            "written_mb_per_batch": written_mb})
    );
    let _ = child.kill();
    let _ = child.wait();
}
