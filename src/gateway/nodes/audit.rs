//! The exec audit log: one JSON line per command a node was asked to run — allowed, asked,
//! denied, timed out — in `exec/audit.jsonl` (0600): who, node, command, decision, exit code,
//! duration and output size; never the output itself.

use serde::{Deserialize, Serialize};

use crate::util::jsonl::JsonLog;

pub const FILE: &str = "exec/audit.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRecord {
    pub ts: chrono::DateTime<chrono::Utc>,
    pub node_id: String,
    pub node: String,
    pub command: String,
    /// `ran` (the policy allowed it), `allow-once`, `allow-always`, `denied`, `timed-out`,
    /// `refused` (the node or the gateway's policy said no), `failed` (no answer).
    pub decision: String,
    /// Who decided, when the owner did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub output_bytes: usize,
}

/// The exec audit log.
pub type Audit = JsonLog<ExecRecord>;
