//! Token-bounded batching: inputs are sorted by length and grouped so that a batch's padded size
//! (rows x longest row) stays under a token budget. Padding is then at most the length spread
//! inside one batch, instead of the spread of the whole input.

/// Groups input indices into batches. `lens[i]` is the token count of input `i`.
/// Every index appears in exactly one batch; a single input longer than the budget gets a batch
/// of its own. Batches hold indices in ascending length order.
pub fn plan(lens: &[usize], max_tokens: usize, max_rows: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| lens[i]);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let longest = lens[i].max(1);
        let rows = current.len() + 1;
        if !current.is_empty() && (rows * longest > max_tokens || rows > max_rows) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Side of a sequence that receives the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSide {
    Left,
    Right,
}

/// A padded batch: row-major `[rows, width]` ids and mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Padded {
    pub rows: usize,
    pub width: usize,
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
}

impl Padded {
    /// Positions that count only real tokens: 0 at the first real token, padding at 0.
    pub fn positions(&self) -> Vec<i64> {
        let mut out = vec![0i64; self.ids.len()];
        for r in 0..self.rows {
            let mut pos = 0i64;
            for c in 0..self.width {
                let k = r * self.width + c;
                if self.mask[k] == 1 {
                    out[k] = pos;
                    pos += 1;
                }
            }
        }
        out
    }
}

pub fn pad(seqs: &[&[u32]], pad_id: u32, side: PadSide) -> Padded {
    let rows = seqs.len();
    let width = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![pad_id as i64; rows * width];
    let mut mask = vec![0i64; rows * width];
    for (r, seq) in seqs.iter().enumerate() {
        let start = match side {
            PadSide::Left => width - seq.len(),
            PadSide::Right => 0,
        };
        for (c, &id) in seq.iter().enumerate() {
            ids[r * width + start + c] = id as i64;
            mask[r * width + start + c] = 1;
        }
    }
    Padded { rows, width, ids, mask }
}

/// Right padding into exactly `rows` x `width` (a fixed-shape graph's bucket); rows beyond the
/// texts are all padding.
pub fn pad_to(seqs: &[&[u32]], pad_id: u32, rows: usize, width: usize) -> Padded {
    let mut ids = vec![pad_id as i64; rows * width];
    let mut mask = vec![0i64; rows * width];
    for (r, seq) in seqs.iter().enumerate().take(rows) {
        for (c, &id) in seq.iter().enumerate().take(width) {
            ids[r * width + c] = id as i64;
            mask[r * width + c] = 1;
        }
    }
    Padded { rows, width, ids, mask }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_lands_in_one_batch_within_budget() {
        let lens = [5, 100, 3, 50, 50, 7, 400, 1];
        let batches = plan(&lens, 128, 64);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lens.len()).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lens[i]).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest <= 128, "{b:?}");
        }
        // The oversized input is alone.
        assert!(batches.iter().any(|b| b == &vec![6]));
    }

    #[test]
    fn row_cap_is_respected() {
        let lens = vec![1; 10];
        let batches = plan(&lens, 10_000, 4);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    }

    #[test]
    fn left_padding_puts_real_tokens_last_and_positions_start_at_zero() {
        let a: &[u32] = &[7, 8, 9];
        let b: &[u32] = &[5];
        let p = pad(&[a, b], 0, PadSide::Left);
        assert_eq!(p.ids, vec![7, 8, 9, 0, 0, 5]);
        assert_eq!(p.mask, vec![1, 1, 1, 0, 0, 1]);
        assert_eq!(p.positions(), vec![0, 1, 2, 0, 0, 0]);
        let p = pad(&[a, b], 0, PadSide::Right);
        assert_eq!(p.ids, vec![7, 8, 9, 5, 0, 0]);
        let p = pad_to(&[a, b], 0, 3, 4);
        assert_eq!(p.ids, vec![7, 8, 9, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p.mask, vec![1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    }
}
