//! Embeddings from a server that speaks OpenAI's embeddings API (`POST {url}/embeddings`): Ollama,
//! LM Studio, llama.cpp's server, vLLM, or OpenAI itself. For users who already run one, on
//! whatever accelerator it has: `--model openai:NAME --endpoint URL`. The texts go only where the
//! user pointed qsearch; `embed::load` says so when that is not this machine.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::device::{Backend, Placement};
use super::{Embedded, Embedder, InputKind, pool};
use crate::models::catalog;
use crate::models::reference::{ModelRef, SERVED_PREFIX};

/// Ollama's OpenAI-compatible API on this machine.
pub const DEFAULT_URL: &str = "http://localhost:11434/v1";
/// Inputs per request: small enough that a request that failed is cheap to send again.
const PER_REQUEST: usize = 64;
/// Tries of a request that failed in a way that may pass (no connection, 429, 5xx, a timeout).
const TRIES: u32 = 4;
/// The server is not asked how long its model's inputs may be (OpenAI's API does not say): models
/// known to read fewer tokens than a chunk holds are listed in [`max_tokens_for`]; the rest get
/// this, and a server cuts what is longer than its model takes. Chunks are sized by estimate
/// (4 bytes a token).
const MAX_TOKENS: usize = 8192;

/// Where the server is, and the key it wants (sent as a bearer token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Base URL, up to the path `/embeddings` is added to (`http://localhost:11434/v1`).
    pub url: String,
    pub key: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Server { url: DEFAULT_URL.into(), key: None }
    }
}

impl Server {
    /// Whether texts sent there stay on this machine (the host is a loopback name or address).
    pub fn is_local(&self) -> bool {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        let host = host.to_ascii_lowercase();
        host == "localhost" || host.ends_with(".localhost") || host.starts_with("127.") || host == "::1"
    }

    /// An HTTP agent for this server: statuses as answers, not errors, and no proxy for a server
    /// on this machine (texts for it never leave it through an HTTP_PROXY).
    pub fn agent(&self, connect: Duration, whole: Duration) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect))
            .timeout_global(Some(whole))
            .http_status_as_error(false);
        if self.is_local() {
            config = config.proxy(None);
        }
        config.build().into()
    }

    /// POSTs a JSON `body` to `{url}/{path}` with the key as a bearer token: the status and the
    /// body (up to `limit` bytes).
    pub fn post(&self, agent: &ureq::Agent, path: &str, body: &[u8], limit: u64) -> Result<(u16, String), ureq::Error> {
        let url = format!("{}/{path}", self.url.trim_end_matches('/'));
        let mut req = agent.post(&url).header("Content-Type", "application/json");
        if let Some(key) = &self.key {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        let mut resp = req.send(body)?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().with_config().limit(limit).read_to_string()?))
    }
}

/// What a model family expects in front of queries and documents, from its model card (the
/// catalog's `[[served]]` entries). Models not listed get none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts {
    pub query: String,
    pub document: String,
}

/// Prompts for the model a server calls `name` (`qwen3-embedding:0.6b`, `nomic-embed-text`...);
/// `task` is Qwen3's query instruction.
pub fn prompts_for(name: &str, task: &str) -> Prompts {
    let spec = catalog::served(name);
    Prompts { query: spec.query_prefix.replace("{task}", task), document: spec.document_prefix }
}

/// The tokens a model reads, for the models that read fewer than a default chunk (384) holds
/// (from their model cards and Ollama's library), so that chunks are cut to fit them.
pub fn max_tokens_for(name: &str) -> usize {
    catalog::served(name).max_tokens.unwrap_or(MAX_TOKENS)
}

pub struct ServerEmbedder {
    id: String,
    name: String,
    server: Server,
    agent: ureq::Agent,
    dims: usize,
    max_tokens: usize,
    /// Sent as `dimensions` (a Matryoshka model cut by the server) when the model's own differ.
    ask_dims: Option<usize>,
    prompts: Prompts,
}

