//! What a run did, file by file and in total: the typed outcome of each file, and the report the
//! commands print (or write as JSON).

use std::path::PathBuf;
use std::time::Duration;

use crate::scan::Skip;

/// What became of one file that was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Read, chunked and written with this many chunks.
    Indexed { chunks: usize, lossy: bool, note: Option<String> },
    /// Same content as stored (only its size and mtime were updated).
    Unchanged,
    /// Left out on purpose.
    Skipped(Skip),
    /// Could not be indexed; its stored version, if any, is kept.
    Failed(String),
}

/// A file that was skipped or failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNote<W> {
    pub path: PathBuf,
    pub why: W,
}

/// Written as `[path, why]`, the shape `qsearch index --json` has always had.
impl<W: std::fmt::Display> serde::Serialize for FileNote<W> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.path.display().to_string(), self.why.to_string()).serialize(s)
    }
}

#[derive(Debug, Clone)]
pub enum Progress {
    Scanned {
        root: PathBuf,
        files: usize,
    },
    File {
        done: usize,
        total: usize,
    },
    /// Once every file is written and a batch ran without the workers beside it: the texts
    /// still to embed and the time they should take at that speed.
    Estimate {
        chunks: u64,
        tokens_per_sec: f64,
        eta: Duration,
    },
    /// After each batch of vectors: texts embedded so far in this run, their tokens, the recent
    /// speed, and the time left for what is pending now (more may come while `syncing`).
    Embedded {
        done: u64,
        tokens: u64,
        tokens_per_sec: f64,
        eta: Option<Duration>,
        syncing: bool,
    },
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: Vec<FileNote<Skip>>,
    pub failed: Vec<FileNote<String>>,
    pub unsupported: usize,
    pub lossy: Vec<String>,
    /// Indexed, but part of the file could not be read (pages of a PDF).
    pub partial: Vec<FileNote<String>>,
    pub chunks_written: usize,
    pub embedded: u64,
    pub tokens: u64,
    pub truncated: usize,
    pub pending: u64,
    /// Why the model stopped embedding in this run; its texts are `pending` (searched by
    /// keyword meanwhile) until a later run embeds them.
    pub embed_error: Option<String>,
    pub interrupted: bool,
    pub sync_secs: f64,
    pub embed_secs: f64,
    /// Time inside the model (tokenising included): the rest of indexing is overhead.
    pub model_secs: f64,
}

impl Report {
    /// Counts one file's outcome.
    /// Counts a batch of `n` texts the model embedded in `secs`.
    pub fn embedded_batch(&mut self, n: u64, out: &crate::embed::Embedded, secs: f64) {
        self.model_secs += secs;
        self.embedded += n;
        self.tokens += out.tokens as u64;
        self.truncated += out.truncated;
    }

    pub fn record(&mut self, path: PathBuf, outcome: FileOutcome) {
        match outcome {
            FileOutcome::Indexed { chunks, lossy, note } => {
                self.indexed += 1;
                self.chunks_written += chunks;
                if lossy {
                    self.lossy.push(path.display().to_string());
                }
                if let Some(why) = note {
                    self.partial.push(FileNote { path, why });
                }
            }
            FileOutcome::Unchanged => self.unchanged += 1,
            FileOutcome::Skipped(why) => self.skipped.push(FileNote { path, why }),
            FileOutcome::Failed(why) => self.failed.push(FileNote { path, why }),
        }
    }
}
