//! Phase 2, embed: every chunk text without a vector is embedded, batch by batch, each batch
//! committed with its vectors in one transaction.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{Progress, Report, Writer};
use crate::embed::InputKind;

impl Writer {
    /// Embeds every pending chunk text.
    pub(super) fn embed_pending(
        &mut self,
        report: &mut Report,
        progress: &mut dyn FnMut(Progress),
        cancel: &AtomicBool,
    ) -> Result<()> {
        let total = self.store.pending_texts()?;
        let start = Instant::now();
        let mut last_save = Instant::now();
        let mut done = 0u64;
        let mut estimated = false;
        loop {
            if cancel.load(Ordering::Relaxed) {
                report.interrupted = true;
                break;
            }
            let batch = self.store.pending(self.opts.embed_batch)?;
            if batch.is_empty() {
                break;
            }
            let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
            let t0 = Instant::now();
            let out = self.embedder.embed(&texts, InputKind::Document)?;
            report.model_secs += t0.elapsed().as_secs_f64();
            let batch_bytes: usize = texts.iter().map(|t| t.len()).sum();
            let items: Vec<(String, Vec<f32>)> = batch.into_iter().map(|p| p.hash).zip(out.vectors).collect();
            self.attach_vectors(&items)?;
            done += items.len() as u64;
            report.embedded += items.len() as u64;
            report.tokens += out.tokens as u64;
            report.truncated += out.truncated;
            if !estimated {
                // The first batch is the measurement: its seconds per byte of text, times the
                // bytes still to embed.
                estimated = true;
                let secs = t0.elapsed().as_secs_f64();
                let rate = out.tokens as f64 / secs.max(1e-6);
                let left = self.store.pending_bytes()? as f64;
                progress(Progress::Estimate {
                    chunks: total,
                    tokens_per_sec: rate,
                    eta: Duration::from_secs_f64(secs / batch_bytes.max(1) as f64 * left),
                });
            }
            progress(Progress::Embedded { done, total, tokens: report.tokens, elapsed: start.elapsed() });
            if last_save.elapsed() >= self.opts.save_every {
                self.save()?;
                last_save = Instant::now();
            }
        }
        report.embed_secs += start.elapsed().as_secs_f64();
        Ok(())
    }
}
