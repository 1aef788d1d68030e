//! A model's recipe: how text becomes token ids (instruction or prefix, the end token once, the
//! cut at the model's length) and how hidden states become one vector (pooling, padding side).

use anyhow::{Context, Result, anyhow};
use tokenizers::Tokenizer;

use super::InputKind;
use super::batch::PadSide;
use crate::models::catalog::{Family, ModelSpec, Pooling};

/// The model-specific parts: how text becomes ids and how hidden states become one vector.
#[derive(Debug, Clone)]
pub(super) struct Recipe {
    pub(super) pooling: Pooling,
    pub(super) max_tokens: usize,
    /// Appended to every input by the embedder (Qwen3's `<|endoftext|>`).
    pub(super) eot: Option<u32>,
    pub(super) query_template: Option<String>,
    pub(super) task: String,
    pub(super) query_prefix: String,
    pub(super) document_prefix: String,
    pub(super) pad_id: u32,
    pub(super) pad_side: PadSide,
}

impl Recipe {
    /// The recipe of `spec` with its tokenizer: `task` (else the catalog's) for queries, inputs
    /// cut at `max_tokens`; `right_padding` when the prepared graph needs it.
    pub(super) fn new(
        spec: &ModelSpec,
        tokenizer: &Tokenizer,
        task: Option<&str>,
        max_tokens: usize,
        right_padding: bool,
    ) -> Result<Recipe> {
        let eot = match &spec.eot_token {
            Some(t) => Some(tokenizer.token_to_id(t).with_context(|| format!("tokenizer has no {t} token"))?),
            None => None,
        };
        let pad_id = match spec.family {
            Family::Qwen3 => eot.unwrap_or(0),
            Family::Bert => tokenizer.token_to_id("[PAD]").unwrap_or(0),
        };
        Ok(Recipe {
            pooling: spec.pooling,
            max_tokens,
            eot,
            query_template: spec.query_template.clone(),
            task: task.map(String::from).or_else(|| spec.task.clone()).unwrap_or_default(),
            query_prefix: spec.query_prefix.clone(),
            document_prefix: spec.document_prefix.clone(),
            pad_id,
            pad_side: match spec.family {
                // The reference pads on the left; under causal attention right padding gives the
                // same vectors, and the prepared graph's attention needs it.
                Family::Qwen3 if !right_padding => PadSide::Left,
                _ => PadSide::Right,
            },
        })
    }

    pub(super) fn format(&self, text: &str, kind: InputKind) -> String {
        match kind {
            InputKind::Query => match &self.query_template {
                Some(t) => t.replace("{task}", &self.task).replace("{query}", text),
                None => format!("{}{text}", self.query_prefix),
            },
            InputKind::Document => format!("{}{text}", self.document_prefix),
        }
    }

    /// Token ids for one formatted text, and whether it was cut.
    pub(super) fn ids(&self, tokenizer: &Tokenizer, text: &str) -> Result<(Vec<u32>, bool)> {
        match self.eot {
            Some(eot) => {
                // Encode without the post-processor (some revisions append the end token, some
                // do not), cut to leave room for it, then append it exactly once.
                let enc = tokenizer.encode(text, false).map_err(|e| anyhow!("tokenizer: {e}"))?;
                let mut ids = enc.get_ids().to_vec();
                let cut = ids.len() > self.max_tokens - 1;
                ids.truncate(self.max_tokens - 1);
                ids.push(eot);
                Ok((ids, cut))
            }
            None => {
                // Cut by hand too (the tokenizer itself never truncates: the chunker counts
                // whole documents with it): the text's tokens up to the limit, then the special
                // tokens the post-processor ends with (BERT's `[SEP]`), as its truncation does.
                let enc = tokenizer.encode(text, true).map_err(|e| anyhow!("tokenizer: {e}"))?;
                let ids = enc.get_ids();
                if ids.len() <= self.max_tokens {
                    return Ok((ids.to_vec(), false));
                }
                let tail = enc.get_special_tokens_mask().iter().rev().take_while(|&&m| m == 1).count();
                let tail = tail.min(self.max_tokens);
                let mut cut = ids[..self.max_tokens - tail].to_vec();
                cut.extend_from_slice(&ids[ids.len() - tail..]);
                Ok((cut, true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen_recipe() -> Recipe {
        Recipe {
            pooling: Pooling::LastToken,
            max_tokens: 8,
            eot: Some(99),
            query_template: Some("Instruct: {task}\nQuery:{query}".into()),
            task: "Find it".into(),
            query_prefix: String::new(),
            document_prefix: String::new(),
            pad_id: 99,
            pad_side: PadSide::Left,
        }
    }

    #[test]
    fn queries_get_the_instruction_and_documents_do_not() {
        let r = qwen_recipe();
        assert_eq!(r.format("cats", InputKind::Query), "Instruct: Find it\nQuery:cats");
        assert_eq!(r.format("cats", InputKind::Document), "cats");
    }
}
