//! One run of the indexer, with its three kinds of threads:
//!
//! - a pool of workers reads, hashes, decodes and chunks changed files ([`super::sync::prepare`]);
//! - the model's thread embeds batches of pending chunk texts ([`super::embedding::run_model`]);
//! - this thread, the writer, owns the store and the vector graph: it writes the workers'
//!   documents (many small files per transaction, each document atomic), feeds the model the
//!   texts still pending as soon as there are any (so a first index becomes semantically
//!   searchable as it goes, and the model does not wait for the scan), and attaches vectors.
//!
//! Both queues are bounded, so memory stays flat however many files a burst brings. A stop
//! request ends the workers after their current file and the model after its current batch,
//! whose vectors are still stored; the rest is left for the next run.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::embedding::{self, Batch, Done, Eta};
use super::sync::{self, Prepared, Work};
use super::{Options, Progress, Report, Writer, apply_ops, attach};
use crate::store::WriteStore;
use crate::store::docs::DocOp;
use crate::store::vectors::VectorIndex;

/// What the writer hears from the other threads.
pub(super) enum Msg {
    /// The `usize`-th work item, prepared.
    File(usize, Result<Prepared>),
    Vectors(Result<Done>),
}

/// Batches sent to the model and not yet back. Two keep it busy while the writer handles one.
const IN_FLIGHT: usize = 2;

/// Documents written in one transaction at most, and their bytes of chunk text.
const GROUP_DOCS: usize = 64;
const GROUP_BYTES: usize = 4 << 20;

/// How often the remaining work is summed up for the ETA.
const ETA_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    /// Prepares and writes `work`, embeds everything pending, both at once.
    pub(super) fn run(
        &mut self,
        work: Vec<Work>,
        report: &mut Report,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<()> {
        let Writer { store, vectors, embedder, opts, .. } = self;
        let tokenizer = embedder.tokenizer().cloned();
        let workers = opts.threads.clamp(1, work.len().max(1));
        let (tx, rx) = mpsc::sync_channel::<Msg>(workers * 4 + IN_FLIGHT);
        let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let embedder: &mut dyn crate::embed::Embedder = &mut **embedder;
        std::thread::scope(|s| {
            for _ in 0..workers {
                let tx = tx.clone();
                // A tokenizer each: a shared one serialises the workers on its cache's lock.
                let (work, next, stop, tokenizer) = (&work, &next, &stop, tokenizer.clone());
                let chunking = opts.chunk;
                s.spawn(move || {
                    let tokenizer = tokenizer.as_ref();
                    while !stop.load(Ordering::Relaxed) && !cancel.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = work.get(i) else { break };
                        if tx.send(Msg::File(i, sync::prepare(item, tokenizer, chunking))).is_err() {
                            break;
                        }
                    }
                });
            }
            let model_tx = tx.clone();
            s.spawn(move || embedding::run_model(embedder, batch_rx, model_tx));
            drop(tx);
            let mut state = Loop {
                store,
                vectors,
                opts,
                work: &work,
                batches: Some(batch_tx),
                in_flight: HashSet::new(),
                batches_out: 0,
                cursor: 0,
                files_left: work.len(),
                eta: Eta::new(ETA_EVERY),
                start: Instant::now(),
                last_save: Instant::now(),
            };
            let result = state.run(&rx, report, progress, cancel);
            // Whatever happened, the other threads end: workers see the flag or a closed queue,
            // the model sees its queue closed.
            stop.store(true, Ordering::Relaxed);
            drop(state);
            drop(rx);
            result
        })
    }
}

/// The writer's side of a run.
struct Loop<'a> {
    store: &'a mut WriteStore,
    vectors: &'a mut VectorIndex,
    opts: &'a Options,
    work: &'a [Work],
    batches: Option<SyncSender<Batch>>,
    /// Hashes of the texts the model has now.
    in_flight: HashSet<String>,
    batches_out: usize,
    /// The last chunk id looked at for pending texts.
    cursor: i64,
    files_left: usize,
    eta: Eta,
    start: Instant,
    last_save: Instant,
}

