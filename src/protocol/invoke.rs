//! Invoking a command on a node: the `node.invoke.request` event the gateway sends, the
//! `node.invoke.result` request the node answers with, and the `system.run` params and result
//! (reference §5.4; Clawdbot 2026.1.24 node hosts always answer with `payloadJSON`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::frames::ErrorShape;

pub const EVENT_INVOKE_REQUEST: &str = "node.invoke.request";
pub const METHOD_INVOKE_RESULT: &str = "node.invoke.result";
pub const METHOD_NODE_EVENT: &str = "node.event";

pub const SYSTEM_RUN: &str = "system.run";
pub const SYSTEM_WHICH: &str = "system.which";
pub const EXEC_APPROVALS_GET: &str = "system.execApprovals.get";
pub const EXEC_APPROVALS_SET: &str = "system.execApprovals.set";

/// The commands a Linux or Windows node may declare (Clawdbot's platform list); anything else
/// a node declares is dropped at connect.
pub const SYSTEM_COMMANDS: &[&str] = &[
    SYSTEM_RUN,
    SYSTEM_WHICH,
    "system.notify",
    EXEC_APPROVALS_GET,
    EXEC_APPROVALS_SET,
    "browser.proxy",
];

/// `node.invoke.request` payload. `paramsJSON` is `null`, not absent, when there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeRequest {
    pub id: String,
    pub node_id: String,
    pub command: String,
    #[serde(rename = "paramsJSON")]
    pub params_json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `node.invoke.result` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeResult {
    pub id: String,
    pub node_id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(
        rename = "payloadJSON",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub payload_json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorShape>,
}

impl InvokeResult {
    /// The payload as a value, whichever way the node sent it (`payloadJSON` that does not parse
    /// is kept as a string under `payloadJSON`, as Clawdbot does).
    pub fn payload_value(&self) -> Option<Value> {
        match (&self.payload, &self.payload_json) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(text)) => Some(
                serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::json!({ "payloadJSON": text })),
            ),
            (None, None) => None,
        }
    }
}

/// `system.run` params.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunParams {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The gateway's exec policy for this node (clawops only; Clawdbot node hosts ignore it):
    /// the node takes the stricter of it and its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::exec::Policy>,
    /// Patterns the owner approved in advance at the gateway (a NodePairing's
    /// `spec.exec.allowlist`; clawops only): a command they match counts as approved when the
    /// node's policy would ask about it, never when it would deny.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<String>,
}

/// `system.run` result payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutput {
    /// Absent when the process died by a signal or never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// Why it could not start, if it did not.
    pub error: Option<String>,
    /// Patterns the node added to its allowlist for this run (an "Always allow"; clawops
    /// nodes only), so the gateway can record them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlisted: Vec<String>,
    /// The gateway's patterns (`RunParams.allowlist`) that let this run go without asking
    /// (clawops nodes only), so the owner sees when each was last used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standing: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoke_request_without_params_carries_null_params_json() {
        let r = InvokeRequest {
            id: "i".into(),
            node_id: "n".into(),
            command: SYSTEM_WHICH.into(),
            params_json: None,
            timeout_ms: None,
            idempotency_key: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"id":"i","nodeId":"n","command":"system.which","paramsJSON":null}"#
        );
    }

    #[test]
    fn results_read_payload_json_or_payload() {
        let r: InvokeResult = serde_json::from_str(
            r#"{"id":"i","nodeId":"n","ok":true,"payloadJSON":"{\"exitCode\":0,\"timedOut\":false,\"success\":true,\"stdout\":\"hi\\n\",\"stderr\":\"\",\"error\":null}"}"#,
        )
        .unwrap();
        let out: RunOutput = serde_json::from_value(r.payload_value().unwrap()).unwrap();
        assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), "hi\n"));
        let bad: InvokeResult =
            serde_json::from_str(r#"{"id":"i","nodeId":"n","ok":true,"payloadJSON":"{oops"}"#)
                .unwrap();
        assert_eq!(
            bad.payload_value(),
            Some(serde_json::json!({"payloadJSON": "{oops"}))
        );
    }
}
