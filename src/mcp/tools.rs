//! The MCP face of the engine: four tools with JSON schemas and descriptions an agent can act
//! on. Each call is parsed here (bad arguments are JSON-RPC "invalid params" errors) and run on a
//! blocking thread; what goes wrong inside a tool (a refused path, no index yet) comes back as a
//! tool error whose text the agent reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, GetRequest, SearchRequest};
use crate::search::{Filter, Mode};
use crate::session::Around;

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeArg {
    /// Keyword and semantic rankings fused (the default).
    Hybrid,
    /// By meaning only (vector search).
    Semantic,
    /// Exact words only (BM25).
    Keyword,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Hybrid => Mode::Hybrid,
            ModeArg::Semantic => Mode::Semantic,
            ModeArg::Keyword => Mode::Keyword,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchParams {
    /// What to look for: words, a phrase or a question in natural language.
    pub query: String,
    /// How many hits to return (1 to 100; default from the user's configuration, usually 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub k: Option<u32>,
    /// hybrid (default): exact words and meaning combined; semantic: meaning only; keyword: exact words only.
    #[serde(default)]
    pub mode: Option<ModeArg>,
    /// Only files whose path matches this glob, absolute or relative to an indexed folder, e.g. "**/*.rs" or "journal/2026/**".
    #[serde(default)]
    pub path: Option<String>,
    /// Only files of these types, comma-separated: markdown, text, html, pdf, code, a language (rust, python, javascript, typescript, go, java, c, cpp, shell...) or an extension (toml).
    #[serde(default, rename = "type")]
    pub types: Option<String>,
    /// Only notes whose frontmatter has every one of these tags (a tag also matches the tags nested under it: "cooking" matches "cooking/italian").
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Only files modified since: a date (2026-11-01, today, yesterday) or a time ago (12h, 7d, 2w, 3months). A note's frontmatter date (date, updated, lastmod...) counts before its file's.
    #[serde(default)]
    pub since: Option<String>,
    /// Only files modified before: a date (that day included) or a time ago.
    #[serde(default)]
    pub until: Option<String>,
    /// Lines of the file to return before and after each hit's line (0 to 50; default none), as `grep -C`: in each hit's `context.lines`.
    #[serde(default)]
    #[schemars(range(min = 0, max = 50))]
    pub context_lines: Option<u32>,
    /// Also return each hit's chunk with the chunks before and after it in its document, in `context.neighbours`.
    #[serde(default)]
    pub neighbours: Option<bool>,
    /// Rerank the first hits with the reranker the server was started with (`--reranker`), within its time budget; each reranked hit gets `rerank_score`, and `reranked` says how many.
    #[serde(default)]
    pub rerank: Option<bool>,
}

/// Most lines of context a hit gets on each side.
const MAX_CONTEXT_LINES: u32 = 50;

impl SearchParams {
    /// The engine's request for these arguments; a filter value that cannot be read is an error
    /// the agent reads, like a missing query.
    pub fn request(self) -> anyhow::Result<SearchRequest> {
        let filter = Filter::from_parts(
            self.path.as_deref(),
            self.types.as_slice(),
            self.tags.as_deref().unwrap_or_default(),
            self.since.as_deref(),
            self.until.as_deref(),
            chrono::Local::now(),
        )?;
        let around = Around {
            lines: self.context_lines.unwrap_or(0).min(MAX_CONTEXT_LINES) as usize,
            neighbours: self.neighbours.unwrap_or(false),
        };
        Ok(SearchRequest {
            query: self.query,
            k: self.k.map(|k| k as usize),
            mode: self.mode.map(Mode::from),
            filter,
            around,
            rerank: self.rerank.unwrap_or(false),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetParams {
    /// The file: a `path` from a search hit, or a path relative to an indexed folder. Give this or `chunk_id`.
    #[serde(default)]
    pub path: Option<String>,
    /// A `chunk_id` from a search hit: returns that chunk's lines. Give this or `path`.
    #[serde(default)]
    pub chunk_id: Option<i64>,
    /// First line to return (1-based; default 1, or the chunk's first line).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub start_line: Option<u32>,
    /// Last line to return (inclusive; default the end, at most 1,000 lines per call).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub end_line: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IndexParams {
    /// One of the indexed folders (see `status`) to refresh; default all of them. New folders cannot be added from here.
    #[serde(default)]
    pub folder: Option<String>,
}

/// The server: the engine shared by every call, and the tool table.
#[derive(Clone)]
pub struct Server {
    engine: Arc<Engine>,
    tool_router: ToolRouter<Server>,
}

#[tool_router]
impl Server {
    pub fn new(engine: Arc<Engine>) -> Server {
        Server { engine, tool_router: Self::tool_router() }
    }

    #[tool(
        description = "Search the user's indexed notes, documents and code (local hybrid keyword + semantic search). \
        Returns hits best first, each with path, line (first matching line), end_line (end of the matching chunk), \
        heading, score, match (keyword, semantic, both, or phrase: it holds the query's words in order), snippet and \
        chunk_id; \"quoted words\" in the query must appear as a phrase in every hit. Read more of a hit with `get`, or ask \
        for `context_lines` around each hit and its `neighbours` (the chunks before and after). \
        `notes` says when results are keyword-only (the model is still loading) or partial. Narrow with `path`, \
        `type`, `tags` (frontmatter) and `since`/`until` (the note's frontmatter date, else the file's modification time).",
        annotations(title = "Search the index", read_only_hint = true, open_world_hint = false)
    )]
    async fn search(&self, Parameters(p): Parameters<SearchParams>) -> Result<CallToolResult, ErrorData> {
        let req = match p.request() {
            Ok(req) => req,
            Err(e) => return Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())])),
        };
        let engine = self.engine.clone();
        blocking(move || engine.search(&req).map(|out| structured(&out))).await
    }

    #[tool(
        description = "Read lines of an indexed file, numbered (number, tab, text): by `path` (a hit's path, or relative \
        to an indexed folder) with an optional start_line/end_line range, or by a hit's `chunk_id`. Only files the \
        index holds under its folders can be read: `..`, paths elsewhere and symlinks out of a folder are refused.",
        annotations(title = "Read an indexed file", read_only_hint = true, open_world_hint = false)
    )]
    async fn get(&self, Parameters(p): Parameters<GetParams>) -> Result<CallToolResult, ErrorData> {
        let req = GetRequest {
            path: p.path,
            chunk_id: p.chunk_id,
            start_line: p.start_line.map(|n| n as usize),
            end_line: p.end_line.map(|n| n as usize),
        };
        let engine = self.engine.clone();
        blocking(move || {
            engine.get(&req).map(|out| {
                let header =
                    format!("{} (lines {}-{} of {})\n", out.path, out.start_line, out.end_line, out.total_lines);
                let mut result = structured(&out);
                result.content = vec![ContentBlock::text(header + &out.text)];
                result
            })
        })
        .await
    }

    #[tool(
        description = "What the index holds and its state: indexed folders, files, chunks, chunks still waiting for \
        their embedding, the model (loading, ready or failed), and whether a watcher keeps the index up to date.",
        annotations(title = "Index status", read_only_hint = true, open_world_hint = false)
    )]
    async fn status(&self) -> Result<CallToolResult, ErrorData> {
        let engine = self.engine.clone();
        blocking(move || engine.status().map(|out| structured(&out))).await
    }

    #[tool(
        description = "Bring the index up to date with the files on disk (all indexed folders, or the one named): \
        new, changed and deleted files are re-indexed. When a watcher keeps the index up to date it changes nothing \
        and says so (refreshed: false). Can take a while on a large change.",
        annotations(
            title = "Refresh the index",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn index(
        &self,
        Parameters(p): Parameters<IndexParams>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let engine = self.engine.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let watch = tokio::spawn(async move {
            ct.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        });
        let result = blocking(move || engine.index(p.folder.as_deref(), &cancel).map(|out| structured(&out))).await;
        watch.abort();
        result
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "qsearch",
    instructions = "Local search over the user's indexed notes, documents and code. Use `search` to find passages \
    (hybrid keyword + semantic), `get` to read a hit's file or chunk with line numbers, `status` to see what is \
    indexed, and `index` to refresh the index after files changed (unless a watcher does it)."
)]
impl ServerHandler for Server {}

/// The value as structured content (with its JSON as text, for clients that read only text).
fn structured<T: serde::Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("cannot encode the result: {e}"))]),
    }
}

/// Runs a tool's work on a blocking thread; its failure becomes a tool error the agent reads.
async fn blocking(
    work: impl FnOnce() -> anyhow::Result<CallToolResult> + Send + 'static,
) -> Result<CallToolResult, ErrorData> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => Ok(CallToolResult::error(vec![ContentBlock::text(format!("{e:#}"))])),
        Err(e) => Err(ErrorData::internal_error(format!("the tool failed: {e}"), None)),
    }
}
