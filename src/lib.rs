//! qsearch: local semantic search over folders of notes, docs and code.
//!
//! Data flows one way: files -> documents -> chunks -> embeddings -> store -> query -> hits.
//! The library never prints; the binary and the TUI decide what the user sees.

pub mod config;
pub mod daemon;
pub mod doctor;
pub mod embed;
pub mod eval;
pub mod indexer;
// The MCP server: built with the `mcp` feature (on by default).
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod models;
pub mod paths;
pub mod pip;
pub mod rerank;
pub mod runtime;
pub mod scan;
pub mod search;
pub mod service;
pub mod session;
pub mod store;
pub mod text;
pub mod tui;
pub mod util;
pub mod watch;
