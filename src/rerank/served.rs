//! A reranker on a server that speaks the `/rerank` API of Cohere and Jina, which Infinity, vLLM,
//! llama.cpp's server and TEI serve too: `POST {url}/rerank` with `{model, query, documents,
//! top_n}`, answered with `results: [{index, relevance_score}]` in any order. For users who run
//! one already: `--reranker openai:NAME --endpoint URL`. The query and the candidates' text go
//! only where the user pointed qsearch, as the embedder's texts do.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::Reranker;
use crate::embed::server::Server;
use crate::models::reference::SERVED_PREFIX;

/// Tries of a request that failed in a way that may pass (no connection, 429, 5xx, a timeout).
const TRIES: u32 = 3;

pub struct ServedReranker {
    name: String,
    server: Server,
    agent: ureq::Agent,
}

impl ServedReranker {
    /// `name` is the server's name for the model. Scores one pair at once, so that a server that
    /// is down, lacks the model or refuses the key is said now.
    pub fn connect(name: &str, server: Server) -> Result<ServedReranker> {
        if name.is_empty() {
            bail!("`{SERVED_PREFIX}` names no reranker: use {SERVED_PREFIX}NAME, NAME as the server calls it");
        }
        let agent = server.agent(Duration::from_secs(2), Duration::from_secs(30));
        let mut r = ServedReranker { name: name.to_string(), server, agent };
        r.score("qsearch", &["qsearch"])?;
        Ok(r)
    }

    fn send(&self, body: &[u8]) -> Result<(u16, String), ureq::Error> {
        self.server.post(&self.agent, "rerank", body, 64 << 20)
    }
}

impl Reranker for ServedReranker {
    fn id(&self) -> String {
        format!("{SERVED_PREFIX}{}", self.name)
    }

    fn score(&mut self, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        let body = serde_json::to_vec(&serde_json::json!({
            "model": self.name, "query": query, "documents": documents, "top_n": documents.len(),
            "return_documents": false,
        }))?;
        let mut wait = Duration::from_millis(100);
        for tries in 1..=TRIES {
            match self.send(&body) {
                Ok((200, text)) => return parse(&text, documents.len()),
                Ok((status, text)) if (status != 429 && status < 500) || tries == TRIES => {
                    let hint = match status {
                        401 | 403 => ": set the key in QSEARCH_API_KEY",
                        404 => ": does the server have this model, and serve /rerank under this URL?",
                        _ => "",
                    };
                    bail!(
                        "the reranker at {} answered {status} for {}: {}{hint}",
                        self.server.url,
                        self.name,
                        text.chars().take(200).collect::<String>().trim()
                    );
                }
                Err(e) if tries == TRIES => bail!("cannot reach the reranker at {}: {e}", self.server.url),
                _ => {}
            }
            std::thread::sleep(wait);
            wait *= 2;
        }
        unreachable!("the last try returns")
    }
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<Scored>,
}

#[derive(Deserialize)]
struct Scored {
    index: usize,
    #[serde(alias = "score")]
    relevance_score: f32,
}

/// Scores in the documents' order from an answer in any order; every document must be scored
/// once.
fn parse(body: &str, documents: usize) -> Result<Vec<f32>> {
    let answer: Answer = serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("the reranker's answer is not the /rerank API's ({e}): {body:.200}"))?;
    let mut scores = vec![None; documents];
    for r in answer.results {
        match scores.get_mut(r.index) {
            Some(slot @ None) => *slot = Some(r.relevance_score),
            _ => bail!("the reranker scored document {} of {documents} twice or out of range", r.index),
        }
    }
    scores
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| anyhow::anyhow!("the reranker left document {i} of {documents} unscored")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_any_order_are_put_back_in_the_documents_order() {
        let body = r#"{"results":[{"index":2,"relevance_score":0.9},{"index":0,"relevance_score":0.1},
            {"index":1,"score":0.5}]}"#;
        assert_eq!(parse(body, 3).unwrap(), [0.1, 0.5, 0.9]);
        assert!(
            parse(r#"{"results":[{"index":0,"relevance_score":1}]}"#, 2).unwrap_err().to_string().contains("unscored")
        );
        assert!(parse(r#"{"results":[{"index":5,"relevance_score":1}]}"#, 2).is_err());
        assert!(parse(r#"{"data":[]}"#, 1).unwrap_err().to_string().contains("/rerank API"));
    }
}
