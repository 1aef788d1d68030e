//! Settings, layered: built-in defaults < the TOML file < environment < flags (applied by the
//! binary). `assets/config.toml` documents every key with its default.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::embed::device::Device;
use crate::search::Mode;

pub const DEFAULT_FILE: &str = include_str!("../assets/config.toml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub index_dir: Option<PathBuf>,
    pub model: Option<String>,
    pub model_dir: Option<PathBuf>,
    /// The embedding server `openai:` models are asked (OpenAI's API: `.../v1`).
    pub endpoint: Option<String>,
    /// Its key: `QSEARCH_API_KEY` only, never the file (which is shared and printed).
    #[serde(skip)]
    pub api_key: Option<String>,
    pub device: Device,
    pub ort_lib: Option<PathBuf>,
    pub dims: Option<usize>,
    pub query_task: Option<String>,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    pub max_file_mb: u64,
    /// How the vector file keeps each vector: f16, i8 or b1 (a change writes the vector file
    /// again from the index's own vectors, no embedding). Unset: an index keeps its type, a new
    /// one gets [`VectorType::default`](crate::store::vectors::VectorType).
    pub vector_type: Option<crate::store::vectors::VectorType>,
    pub hidden: bool,
    pub batch_tokens: Option<usize>,
    pub threads: Option<usize>,
    pub prepare_model: bool,
    pub results: usize,
    pub per_doc: usize,
    pub mode: Mode,
    /// A reranker on a server (`openai:NAME`), and that server (`.../v1`).
    pub reranker: Option<String>,
    pub reranker_endpoint: Option<String>,
    /// Rerank every search, within `rerank_ms` a query.
    pub rerank: bool,
    pub rerank_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            index_dir: None,
            model: None,
            model_dir: None,
            endpoint: None,
            api_key: None,
            device: Device::Auto,
            ort_lib: None,
            dims: None,
            query_task: None,
            chunk_tokens: 384,
            chunk_overlap: 32,
            max_file_mb: 10,
            vector_type: None,
            hidden: false,
            batch_tokens: None,
            threads: None,
            prepare_model: true,
            results: 10,
            per_doc: 2,
            mode: Mode::Hybrid,
            reranker: None,
            reranker_endpoint: None,
            rerank: false,
            rerank_ms: 150,
        }
    }
}

impl Config {
    /// Defaults, then the config file (if any), then environment variables.
    pub fn load() -> Result<Config> {
        let path = crate::paths::config_file();
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if let Some(v) = std::env::var_os("QSEARCH_INDEX") {
            config.index_dir = Some(v.into());
        }
        if let Ok(v) = std::env::var("QSEARCH_MODEL") {
            config.model = Some(v);
        }
        if let Ok(v) = std::env::var("QSEARCH_ENDPOINT") {
            config.endpoint = Some(v);
        }
        config.api_key = std::env::var("QSEARCH_API_KEY").ok().filter(|k| !k.is_empty());
        if let Some(v) = std::env::var_os("ORT_DYLIB_PATH") {
            config.ort_lib = Some(v.into());
        }
        Ok(config)
    }

    pub fn index_dir(&self) -> PathBuf {
        self.index_dir.clone().unwrap_or_else(crate::paths::default_index_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_file_equals_built_in_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_FILE).unwrap();
        assert_eq!(parsed, Config::default());
    }
}