impl Loop<'_> {
    fn run(
        &mut self,
        rx: &Receiver<Msg>,
        report: &mut Report,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<()> {
        let total_files = self.files_left;
        let mut embed_start: Option<Instant> = None;
        loop {
            if cancel.load(Ordering::Relaxed) && !report.interrupted {
                report.interrupted = true;
                self.files_left = 0;
                self.batches = None;
            }
            if self.batches.is_some() && self.feed()? {
                embed_start.get_or_insert_with(Instant::now);
            }
            if self.files_left == 0 && self.batches_out == 0 {
                break;
            }
            let Ok(first) = rx.recv() else { break };
            let mut files = Vec::new();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::File(i, prepared) => files.push((i, prepared)),
                    Msg::Vectors(Ok(done)) => self.attach(done, report, progress)?,
                    Msg::Vectors(Err(e)) => self.model_failed(e, report),
                }
                let bytes: usize = files.iter().map(|(_, p)| op_bytes(p)).sum();
                if files.len() < GROUP_DOCS && bytes < GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !files.is_empty() && !report.interrupted {
                self.write(files, report)?;
                progress(Progress::File { done: total_files - self.files_left, total: total_files });
                if self.files_left == 0 {
                    report.sync_secs += self.start.elapsed().as_secs_f64();
                    self.eta.synced();
                }
            }
        }
        if let Some(t) = embed_start {
            report.embed_secs += t.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// Sends the model pending texts while it has room. True when a batch was sent.
    fn feed(&mut self) -> Result<bool> {
        let mut sent = false;
        while self.batches_out < IN_FLIGHT {
            let (mut pending, last) = self.store.pending_after(self.cursor, self.opts.embed_batch)?;
            if last == self.cursor {
                break;
            }
            self.cursor = last;
            pending.retain(|p| !self.in_flight.contains(&p.hash));
            if pending.is_empty() {
                continue;
            }
            self.in_flight.extend(pending.iter().map(|p| p.hash.clone()));
            let Some(batches) = &self.batches else { break };
            if batches.send(Batch { pending }).is_err() {
                anyhow::bail!("the embedding thread stopped");
            }
            self.batches_out += 1;
            self.eta.sent(self.files_left > 0);
            sent = true;
        }
        Ok(sent)
    }

    /// Writes prepared files in one transaction and counts their outcomes.
    fn write(&mut self, files: Vec<(usize, Result<Prepared>)>, report: &mut Report) -> Result<()> {
        let mut ops = Vec::with_capacity(files.len());
        for (i, prepared) in files {
            self.files_left -= 1;
            let path = self.work[i].found.path.clone();
            match prepared {
                Ok(Prepared { ops: file_ops, outcome }) => {
                    ops.extend(file_ops);
                    report.record(path, outcome);
                }
                Err(e) => report.record(path, super::FileOutcome::Failed(format!("{e:#}"))),
            }
        }
        apply_ops(self.store, self.vectors, &ops)
    }

    /// The model failed a batch (a server gone, say): nothing more goes to it in this run, but
    /// every file is still written, so keyword search has them all; their texts stay pending for
    /// the next run. The first error is the one reported.
    fn model_failed(&mut self, e: anyhow::Error, report: &mut Report) {
        self.batches_out -= 1;
        self.eta.lost();
        self.batches = None;
        report.embed_error.get_or_insert_with(|| format!("{e:#}"));
    }

    /// Stores a batch's vectors, counts them, and reports the progress.
    fn attach(&mut self, done: Done, report: &mut Report, progress: &mut dyn FnMut(Progress)) -> Result<()> {
        self.batches_out -= 1;
        for h in &done.hashes {
            self.in_flight.remove(h);
        }
        let first = self.eta.done(done.out.tokens as u64, done.bytes as u64, done.secs);
        report.embedded_batch(done.hashes.len() as u64, &done.out, done.secs);
        let items: Vec<(String, Vec<f32>)> = done.hashes.into_iter().zip(done.out.vectors).collect();
        attach(self.store, self.vectors, &items)?;
        let store = &*self.store;
        if first
            && let (Some(rate), Some(eta)) = (self.eta.tokens_per_sec(), self.eta.left(true, || store.pending_bytes())?)
        {
            progress(Progress::Estimate { chunks: store.pending_texts()?, tokens_per_sec: rate, eta });
        }
        let eta = self.eta.left(false, || store.pending_bytes())?;
        progress(Progress::Embedded {
            done: report.embedded,
            tokens: report.tokens,
            tokens_per_sec: self.eta.tokens_per_sec().unwrap_or(0.0),
            eta,
            syncing: self.files_left > 0,
        });
        if self.last_save.elapsed() >= self.opts.save_every {
            self.vectors.save_if_due(self.store)?;
            self.last_save = Instant::now();
        }
        Ok(())
    }
}

/// Bytes of chunk text a prepared file writes (to bound a transaction).
fn op_bytes(prepared: &Result<Prepared>) -> usize {
    match prepared {
        Ok(Prepared { ops, .. }) => ops
            .iter()
            .map(|op| match op {
                DocOp::Write { chunks, .. } => chunks.iter().map(|c| c.text.len()).sum(),
                _ => 0,
            })
            .sum(),
        Err(_) => 0,
    }
}