impl ServerEmbedder {
    /// `name` is the server's name for the model. Embeds one text at once, so that a server that
    /// is down, a model it does not have, or a refused key is said now, not in the middle of an
    /// index.
    pub fn connect(name: &str, server: Server, dims: Option<usize>, task: &str) -> Result<Self> {
        let id = ModelRef::Served(name.to_string()).to_string();
        if name.is_empty() {
            bail!("`{id}` names no model: use {SERVED_PREFIX}NAME, NAME as the server calls it");
        }
        let agent = server.agent(Duration::from_secs(5), Duration::from_secs(300));
        let mut e = ServerEmbedder {
            id,
            name: name.to_string(),
            prompts: prompts_for(name, task),
            max_tokens: max_tokens_for(name),
            server,
            agent,
            dims: 0,
            ask_dims: None,
        };
        let probe = ["qsearch".to_string()];
        let own = e.request(&probe)?.0.remove(0).len();
        e.dims = own;
        if let Some(want) = dims.filter(|&d| d != own) {
            e.ask_dims = Some(want);
            let got = e.request(&probe)?.0.remove(0).len();
            if got != want {
                bail!(
                    "{} gives vectors of {own} dimensions and does not cut them to {want} (asked with `dimensions`): \
                     leave --dims unset, or use a model that takes it",
                    e.id
                );
            }
            e.dims = want;
        }
        Ok(e)
    }

    /// One request, tried again while its failure may pass: the vectors in input order and the
    /// tokens the server counted.
    fn request(&self, inputs: &[String]) -> Result<(Vec<Vec<f32>>, Option<usize>)> {
        let mut body = serde_json::json!({ "model": self.name, "input": inputs, "encoding_format": "float" });
        if let Some(d) = self.ask_dims {
            body["dimensions"] = d.into();
        }
        let body = serde_json::to_vec(&body)?;
        let mut wait = Duration::from_millis(250);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.send(&body) {
                Ok((200, text)) => return parse(&text, inputs.len()),
                Ok((status, text)) => {
                    let retry = status == 429 || status >= 500;
                    if !retry || tries >= TRIES {
                        bail!("{}", self.refusal(status, &text));
                    }
                }
                Err(e) if tries >= TRIES => bail!(
                    "cannot reach the embedding server at {}: {e}. Start it (Ollama: `ollama serve`), or name \
                     another with --endpoint URL",
                    self.server.url
                ),
                Err(_) => {}
            }
            std::thread::sleep(wait);
            wait *= 2;
        }
    }

    fn send(&self, body: &[u8]) -> Result<(u16, String), ureq::Error> {
        self.server.post(&self.agent, "embeddings", body, 256 << 20)
    }

    /// What to tell the user of a request the server refused.
    fn refusal(&self, status: u16, body: &str) -> String {
        let why = server_error(body);
        let hint = match status {
            401 | 403 => ": set the key in QSEARCH_API_KEY",
            404 => {
                ": is the model pulled on the server (Ollama: `ollama pull NAME`), and is the URL the API's base (.../v1)?"
            }
            _ => "",
        };
        format!("the embedding server at {} answered {status} for {}: {why}{hint}", self.server.url, self.name)
    }
}

/// The message in an error response (`{"error": {"message": ...}}`, `{"error": "..."}`), else the
/// start of the body.
fn server_error(body: &str) -> String {
    let value: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = value.as_ref().and_then(|v| v.get("error"));
    match error.and_then(|e| e.get("message").and_then(|m| m.as_str()).or(e.as_str())) {
        Some(message) => message.to_string(),
        None => body.chars().take(300).collect::<String>().trim().to_string(),
    }
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    index: Option<usize>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<usize>,
}

/// The vectors of a response, placed by their `index` (servers may answer out of order).
fn parse(body: &str, inputs: usize) -> Result<(Vec<Vec<f32>>, Option<usize>)> {
    let response: Response = match serde_json::from_str(body) {
        Ok(r) => r,
        Err(e) => bail!("the embedding server's answer is not an embeddings response ({e}): {}", server_error(body)),
    };
    if response.data.len() != inputs {
        bail!("the embedding server returned {} vectors for {inputs} texts", response.data.len());
    }
    let mut vectors = vec![Vec::new(); inputs];
    for (i, item) in response.data.into_iter().enumerate() {
        let at = item.index.unwrap_or(i);
        if at >= inputs || !vectors[at].is_empty() {
            bail!("the embedding server returned a vector for text {at} twice or out of range");
        }
        if item.embedding.is_empty() || item.embedding.iter().any(|x| !x.is_finite()) {
            bail!("the embedding server returned an empty or non-finite vector for text {at}");
        }
        vectors[at] = item.embedding;
    }
    Ok((vectors, response.usage.and_then(|u| u.prompt_tokens)))
}

