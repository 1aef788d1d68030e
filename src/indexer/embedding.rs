//! Phase 2, embed: chunk texts without a vector go to the model in batches, on a thread of its
//! own, while the writer goes on storing documents. Also the honest ETA: the rate of the recent
//! batches in tokens, times the work still pending.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use super::pipeline::Msg;
use crate::embed::{Embedded, Embedder, InputKind};
use crate::store::docs::Pending;

/// Texts for the model, each with the hash its vector is stored under.
pub(super) struct Batch {
    pub pending: Vec<Pending>,
}

/// A batch's vectors, in its order, and what they cost.
pub(super) struct Done {
    pub hashes: Vec<String>,
    pub out: Embedded,
    pub secs: f64,
    pub bytes: usize,
}

/// The model's thread: embeds each batch it is given, until the writer hangs up.
pub(super) fn run_model(embedder: &mut dyn Embedder, batches: Receiver<Batch>, results: SyncSender<Msg>) {
    for batch in batches {
        let texts: Vec<&str> = batch.pending.iter().map(|p| p.text.as_str()).collect();
        let bytes = texts.iter().map(|t| t.len()).sum();
        let t = Instant::now();
        let done = embedder.embed(&texts, InputKind::Document).map(|out| Done {
            hashes: batch.pending.iter().map(|p| p.hash.clone()).collect(),
            out,
            secs: t.elapsed().as_secs_f64(),
            bytes,
        });
        if results.send(Msg::Vectors(done)).is_err() {
            break;
        }
    }
}

/// How many recent batches the speed is taken from.
const RECENT: usize = 8;

/// The model's speed on the recent batches, and from it the time the pending work will take.
#[derive(Debug, Default)]
pub struct Rate {
    recent: VecDeque<(u64, f64)>,
    tokens: u64,
    bytes: u64,
}

impl Rate {
    /// Records a batch: its real tokens, its bytes of text, and the seconds it took.
    pub fn add(&mut self, tokens: u64, bytes: u64, secs: f64) {
        self.recent.push_back((tokens, secs));
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.tokens += tokens;
        self.bytes += bytes;
    }

    /// Forgets the recent speed (kept: the tokens per byte seen so far), when what comes next
    /// runs under other conditions.
    pub fn restart(&mut self) {
        self.recent.clear();
    }

    /// Tokens per second over the recent batches.
    pub fn tokens_per_sec(&self) -> Option<f64> {
        let (tokens, secs) = self.recent.iter().fold((0u64, 0f64), |(t, s), &(bt, bs)| (t + bt, s + bs));
        (secs > 0.0 && tokens > 0).then(|| tokens as f64 / secs)
    }

    /// The time `pending_bytes` of text will take: their tokens (at the tokens per byte seen so
    /// far) at the recent speed.
    pub fn eta(&self, pending_bytes: u64) -> Option<Duration> {
        let per_byte = self.tokens as f64 / self.bytes.max(1) as f64;
        let rate = self.tokens_per_sec()?;
        Some(Duration::from_secs_f64(pending_bytes as f64 * per_byte / rate))
    }
}

/// A run's time left, as the user sees it: the model's recent [`Rate`] times the work pending,
/// summed up at most once every `every`. Batches that shared the cores with the workers reading
/// files ran slower than what comes after: once every file is written, the first batch that ran
/// alone starts the rate afresh and gives the first estimate.
#[derive(Debug)]
pub(super) struct Eta {
    rate: Rate,
    every: Duration,
    /// For each batch out, in order: whether files were still being read when it was sent.
    sent_while_syncing: VecDeque<bool>,
    /// Every file is written; the estimate waits for a batch that ran without sync beside it.
    estimate_due: bool,
    last: Option<(Instant, Option<Duration>)>,
}

impl Eta {
    pub fn new(every: Duration) -> Eta {
        Eta { rate: Rate::default(), every, sent_while_syncing: VecDeque::new(), estimate_due: false, last: None }
    }

    /// A batch went to the model (while files were still being read, or not).
    pub fn sent(&mut self, syncing: bool) {
        self.sent_while_syncing.push_back(syncing);
    }

    /// A batch sent will not come back (the model failed).
    pub fn lost(&mut self) {
        self.sent_while_syncing.pop_front();
    }

    /// Every file is written.
    pub fn synced(&mut self) {
        self.estimate_due = true;
    }

    /// A batch came back; true when it is the first to run alone after every file was written
    /// (the moment for the first estimate).
    pub fn done(&mut self, tokens: u64, bytes: u64, secs: f64) -> bool {
        let alone = !self.sent_while_syncing.pop_front().unwrap_or(true);
        let first = alone && self.estimate_due;
        if first {
            self.rate.restart();
            self.estimate_due = false;
        }
        self.rate.add(tokens, bytes, secs);
        first
    }

    pub fn tokens_per_sec(&self) -> Option<f64> {
        self.rate.tokens_per_sec()
    }

    /// The time left for what `pending_bytes` reads, worked out at most once every `every` (`now`
    /// forces it).
    pub fn left(
        &mut self,
        now: bool,
        pending_bytes: impl FnOnce() -> anyhow::Result<u64>,
    ) -> anyhow::Result<Option<Duration>> {
        if now || self.last.is_none_or(|(at, _)| at.elapsed() >= self.every) {
            self.last = Some((Instant::now(), self.rate.eta(pending_bytes()?)));
        }
        Ok(self.last.and_then(|(_, eta)| eta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_follows_the_recent_batches() {
        let mut rate = Rate::default();
        assert!(rate.eta(1000).is_none());
        // Short texts first, fast; then long ones at a quarter of the speed.
        rate.add(1000, 4000, 0.1);
        assert_eq!(rate.tokens_per_sec(), Some(10_000.0));
        for _ in 0..RECENT {
            rate.add(2500, 10_000, 1.0);
        }
        assert_eq!(rate.tokens_per_sec(), Some(2500.0), "only the recent batches count");
        // 4 bytes a token: 100,000 bytes are 25,000 tokens, 10 s at 2,500 tokens/s.
        let eta = rate.eta(100_000).unwrap().as_secs_f64();
        assert!((eta - 10.0).abs() < 1e-9, "{eta}");
        // After a restart only what follows counts; the tokens per byte are kept.
        rate.restart();
        assert!(rate.eta(100_000).is_none());
        rate.add(5000, 1_000_000, 1.0);
        assert_eq!(rate.tokens_per_sec(), Some(5000.0));
    }
}
