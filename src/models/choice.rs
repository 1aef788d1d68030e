//! Which model an index gets: the one the user named, else the one the index was built with,
//! else the default. And the check that a named model is the index's own before searching it.

use anyhow::{Result, bail};

use super::reference::ModelRef;
use crate::store::Fingerprint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The user named this model (flag, config, or the model an index was built with).
    Named(ModelRef),
    /// Nothing named: the default, or the fallback when the default cannot be had.
    Default,
}

/// The model to use: `named` (flag or config), else the one `index` was built with, else the
/// default.
pub fn choose(named: Option<&ModelRef>, index: Option<&Fingerprint>) -> Choice {
    match (named, index) {
        (Some(m), _) => Choice::Named(m.clone()),
        (None, Some(fp)) => Choice::Named(fp.model_ref()),
        (None, None) => Choice::Default,
    }
}

/// Searching an index with another model than its own would compare unrelated vectors.
pub fn check_named(named: Option<&ModelRef>, index: &Fingerprint) -> Result<()> {
    match named {
        Some(m) if *m != index.model_ref() => bail!(
            "the index was built with {}, not {m}: search it without --model, or rebuild it with `qsearch index --model {m} --rebuild`",
            index.model
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(model: &str, dims: usize) -> Fingerprint {
        Fingerprint { model: model.into(), dims, chunk_tokens: 224, chunk_overlap: 32, chunker_version: 1 }
    }

    #[test]
    fn named_beats_the_index_which_beats_the_default() {
        let index = fp("all-minilm-l6-v2:384d", 384);
        assert_eq!(choose(Some(&ModelRef::StandIn), Some(&index)), Choice::Named(ModelRef::StandIn));
        assert_eq!(choose(None, Some(&index)), Choice::Named(ModelRef::Catalog("all-minilm-l6-v2".into())));
        assert_eq!(choose(None, None), Choice::Default);
        // A server's model names may hold colons and slashes of their own.
        let served = fp("openai:qwen3-embedding:0.6b:1024d", 1024);
        assert_eq!(choose(None, Some(&served)), Choice::Named(ModelRef::Served("qwen3-embedding:0.6b".into())));
        let slashed = fp("openai:BAAI/bge-small-en:384d", 384);
        assert_eq!(choose(None, Some(&slashed)), Choice::Named(ModelRef::Served("BAAI/bge-small-en".into())));
    }

    #[test]
    fn a_named_model_must_be_the_index_own() {
        let index = fp("all-minilm-l6-v2:384d", 384);
        assert!(check_named(None, &index).is_ok());
        assert!(check_named(Some(&"all-minilm-l6-v2".into()), &index).is_ok());
        let err = check_named(Some(&"qwen3-embedding-0.6b".into()), &index).unwrap_err().to_string();
        assert!(err.contains("--rebuild"), "{err}");
    }
}
