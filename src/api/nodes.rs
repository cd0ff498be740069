//! The `/api` contract of nodes, their exec settings and approvals, and the audit logs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ExecAsk, ExecSecurity};

/// `GET /api/nodes`: devices waiting for approval and paired ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeList {
    pub pending: Vec<PendingNode>,
    pub paired: Vec<PairedNode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingNode {
    pub request_id: String,
    pub node_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// When it asked (ms since the epoch); it is forgotten 5 minutes later.
    pub requested_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedNode {
    pub node_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub platform: String,
    pub connected: bool,
    /// Revoked nodes are refused until approved again.
    pub revoked: bool,
    /// Commands it declared when it connected (only while connected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_ms: Option<i64>,
    pub approved_at_ms: i64,
}

/// `POST /api/nodes/{approve,reject,revoke,rotate}`: a request id, or a node id or its prefix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeAction {
    pub id: String,
}

/// `GET|POST /api/nodes/{id}/exec`: the gateway's exec settings for a paired node — a
/// NodePairing's `spec.exec` in a cluster, the state dir standalone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeExec {
    pub node_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub security: ExecSecurity,
    pub ask: ExecAsk,
    pub ask_fallback: ExecSecurity,
    /// The patterns the owner approved in advance, with their last use.
    pub allowlist: Vec<AllowedPattern>,
    /// Where the settings are kept, e.g. `NodePairing clawops/shrimp-3f2a…` or the state file.
    pub source: String,
}

/// One pattern of a node's allowlist and when it last let a command run without asking (from
/// the exec audit log).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedPattern {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_command: Option<String>,
}

/// `POST /api/nodes/{id}/exec`: what to change; fields left out stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<ExecSecurity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<ExecAsk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_fallback: Option<ExecSecurity>,
    /// Patterns to add (kept once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Patterns to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// `POST /api/nodes/run`: run a command line on a node, through its exec policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRunRequest {
    /// Node id (or a unique prefix) or display name.
    pub node: String,
    /// The command line, run by `/bin/sh -lc` on the node.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// How long to wait for the owner when the node asks for approval (default 120 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_ms: Option<u64>,
}

/// `POST /api/approvals/resolve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolveApproval {
    pub id: String,
    /// `allow-once`, `allow-always` or `deny`.
    pub decision: String,
}

/// `GET /api/approvals`: a command waiting for the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingExec {
    pub id: String,
    pub node_id: String,
    pub node: String,
    pub command: String,
    /// Why the node asks (e.g. which program is not on its allowlist).
    pub reason: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What a command run on a node did.
pub use crate::protocol::invoke::RunOutput as NodeRunReply;

/// One tool call of the assistant, as `tools/audit.jsonl` and `GET /api/audit` have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolRecord {
    pub ts: chrono::DateTime<chrono::Utc>,
    /// The conversation the turn belongs to (`telegram-<channel>-<chat>`, `api-<chat>`).
    pub chat: String,
    pub tool: String,
    /// The arguments as JSON text, redacted.
    pub arguments: String,
    pub duration_ms: u64,
    pub result_bytes: usize,
    /// `ok`, or how it failed: `unknown`, `bad-arguments`, `refused`, `failed`, `timed-out`.
    pub outcome: String,
}

/// One command asked of a node, as `exec/audit.jsonl` and `GET /api/audit` have it.
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
    /// The gateway's allowlist patterns that let it run without asking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<String>,
}

/// `GET /api/audit[?since=1h]`: the assistant's tool calls and the commands asked of nodes,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    pub tools: Vec<ToolRecord>,
    pub execs: Vec<ExecRecord>,
}
