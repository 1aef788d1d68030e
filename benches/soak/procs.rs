//! The two long-lived servers of the soak (the watcher, the MCP server): started with their
//! stderr in a log file, sampled from /proc (resident memory, open file descriptors, threads,
//! CPU time), watched for an early exit, and stopped with SIGTERM as a user's session ends.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What /proc says of a process at one moment.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// User and system time, in clock ticks (1/100 s).
    pub cpu_ticks: u64,
}

pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(ProcSample { rss_kib: field("VmRSS:"), fds, threads: field("Threads:"), cpu_ticks: tick(11) + tick(12) })
}

pub struct Server {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
    /// How it ended, once it has.
    pub exited: Option<ExitStatus>,
}

impl Server {
    pub fn start(name: &'static str, mut command: Command, log: &Path) -> Result<Server> {
        let file = File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start the {name}"))?;
        Ok(Server { name, child, log: log.to_path_buf(), exited: None })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running (an exit is remembered).
    pub fn alive(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited.is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until its log holds a line containing `needle` (the line), or fails when it exits
    /// or `limit` passes.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> Result<String> {
        let t = Instant::now();
        loop {
            if let Some(line) = self.log_text().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if !self.alive() {
                bail!("the {} ended before saying {needle:?}:\n{}", self.name, self.log_tail(20));
            }
            if t.elapsed() > limit {
                bail!("the {} did not say {needle:?} within {limit:?}:\n{}", self.name, self.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then how it exited (killed after `grace`).
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if !self.alive() {
            return self.exited;
        }
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        while self.alive() && t.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.alive() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
            return None;
        }
        self.exited
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
