//! A small MCP client over streamable HTTP, enough to drive `qsearch mcp --http` as an agent
//! does: `initialize` (the server's answer carries the session id), `notifications/initialized`,
//! then `tools/call` requests, each answered as a short server-sent-event stream that ends after
//! the response; `close` ends the session with a DELETE, as a well-behaved client leaves.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

const PROTOCOL: &str = "2025-06-18";

pub struct McpClient {
    agent: ureq::Agent,
    url: String,
    session: String,
    next_id: u64,
}

impl McpClient {
    /// Opens a session: `initialize`, then `notifications/initialized`.
    pub fn connect(url: &str) -> Result<McpClient> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "soak", "version": "0"}}});
        let mut resp = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .send(init.to_string())
            .context("initialize")?;
        let status = resp.status().as_u16();
        let session = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(String::from);
        let body = resp.body_mut().read_to_string().context("initialize's answer")?;
        if status != 200 {
            bail!("initialize answered {status}: {body}");
        }
        let session = session.ok_or_else(|| anyhow!("initialize answered without a session id: {body}"))?;
        response(&body, 0)?;
        let mut client = McpClient { agent, url: url.to_string(), session, next_id: 1 };
        let (status, body) = client.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        if status != 202 {
            bail!("notifications/initialized answered {status}: {body}");
        }
        Ok(client)
    }

    fn post(&mut self, message: &Value) -> Result<(u16, String)> {
        let mut resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Session-Id", &self.session)
            .header("MCP-Protocol-Version", PROTOCOL)
            .send(message.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string()?;
        Ok((status, body))
    }

    /// A `search` tool call: the paths of its hits, in order.
    pub fn search(&mut self, query: &str, mode: &str, k: usize) -> Result<Vec<String>> {
        let id = self.next_id;
        self.next_id += 1;
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "search", "arguments": {"query": query, "mode": mode, "k": k}}});
        let (status, body) = self.post(&call)?;
        if status != 200 {
            bail!("tools/call answered {status}: {body}");
        }
        let result = response(&body, id)?;
        if result["isError"] != json!(false) {
            bail!("the search tool failed: {result}");
        }
        let hits = result["structuredContent"]["hits"].as_array().ok_or_else(|| anyhow!("no hits in {result}"))?;
        Ok(hits.iter().filter_map(|h| h["path"].as_str().map(String::from)).collect())
    }

    /// Ends the session (DELETE), as a client that leaves politely.
    pub fn close(self) -> Result<()> {
        let resp = self
            .agent
            .delete(&self.url)
            .header("Mcp-Session-Id", &self.session)
            .header("MCP-Protocol-Version", PROTOCOL)
            .call()?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            bail!("DELETE answered {status}");
        }
        Ok(())
    }
}

/// The `result` of the JSON-RPC response with `id` among the stream's `data:` lines (or the
/// body itself, when the server answers with plain JSON).
fn response(body: &str, id: u64) -> Result<Value> {
    let messages = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(body))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok());
    for message in messages {
        if message["id"] != json!(id) {
            continue;
        }
        if let Some(error) = message.get("error") {
            bail!("JSON-RPC error: {error}");
        }
        return message.get("result").cloned().ok_or_else(|| anyhow!("no result in {message}"));
    }
    bail!("no response with id {id} in {body:?}")
}