impl Embedder for ServerEmbedder {
    fn fingerprint(&self) -> String {
        format!("{}:{}d", self.id, self.dims)
    }
    fn model_id(&self) -> &str {
        &self.id
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn max_tokens(&self) -> usize {
        self.max_tokens
    }
    fn device(&self) -> Placement {
        Placement::on(Backend::Server)
    }
    fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        None
    }
    fn embed(&mut self, texts: &[&str], kind: InputKind) -> Result<Embedded> {
        let prompt = match kind {
            InputKind::Query => &self.prompts.query,
            InputKind::Document => &self.prompts.document,
        };
        let mut out = Embedded::default();
        for group in texts.chunks(PER_REQUEST) {
            let inputs: Vec<String> = group.iter().map(|t| format!("{prompt}{t}")).collect();
            let (vectors, tokens) = self.request(&inputs)?;
            for v in vectors {
                if v.len() != self.dims {
                    bail!("the embedding server returned {} dimensions, not {} as before", v.len(), self.dims);
                }
                out.vectors.push(pool::truncate_normalize(v, self.dims));
            }
            out.tokens += tokens.unwrap_or_else(|| inputs.iter().map(|t| t.len().div_ceil(4)).sum());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_local() {
        let at = |url: &str| Server { url: url.into(), key: None }.is_local();
        assert!(at(DEFAULT_URL));
        assert!(at("http://127.0.0.1:8080/v1"));
        assert!(at("http://[::1]:1234/v1"));
        assert!(at("http://user@localhost/v1"));
        assert!(!at("https://api.openai.com/v1"));
        assert!(!at("http://localhost.example.com/v1"));
        assert!(!at("http://192.168.1.20:11434/v1"));
    }

    #[test]
    fn families_get_their_prompts_and_others_none() {
        let qwen = prompts_for("qwen3-embedding:0.6b", "Find it");
        assert_eq!(qwen, Prompts { query: "Instruct: Find it\nQuery:".into(), document: String::new() });
        assert_eq!(prompts_for("nomic-embed-text:latest", "").document, "search_document: ");
        assert_eq!(prompts_for("intfloat/multilingual-e5-large", "").query, "query: ");
        assert_eq!(prompts_for("text-embedding-3-small", ""), Prompts::default());
        assert_eq!(prompts_for("all-minilm", ""), Prompts::default());
    }

    #[test]
    fn short_models_get_chunks_that_fit_them() {
        assert_eq!(max_tokens_for("all-minilm:l6-v2"), 256);
        assert_eq!(max_tokens_for("all-MiniLM-L6-v2"), 256);
        assert_eq!(max_tokens_for("paraphrase-multilingual"), 128);
        assert_eq!(max_tokens_for("qwen3-embedding:0.6b"), MAX_TOKENS);
    }

    #[test]
    fn vectors_are_placed_by_their_index() {
        let body =
            r#"{"data":[{"embedding":[0,1],"index":1},{"embedding":[1,0],"index":0}],"usage":{"prompt_tokens":7}}"#;
        let (v, tokens) = parse(body, 2).unwrap();
        assert_eq!(v, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(tokens, Some(7));
        assert!(parse(body, 3).unwrap_err().to_string().contains("2 vectors for 3 texts"));
        let twice = r#"{"data":[{"embedding":[0,1],"index":0},{"embedding":[1,0],"index":0}]}"#;
        assert!(parse(twice, 2).is_err());
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            server_error(r#"{"error":{"message":"model \"x\" not found","type":"api_error"}}"#),
            "model \"x\" not found"
        );
        assert_eq!(server_error(r#"{"error":"no such model"}"#), "no such model");
        assert_eq!(server_error("Bad Gateway"), "Bad Gateway");
        assert!(parse("<html>oops</html>", 1).unwrap_err().to_string().contains("<html>oops</html>"));
    }
}
