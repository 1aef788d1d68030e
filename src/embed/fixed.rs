//! Fixed-shape graphs (the CoreML preparation): one graph per bucket of rows x tokens. Texts are
//! grouped by the smallest bucket width that holds them, each group runs in the bucket that pads
//! it least, and every run is padded to its bucket's exact shape.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ort::session::Session;

use crate::models::prepare::{Bucket, pick};

/// The bucket graphs and their sessions, each made at first use.
pub(super) struct Fixed {
    graphs: Vec<(Bucket, PathBuf, Option<Session>)>,
}

impl Fixed {
    pub(super) fn new(graphs: Vec<(Bucket, PathBuf)>) -> Self {
        Fixed { graphs: graphs.into_iter().map(|(b, p)| (b, p, None)).collect() }
    }

    pub(super) fn buckets(&self) -> Vec<Bucket> {
        self.graphs.iter().map(|g| g.0).collect()
    }

    /// The longest text any bucket holds.
    pub(super) fn longest(&self) -> usize {
        self.graphs.iter().map(|g| g.0.tokens).max().unwrap_or(0)
    }

    /// The first bucket and its graph file (loaded at once, to read the graph's output).
    pub(super) fn first(&self) -> Option<(Bucket, &Path)> {
        self.graphs.first().map(|g| (g.0, g.1.as_path()))
    }

    /// Takes `bucket`'s session out (made now by `make` if needed); [`put`](Self::put) returns it.
    pub(super) fn take(&mut self, bucket: Bucket, make: &mut dyn FnMut(&Path) -> Result<Session>) -> Result<Session> {
        let Some(slot) = self.graphs.iter_mut().find(|g| g.0 == bucket) else {
            bail!("no graph for {}x{}", bucket.rows, bucket.tokens)
        };
        match slot.2.take() {
            Some(session) => Ok(session),
            None => make(&slot.1),
        }
    }

    pub(super) fn put(&mut self, bucket: Bucket, session: Session) {
        if let Some(slot) = self.graphs.iter_mut().find(|g| g.0 == bucket) {
            slot.2 = Some(session);
        }
    }
}

/// Runs for texts of `lens` tokens: `(bucket, indices)`, at most `bucket.rows` indices each.
/// A text longer than every bucket is an error (the caller caps lengths first).
pub(super) fn groups(lens: &[usize], buckets: &[Bucket]) -> Result<Vec<(Bucket, Vec<usize>)>> {
    let mut widths: Vec<usize> = buckets.iter().map(|b| b.tokens).collect();
    widths.sort_unstable();
    widths.dedup();
    let mut classes: Vec<Vec<usize>> = vec![Vec::new(); widths.len()];
    for (i, &len) in lens.iter().enumerate() {
        let Some(c) = widths.iter().position(|&w| w >= len.max(1)) else {
            bail!("a text of {len} tokens is longer than every fixed shape ({} tokens)", widths.last().unwrap_or(&0))
        };
        classes[c].push(i);
    }
    let mut runs = Vec::new();
    for (c, mut members) in classes.into_iter().enumerate() {
        while !members.is_empty() {
            let bucket = pick(buckets, members.len(), widths[c]).expect("the class's own width has a bucket");
            let rest = members.split_off(bucket.rows.min(members.len()));
            runs.push((bucket, std::mem::replace(&mut members, rest)));
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::prepare::BUCKETS;

    #[test]
    fn texts_run_in_the_buckets_that_pad_them_least() {
        let lens = [20, 30, 60, 60, 500, 3000];
        assert!(groups(&lens, BUCKETS).unwrap_err().to_string().contains("3000 tokens"));
        let runs = groups(&lens[..5], BUCKETS).unwrap();
        let shapes: Vec<(usize, usize, Vec<usize>)> = runs.into_iter().map(|(b, g)| (b.rows, b.tokens, g)).collect();
        // Two short texts: one row each is less padding than a 16-row run.
        assert_eq!(
            shapes,
            vec![(1, 32, vec![0]), (1, 32, vec![1]), (1, 64, vec![2]), (1, 64, vec![3]), (2, 512, vec![4])]
        );
        let many = vec![50; 40];
        let runs = groups(&many, BUCKETS).unwrap();
        assert_eq!(runs.iter().map(|(b, g)| (b.rows, g.len())).collect::<Vec<_>>(), vec![(16, 16), (16, 16), (16, 8)]);
        let mut seen: Vec<usize> = runs.into_iter().flat_map(|(_, g)| g).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }
}
