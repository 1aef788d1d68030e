//! The soak's figures: growth of memory, open files and threads from the first quarter of the
//! run after its warm-up to the last quarter (a leak's sign), latency percentiles, the table
//! printed as the run goes.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::load::{Sample, Shared};
use crate::procs::ProcSample;

/// The warm-up left out of the growth figures (or the first half of a shorter run): the MCP
/// server keeps a session its client left without a DELETE for 5 minutes (rmcp's
/// `SessionConfig::DEFAULT_KEEP_ALIVE`), so its memory rises that long before it holds.
pub const WARM_UP_SECS: f64 = 300.0;
/// Resident memory may grow this much (ratio) from the first quarter's median to the last's...
pub const RSS_GROWTH: f64 = 0.05;
/// ...and by at least this much (MiB) before it counts: allocators keep a few pages of slack.
pub const RSS_FLOOR_MIB: f64 = 4.0;
/// Open files and threads: the last quarter's most over the first quarter's most.
pub const HANDLES_SLACK: u64 = 8;

#[derive(serde::Serialize)]
pub struct Growth {
    warm_up_s: f64,
    /// At the first sample (before the warm-up).
    rss_start_mib: f64,
    rss_first_mib: f64,
    rss_last_mib: f64,
    rss_peak_mib: f64,
    fds_first_max: u64,
    fds_last_max: u64,
    threads_first_max: u64,
    threads_last_max: u64,
    cpu_seconds: f64,
}

impl Growth {
    pub fn failures(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let grown = self.rss_last_mib - self.rss_first_mib;
        if grown > self.rss_first_mib * RSS_GROWTH && grown > RSS_FLOOR_MIB {
            out.push(format!(
                "{name}: resident memory grew from {:.1} MiB (first quarter after the warm-up, median) to {:.1} MiB (last quarter), \
                 over {:.0}% and {RSS_FLOOR_MIB} MiB",
                self.rss_first_mib,
                self.rss_last_mib,
                RSS_GROWTH * 100.0
            ));
        }
        if self.fds_last_max > self.fds_first_max + HANDLES_SLACK {
            out.push(format!(
                "{name}: open files grew from at most {} (first quarter after the warm-up) to {} (last quarter)",
                self.fds_first_max, self.fds_last_max
            ));
        }
        if self.threads_last_max > self.threads_first_max + HANDLES_SLACK {
            out.push(format!(
                "{name}: threads grew from at most {} (first quarter after the warm-up) to {} (last quarter)",
                self.threads_first_max, self.threads_last_max
            ));
        }
        out
    }
}

pub fn growth_of(samples: &[Sample], ran: f64, pick: impl Fn(&Sample) -> Option<ProcSample>) -> Option<Growth> {
    let quarter = |from: f64, to: f64| -> Vec<ProcSample> {
        samples.iter().filter(|s| s.t >= from && s.t < to).filter_map(&pick).collect()
    };
    let warm = WARM_UP_SECS.min(ran / 2.0);
    let span = ran - warm;
    let (first, last) = (quarter(warm, warm + span / 4.0), quarter(ran - span / 4.0, f64::MAX));
    if first.is_empty() || last.is_empty() {
        return None;
    }
    let median_mib = |v: &[ProcSample]| {
        let mut kib: Vec<u64> = v.iter().map(|s| s.rss_kib).collect();
        kib.sort_unstable();
        kib[kib.len() / 2] as f64 / 1024.0
    };
    let all: Vec<ProcSample> = samples.iter().filter_map(&pick).collect();
    Some(Growth {
        warm_up_s: warm,
        rss_start_mib: all[0].rss_kib as f64 / 1024.0,
        rss_first_mib: median_mib(&first),
        rss_last_mib: median_mib(&last),
        rss_peak_mib: all.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        fds_first_max: first.iter().map(|s| s.fds).max().unwrap_or(0),
        fds_last_max: last.iter().map(|s| s.fds).max().unwrap_or(0),
        threads_first_max: first.iter().map(|s| s.threads).max().unwrap_or(0),
        threads_last_max: last.iter().map(|s| s.threads).max().unwrap_or(0),
        cpu_seconds: all.last().map_or(0.0, |s| s.cpu_ticks as f64 / 100.0),
    })
}

