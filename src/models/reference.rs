//! Which model: a name the user typed, a configuration value or an index's fingerprint, parsed once
//! into what it refers to. Everything past the parse matches on [`ModelRef`], never on the text:
//! the `openai:` prefix is spelled here alone.

use std::fmt;

/// Names of models on an embedding server start with this (`openai:nomic-embed-text`).
pub const SERVED_PREFIX: &str = "openai:";
/// The deterministic stand-in of pipeline tests (`embed::stand_in`), only ever used by this name.
pub const STAND_IN: &str = "stand-in";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelRef {
    /// A model of the catalog (`assets/models.toml`) by its id; its files are found by
    /// `models::source` (the `--model-dir` folder first).
    Catalog(String),
    /// A model on an embedding server with OpenAI's API, by the server's own name for it
    /// (`qwen3-embedding:0.6b`, `BAAI/bge-small-en`: colons and slashes are the server's).
    Served(String),
    /// The test stand-in.
    StandIn,
}

impl ModelRef {
    /// Reads a model name as the user writes it. Never fails: a catalog id that does not exist is
    /// said by the catalog, with the list of ids, when it is looked up.
    pub fn parse(name: &str) -> ModelRef {
        let name = name.trim();
        if let Some(served) = name.strip_prefix(SERVED_PREFIX) {
            ModelRef::Served(served.to_string())
        } else if name == STAND_IN {
            ModelRef::StandIn
        } else {
            ModelRef::Catalog(name.to_string())
        }
    }

    pub fn is_served(&self) -> bool {
        matches!(self, ModelRef::Served(_))
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Catalog(id) => f.write_str(id),
            ModelRef::Served(name) => write!(f, "{SERVED_PREFIX}{name}"),
            ModelRef::StandIn => f.write_str(STAND_IN),
        }
    }
}

impl std::str::FromStr for ModelRef {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<ModelRef, Self::Err> {
        Ok(ModelRef::parse(s))
    }
}

impl From<&str> for ModelRef {
    fn from(s: &str) -> ModelRef {
        ModelRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_once_and_written_back_the_same() {
        for (text, parsed) in [
            ("all-minilm-l6-v2", ModelRef::Catalog("all-minilm-l6-v2".into())),
            ("openai:qwen3-embedding:0.6b", ModelRef::Served("qwen3-embedding:0.6b".into())),
            ("openai:BAAI/bge-small-en", ModelRef::Served("BAAI/bge-small-en".into())),
            ("stand-in", ModelRef::StandIn),
        ] {
            assert_eq!(ModelRef::parse(text), parsed);
            assert_eq!(parsed.to_string(), text);
        }
        assert!(ModelRef::parse("openai:x").is_served());
        assert!(!ModelRef::parse("qwen3-embedding-0.6b").is_served());
    }
}
