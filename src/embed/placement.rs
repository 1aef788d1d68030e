//! Where a graph's nodes ran, as ONNX Runtime itself records it: its profile of a run lists each
//! node's kernel with the execution provider that ran it. `qsearch doctor` and `qsearch embed`
//! show it, so that a model that was meant for an accelerator and ran (in part) on the CPU is
//! seen, not guessed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::{Context, Result, bail};

/// The nodes each provider ran, and what loading the graph cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodePlacement {
    /// (provider, nodes), most nodes first; ONNX Runtime's names without `ExecutionProvider`.
    pub providers: Vec<(String, usize)>,
    /// Seconds creating the session took: reading, optimising and (for an accelerator)
    /// compiling the graph.
    pub load_secs: f64,
}

impl NodePlacement {
    pub fn nodes(&self) -> usize {
        self.providers.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for NodePlacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.nodes();
        let parts: Vec<String> = self.providers.iter().map(|(p, n)| format!("{p} {n}/{total} nodes")).collect();
        write!(f, "{} (session made in {:.2} s)", parts.join(", "), self.load_secs)
    }
}

/// Where this process has ONNX Runtime write its profile (`onnx::Options::profile`): a file under
/// the temporary directory, removed once its placement is read.
pub fn profile_prefix() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("qsearch-profile-{}", std::process::id()))
}

/// Nodes per provider in an ONNX Runtime profile (its JSON array of events): each node counted
/// once, by the provider of its kernel.
pub fn from_profile(json: &str) -> Result<Vec<(String, usize)>> {
    let events: Vec<serde_json::Value> = serde_json::from_str(json).context("ONNX Runtime's profile is not JSON")?;
    let mut nodes: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for event in &events {
        let (Some(name), Some(provider)) = (event["name"].as_str(), event["args"]["provider"].as_str()) else {
            continue;
        };
        if event["cat"] != "Node" {
            continue;
        }
        let Some(node) = name.strip_suffix("_kernel_time") else { continue };
        let provider = provider.strip_suffix("ExecutionProvider").unwrap_or(provider);
        nodes.entry(provider.to_string()).or_default().insert(node);
    }
    if nodes.is_empty() {
        bail!("ONNX Runtime's profile lists no node: nothing ran while it recorded");
    }
    let mut out: Vec<(String, usize)> = nodes.into_iter().map(|(p, n)| (p, n.len())).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_counted_once_by_the_provider_of_their_kernel() {
        let profile = r#"[
            {"cat": "Session", "name": "model_loading_uri", "args": {}},
            {"cat": "Node", "name": "/a/MatMul_fence_before", "args": {"op_name": "MatMul"}},
            {"cat": "Node", "name": "/a/MatMul_kernel_time", "args": {"op_name": "MatMul", "provider": "CUDAExecutionProvider"}},
            {"cat": "Node", "name": "/a/MatMul_kernel_time", "args": {"op_name": "MatMul", "provider": "CUDAExecutionProvider"}},
            {"cat": "Node", "name": "/b/Add_kernel_time", "args": {"op_name": "Add", "provider": "CUDAExecutionProvider"}},
            {"cat": "Node", "name": "/c/Shape_kernel_time", "args": {"op_name": "Shape", "provider": "CPUExecutionProvider"}}
        ]"#;
        let providers = from_profile(profile).unwrap();
        assert_eq!(providers, vec![("CUDA".to_string(), 2), ("CPU".to_string(), 1)]);
        let placement = NodePlacement { providers, load_secs: 1.5 };
        assert_eq!(placement.to_string(), "CUDA 2/3 nodes, CPU 1/3 nodes (session made in 1.50 s)");
        assert!(from_profile("[]").unwrap_err().to_string().contains("no node"));
    }
}
