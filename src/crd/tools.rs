//! `Agent.spec.tools`: which tools the assistant may call during a chat turn, and their limits.
//! The defaults are the safe ones: cluster tools only where `clusterAccess: read` already
//! grants the view, node tools only for nodes paired with this Agent, pod logs off.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The assistant's tools.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolsSpec {
    /// Cluster tools (list, get, events, usage, run a patrol), read-only; only offered with
    /// `clusterAccess: read`.
    #[serde(default = "yes")]
    pub cluster: bool,
    /// Node tools (list nodes, their system facts, run a command through the node's exec
    /// policy and the owner's approval), for the nodes paired with this Agent.
    #[serde(default = "yes")]
    pub nodes: bool,
    /// The pod_logs tool; off by default because logs can hold secrets.
    #[serde(default)]
    pub pod_logs: bool,
    /// Rounds of tool calls in one turn; then the model answers with what it has.
    #[serde(default = "default_rounds")]
    #[schemars(range(min = 1, max = 20))]
    pub max_rounds: u32,
    /// Seconds one tool call may take (a node command also waits for the owner's approval).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_seconds: u32,
    /// Bytes of one tool result given to the model; the rest is cut, with a note saying so.
    #[serde(default = "default_result_bytes")]
    #[schemars(range(min = 1000, max = 100000))]
    pub max_result_bytes: u32,
}

fn yes() -> bool {
    true
}

fn default_rounds() -> u32 {
    6
}

fn default_timeout() -> u32 {
    30
}

fn default_result_bytes() -> u32 {
    8000
}

impl Default for ToolsSpec {
    fn default() -> Self {
        Self {
            cluster: yes(),
            nodes: yes(),
            pod_logs: false,
            max_rounds: default_rounds(),
            timeout_seconds: default_timeout(),
            max_result_bytes: default_result_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_block_is_the_safe_default() {
        let t: ToolsSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(t, ToolsSpec::default());
        assert!(t.cluster && t.nodes && !t.pod_logs);
    }
}
