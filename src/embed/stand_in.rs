//! A deterministic stand-in embedder for pipeline tests: each word is hashed into a few signed
//! dimensions (feature hashing). Texts that share words get similar vectors, so search behaves
//! plausibly, but there is no model. Selected only by the explicit model id `stand-in`; it is never
//! a fallback.

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::device::{Backend, Placement};
use super::{Embedded, Embedder, InputKind, pool};

pub const ID: &str = "stand-in";

pub struct StandIn {
    dims: usize,
}

impl StandIn {
    pub fn new(dims: usize) -> Self {
        StandIn { dims }
    }

    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dims];
        for word in words(text) {
            let h = Sha256::digest(word.as_bytes());
            for k in 0..3 {
                let idx = u32::from_le_bytes([h[4 * k], h[4 * k + 1], h[4 * k + 2], h[4 * k + 3]]) as usize;
                let sign = if h[20 + k] & 1 == 0 { 1.0 } else { -1.0 };
                v[idx % self.dims] += sign;
            }
        }
        if v.iter().all(|x| *x == 0.0) {
            v[0] = 1.0;
        }
        pool::truncate_normalize(v, self.dims)
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

impl Embedder for StandIn {
    fn fingerprint(&self) -> String {
        format!("{ID}:{}d", self.dims)
    }
    fn model_id(&self) -> &str {
        ID
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn device(&self) -> Placement {
        Placement::on(Backend::StandIn)
    }
    fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        None
    }
    fn embed(&mut self, texts: &[&str], _kind: InputKind) -> Result<Embedded> {
        let tokens = texts.iter().map(|t| words(t).count()).sum();
        Ok(Embedded { vectors: texts.iter().map(|t| self.vector(t)).collect(), tokens, truncated: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_words_mean_closer_vectors() {
        let e = StandIn::new(64);
        let a = e.vector("rust borrow checker");
        let b = e.vector("the borrow checker in rust");
        let c = e.vector("baking sourdough bread");
        assert!(pool::cosine(&a, &b) > pool::cosine(&a, &c) + 0.3);
        assert_eq!(a, e.vector("rust borrow checker"));
    }
}
