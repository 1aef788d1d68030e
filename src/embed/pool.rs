//! Pooling and normalisation: from a `[rows, width, hidden]` hidden-state tensor to one unit
//! vector per row. Pure functions over slices.

use super::batch::Padded;
use crate::models::catalog::Pooling;

/// `hidden` in f32, or f16 (fp16 graphs): only the rows pooled are widened.
pub fn pool<T: Copy + Into<f32>>(hidden: &[T], batch: &Padded, dim: usize, pooling: Pooling) -> Vec<Vec<f32>> {
    let w = batch.width;
    (0..batch.rows)
        .map(|r| {
            let row = |c: usize| &hidden[(r * w + c) * dim..(r * w + c + 1) * dim];
            let mask = &batch.mask[r * w..(r + 1) * w];
            match pooling {
                Pooling::LastToken => {
                    let last = mask.iter().rposition(|&m| m == 1).unwrap_or(w - 1);
                    row(last).iter().map(|&x| x.into()).collect()
                }
                Pooling::Cls => {
                    let first = mask.iter().position(|&m| m == 1).unwrap_or(0);
                    row(first).iter().map(|&x| x.into()).collect()
                }
                Pooling::Mean => {
                    let mut acc = vec![0f32; dim];
                    let mut n = 0f32;
                    for (c, &m) in mask.iter().enumerate() {
                        if m == 1 {
                            for (a, &v) in acc.iter_mut().zip(row(c)) {
                                *a += v.into();
                            }
                            n += 1.0;
                        }
                    }
                    acc.iter_mut().for_each(|a| *a /= n.max(1e-9));
                    acc
                }
            }
        })
        .collect()
}

/// Cuts a vector to its first `dims` components (Matryoshka) and scales it to unit length.
pub fn truncate_normalize(mut v: Vec<f32>, dims: usize) -> Vec<f32> {
    v.truncate(dims);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::batch::{PadSide, pad};

    #[test]
    fn pooling_respects_left_and_right_padding() {
        let a: &[u32] = &[1, 2];
        let b: &[u32] = &[3];
        // hidden dim 1: the value of each cell is its column index + 10 * row.
        let left = pad(&[a, b], 0, PadSide::Left);
        let hidden: Vec<f32> = (0..2).flat_map(|r| (0..2).map(move |c| (c + 10 * r) as f32)).collect();
        assert_eq!(pool(&hidden, &left, 1, Pooling::LastToken), vec![vec![1.0], vec![11.0]]);
        assert_eq!(pool(&hidden, &left, 1, Pooling::Mean), vec![vec![0.5], vec![11.0]]);
        let right = pad(&[a, b], 0, PadSide::Right);
        assert_eq!(pool(&hidden, &right, 1, Pooling::LastToken), vec![vec![1.0], vec![10.0]]);
        assert_eq!(pool(&hidden, &right, 1, Pooling::Cls), vec![vec![0.0], vec![10.0]]);
        let halves: Vec<half::f16> = hidden.iter().map(|&x| half::f16::from_f32(x)).collect();
        assert_eq!(pool(&halves, &left, 1, Pooling::Mean), vec![vec![0.5], vec![11.0]]);
    }

    #[test]
    fn matryoshka_cut_is_unit_length() {
        let v = truncate_normalize(vec![3.0, 4.0, 12.0], 2);
        assert_eq!(v, vec![0.6, 0.8]);
    }
}
