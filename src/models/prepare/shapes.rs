//! The fixed shapes of a prepared graph: the contract between the preparer, which writes one
//! graph per [`Bucket`], and the runtime, which groups texts into them ([`pick`]).

/// One fixed input shape: `rows` texts of up to `tokens` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub rows: usize,
    pub tokens: usize,
}

/// The shapes prepared for CoreML: rows x tokens of about 1,024 tokens for documents, single rows
/// for queries (and for texts longer than 1,024 tokens, up to 2,048).
pub const BUCKETS: &[Bucket] = &[
    Bucket { rows: 1, tokens: 32 },
    Bucket { rows: 1, tokens: 64 },
    Bucket { rows: 1, tokens: 128 },
    Bucket { rows: 16, tokens: 64 },
    Bucket { rows: 8, tokens: 128 },
    Bucket { rows: 4, tokens: 256 },
    Bucket { rows: 2, tokens: 512 },
    Bucket { rows: 1, tokens: 1024 },
    Bucket { rows: 1, tokens: 2048 },
];

/// What one run costs beyond its tokens, in tokens (launch and copies: many one-row runs lose
/// to one full bucket).
const RUN_COST: usize = 256;

/// The bucket that runs `n` texts of at most `width` tokens with the least work, padding
/// included; `None` when `width` is over every bucket.
pub fn pick(buckets: &[Bucket], n: usize, width: usize) -> Option<Bucket> {
    buckets
        .iter()
        .filter(|b| b.tokens >= width)
        .min_by_key(|b| {
            let runs = n.div_ceil(b.rows);
            (runs * (b.rows * b.tokens + RUN_COST), runs)
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_is_picked_for_the_least_padded_work() {
        assert_eq!(pick(BUCKETS, 1, 20), Some(Bucket { rows: 1, tokens: 32 }));
        assert_eq!(pick(BUCKETS, 1, 100), Some(Bucket { rows: 1, tokens: 128 }));
        assert_eq!(pick(BUCKETS, 40, 60), Some(Bucket { rows: 16, tokens: 64 }));
        // Two runs of 2 x 512 pad less than three of 1 x 1,024.
        assert_eq!(pick(BUCKETS, 3, 300), Some(Bucket { rows: 2, tokens: 512 }));
        assert_eq!(pick(BUCKETS, 1, 2049), None);
    }
}
