//! What a `search` tool call costs the MCP server, beyond the query's embedding: the synthetic
//! index of benches/search.rs (default 100,000 chunks, 1,024 dimensions), served by
//! `qsearch::mcp` over an in-process byte pipe to an rmcp client, so each timing is a whole
//! JSON-RPC round trip (encode, route, parse the arguments, refresh check, embed with the
//! stand-in model, search, build and encode the result, decode it). The stand-in embedding is
//! timed alone too, and the same searches straight through `Engine::search` show what the
//! protocol adds.
//!
//!     cargo bench --bench mcp -- [CHUNKS] [DIMS]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use qsearch::embed::load::Plan;
use qsearch::embed::stand_in::StandIn;
use qsearch::embed::{Embedder, InputKind};
use qsearch::mcp::engine::SearchRequest;
use qsearch::mcp::{self, Engine, Setup};
use qsearch::models::reference::ModelRef;
use qsearch::search::Mode;
use qsearch::session::ModelState;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dims: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let mut synthetic = common::synthetic_index(n, dims, None);
    let queries = synthetic.queries(200);

    let setup = Setup {
        index_dir: synthetic.dir.clone(),
        model: Plan::named(ModelRef::StandIn),
        defaults: Default::default(),
        index_options: Default::default(),
    };
    let engine = Arc::new(Engine::new(setup));
    let t = Instant::now();
    engine.warm_up();
    while !matches!(engine.status().unwrap().model, ModelState::Ready { .. }) {
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("server ready (index opened, vectors loaded, model warm) in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);

    let mut out = serde_json::Map::new();
    out.insert("chunks".into(), n.into());
    out.insert("dims".into(), dims.into());

    // The query embedding alone (the stand-in model), to tell the server's own cost from it.
    let mut stand_in = StandIn::new(dims);
    let embed_ms: Vec<f64> = queries
        .iter()
        .map(|(text, _)| {
            let t = Instant::now();
            std::hint::black_box(stand_in.embed(&[text], InputKind::Query).unwrap());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let (embed_p50, _) = common::percentiles(embed_ms);
    eprintln!("stand-in query embedding p50 {embed_p50:.3} ms");
    out.insert("stand_in_embed_p50_ms".into(), embed_p50.into());

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (client_end, server_end) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_end);
        tokio::spawn(mcp::serve(engine.clone(), server_read, server_write));
        let (client_read, client_write) = tokio::io::split(client_end);
        let client = ().serve((client_read, client_write)).await.unwrap();
        for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
            let mut ms = Vec::new();
            for (text, _) in &queries {
                let arguments = json!({ "query": text, "k": 10, "mode": mode.to_string() });
                let params =
                    CallToolRequestParams::new("search").with_arguments(arguments.as_object().unwrap().clone());
                let t = Instant::now();
                let result = client.call_tool(params).await.unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(result.is_error, Some(false), "{result:?}");
            }
            let (p50, p95) = common::percentiles(ms);
            eprintln!(
                "search tool call, {mode:<8} p50 {p50:.2} ms  p95 {p95:.2} ms  (beyond the embedding: p50 {:.2} ms)",
                p50 - embed_p50
            );
            out.insert(format!("tool_{mode}_p50_ms"), p50.into());
            out.insert(format!("tool_{mode}_p95_ms"), p95.into());
        }
        // The protocol alone: a call the engine refuses at once (an empty query), so the time is
        // the JSON-RPC round trip and the hop to a blocking thread and back.
        let mut ms = Vec::new();
        for _ in &queries {
            let params = CallToolRequestParams::new("search")
                .with_arguments(json!({ "query": " " }).as_object().unwrap().clone());
            let t = Instant::now();
            let result = client.call_tool(params).await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(result.is_error, Some(true), "{result:?}");
        }
        let (p50, p95) = common::percentiles(ms);
        eprintln!("protocol alone (a call refused at once) p50 {p50:.2} ms  p95 {p95:.2} ms");
        out.insert("tool_refused_p50_ms".into(), p50.into());
        out.insert("tool_refused_p95_ms".into(), p95.into());
        // Four calls in flight at once on one connection, as an agent fanning out.
        let t = Instant::now();
        for chunk in queries.chunks(4) {
            let calls = chunk.iter().map(|(text, _)| {
                let arguments = json!({ "query": text, "k": 10 });
                let params =
                    CallToolRequestParams::new("search").with_arguments(arguments.as_object().unwrap().clone());
                let peer = client.peer().clone();
                async move { peer.call_tool(params).await }
            });
            for result in futures_join(calls).await {
                assert_eq!(result.unwrap().is_error, Some(false));
            }
        }
        let per_call = t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64;
        eprintln!("hybrid calls 4 at a time: {per_call:.2} ms per call (throughput)");
        out.insert("tool_hybrid_4_in_flight_ms_per_call".into(), per_call.into());
        let _ = client.cancel().await;
    });

    // The same searches without the protocol: what the tool's JSON-RPC round trip adds.
    for mode in [Mode::Keyword, Mode::Hybrid] {
        let ms: Vec<f64> = queries
            .iter()
            .map(|(text, _)| {
                let req = SearchRequest { query: text.clone(), k: Some(10), mode: Some(mode), ..Default::default() };
                let t = Instant::now();
                std::hint::black_box(engine.search(&req).unwrap());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let (p50, p95) = common::percentiles(ms);
        eprintln!("Engine::search, {mode:<8} p50 {p50:.2} ms  p95 {p95:.2} ms");
        out.insert(format!("engine_{mode}_p50_ms"), p50.into());
        out.insert(format!("engine_{mode}_p95_ms"), p95.into());
    }
    runtime.shutdown_background();
    println!("{}", serde_json::Value::Object(out));
}

/// Awaits every future, in order (a small join_all, to need no extra crate).
async fn futures_join<F: std::future::Future + Send + 'static>(calls: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