pub fn growth_line(g: &Value) -> String {
    if g.is_null() {
        return "too few samples".into();
    }
    format!(
        "RSS {:.1} at the start; after {:.0} s of warm-up {:.1} -> {:.1} MiB (peak {:.1}), fds {} -> {}, threads {} -> {}, \
         CPU {:.0} s",
        g["rss_start_mib"].as_f64().unwrap_or(0.0),
        g["warm_up_s"].as_f64().unwrap_or(0.0),
        g["rss_first_mib"].as_f64().unwrap_or(0.0),
        g["rss_last_mib"].as_f64().unwrap_or(0.0),
        g["rss_peak_mib"].as_f64().unwrap_or(0.0),
        g["fds_first_max"],
        g["fds_last_max"],
        g["threads_first_max"],
        g["threads_last_max"],
        g["cpu_seconds"].as_f64().unwrap_or(0.0)
    )
}

pub fn stats(mut ms: Vec<f64>) -> Value {
    if ms.is_empty() {
        return json!({"count": 0});
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    json!({"count": ms.len(), "p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ms[ms.len() - 1]})
}

pub fn short_stats(s: &Value) -> String {
    if s["count"] == 0 {
        return "none".into();
    }
    let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
    format!("n {} p50 {:.0} p95 {:.0} p99 {:.0} max {:.0}", s["count"], f("p50"), f("p95"), f("p99"), f("max"))
}

pub fn table_header() -> String {
    let top = format!(
        "{:>9} | {:<21} | {:<21} | {:<13} | {:<13} | {:<15} |",
        "", "watcher", "mcp server", "cli search ms", "mcp search ms", "save->found ms"
    );
    let proc = format!("{:>7} {:>5} {:>7}", "rss MiB", "fds", "threads");
    let bottom = format!(
        "{:>9} | {proc} | {proc} | {:>6} {:>6} | {:>6} {:>6} | {:>7} {:>7} | {:>5} {:>5}",
        "time s", "p50", "p95", "p50", "p95", "p50", "max", "ops", "files"
    );
    format!("{top}\n{bottom}")
}

/// A row for the window [from, to): the last sample's memory and handles, the window's latencies.
pub fn table_row(shared: &Shared, from: f64, to: f64) -> String {
    let in_window = |v: &Mutex<Vec<(f64, f64)>>| -> Vec<f64> {
        v.lock().unwrap().iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, ms)| *ms).collect()
    };
    let pct = |v: Vec<f64>| -> (String, String, String) {
        let s = stats(v);
        let f = |k: &str| s.get(k).and_then(Value::as_f64).map_or("-".to_string(), |x| format!("{x:.0}"));
        (f("p50"), f("p95"), f("max"))
    };
    let (cli50, cli95, _) = pct(in_window(&shared.cli_ms));
    let (mcp50, mcp95, _) = pct(in_window(&shared.mcp_ms));
    let delays: Vec<f64> =
        shared.ledger.delays().into_iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, ms)| ms).collect();
    let (up50, _, upmax) = pct(delays);
    let last = shared.samples.lock().unwrap().last().cloned();
    let proc_cols = |p: Option<ProcSample>| match p {
        Some(p) => format!("{:>7.1} {:>5} {:>7}", p.rss_kib as f64 / 1024.0, p.fds, p.threads),
        None => format!("{:>7} {:>5} {:>7}", "-", "-", "-"),
    };
    format!(
        "{:>9} | {} | {} | {cli50:>6} {cli95:>6} | {mcp50:>6} {mcp95:>6} | {up50:>7} {upmax:>7} | {:>5} {:>5}",
        format!("{from:.0}-{to:.0}"),
        proc_cols(last.as_ref().and_then(|s| s.watcher)),
        proc_cols(last.as_ref().and_then(|s| s.mcp)),
        shared.ops.load(Ordering::Relaxed),
        shared.live_files.load(Ordering::Relaxed),
    )
}

pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
