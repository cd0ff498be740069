//! Running a command line on a node for its owner: find the node, refuse what the gateway's
//! policy forbids outright, send `system.run` with that policy and the owner's standing
//! approvals (the node applies the stricter of the policy and its own), ask the owner when the
//! node wants approval, and record the outcome.

use std::time::Duration;

use std::sync::Arc;

use super::approvals::{self, Decision};
use super::audit::ExecRecord;
use super::registry::{InvokeError, NodeInfo};
use crate::exec::{DenyReason, Policy, Security};
use crate::gateway::Gateway;
use crate::gateway::prompts::Chat;
use crate::protocol::frames::ErrorShape;
use crate::protocol::invoke::{RunOutput, RunParams, SYSTEM_RUN};
use crate::util::uuid::uuid_v4 as uuid;

/// The command's own time limit when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long past the command's limit the gateway waits for the node's answer.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no connected node matches `{0}`; `clawops nodes list` shows the nodes")]
    NoNode(String),
    #[error("`{query}` matches several nodes ({}); use more of the node id", names.join(", "))]
    Ambiguous { query: String, names: Vec<String> },
    #[error("exec is off for node {0} (security=deny in the gateway's policy)")]
    Disabled(String),
    #[error("node {node}: the gateway's policy for it is unknown: {source}")]
    Policy {
        node: String,
        source: super::ExecError,
    },
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The node refused or failed: its own words (e.g. `SYSTEM_RUN_DENIED: approval required`)
    /// and, when it says, why.
    #[error("node {node}: {message}")]
    Node {
        node: String,
        message: String,
        reason: String,
    },
    #[error("node {node}: denied by {by}")]
    Denied { node: String, by: String },
    #[error("node {0}: nobody answered the approval in time; not run")]
    NotAnswered(String),
    #[error("node {0} answered something that is not a system.run result")]
    BadAnswer(String),
    /// Sent, and the node went away before answering: it may have run, and may still be
    /// running. Asking again with the same key (the same message answered again) gets the
    /// first run's result from the node instead of a second run.
    #[error(
        "node {node} disconnected while `{line}` was sent or running: its result is lost, and it may have run (it may still be running); do not run it again without asking"
    )]
    Lost { node: String, line: String },
}

/// The connected node `query` names: its id, a unique id prefix, or its display name.
pub fn find(nodes: &[NodeInfo], query: &str) -> Result<NodeInfo, RunError> {
    if let Some(n) = nodes.iter().find(|n| n.node_id == query) {
        return Ok(n.clone());
    }
    let hits: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| {
            (!query.is_empty() && n.node_id.starts_with(query))
                || n.display_name.as_deref() == Some(query)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(RunError::NoNode(query.into())),
        many => Err(RunError::Ambiguous {
            query: query.into(),
            names: many
                .iter()
                .map(|n| {
                    format!(
                        "{} ({})",
                        n.display_name.as_deref().unwrap_or("-"),
                        &n.node_id[..12]
                    )
                })
                .collect(),
        }),
    }
}

/// The argv a node runs a command line with, as Clawdbot's gateway builds it.
pub fn shell_argv(platform: &str, line: &str) -> Vec<String> {
    let argv: &[&str] = if platform.starts_with("win") {
        &["cmd.exe", "/d", "/s", "/c", line]
    } else {
        &["/bin/sh", "-lc", line]
    };
    argv.iter().map(|s| s.to_string()).collect()
}

/// The idempotency key of a command asked with `seed` (see `TurnTools`): the same seed, node
/// and line give the same key.
fn idempotency_key(seed: &str, node_id: &str, line: &str) -> String {
    let mut key = crate::util::hex::sha256_hex(format!("{seed}\n{node_id}\n{line}").as_bytes());
    key.truncate(32);
    key
}

/// Runs `line` on the node `query` names. When the node asks for the owner's approval, the
/// owners are asked (Telegram buttons — in the `origin` chat when the request came from one —
/// and `clawops approvals`) and the answer decides; every outcome goes to the audit log.
pub async fn run(
    gw: &Arc<Gateway>,
    query: &str,
    line: &str,
    timeout: Option<Duration>,
    approval_timeout: Duration,
    origin: Option<&Chat>,
    once: Option<String>,
) -> Result<RunOutput, RunError> {
    let node = find(&gw.nodes.registry.list(), query)?;
    // One key for the whole run: the request after an approval is the same request.
    let key = once.map_or_else(uuid, |seed| idempotency_key(&seed, &node.node_id, line));
    let label = node
        .display_name
        .clone()
        .unwrap_or_else(|| node.node_id[..12].to_string());
    let started = std::time::Instant::now();
    let record = |decision: &str, by: Option<String>, out: Option<&RunOutput>| {
        gw.metrics
            .node_execs
            .get_or_create(&vec![("decision".to_string(), decision.to_string())])
            .inc();
        gw.nodes.audit.append(&ExecRecord {
            ts: chrono::Utc::now(),
            node_id: node.node_id.clone(),
            node: label.clone(),
            command: line.to_string(),
            decision: decision.into(),
            by,
            exit_code: out.and_then(|o| o.exit_code),
            duration_ms: started.elapsed().as_millis() as u64,
            output_bytes: out.map_or(0, |o| o.stdout.len() + o.stderr.len()),
            allowlist: out.map(|o| o.standing.clone()).unwrap_or_default(),
        });
    };
    let (policy, standing) = match gw.nodes.exec_policy(&node.node_id).await {
        Ok(p) => p,
        Err(source) => {
            record("refused", None, None);
            return Err(RunError::Policy {
                node: label,
                source,
            });
        }
    };
    if policy.security == Security::Deny {
        record("refused", None, None);
        return Err(RunError::Disabled(label));
    }
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    let send = Sent {
        line,
        timeout,
        policy,
        standing: &standing,
        key: &key,
    };
    let first = invoke(gw, &node, &send, None).await;
    let reason = match &first {
        Err(RunError::Node {
            message, reason, ..
        }) if message == DenyReason::ApprovalRequired.message() => reason.clone(),
        Ok(out) => {
            record("ran", None, Some(out));
            return first;
        }
        Err(RunError::Lost { .. }) => {
            record("lost", None, None);
            return first;
        }
        Err(_) => {
            record("refused", None, None);
            return first;
        }
    };
    let answer = approvals::ask(
        gw,
        &node.node_id,
        &label,
        line,
        &reason,
        approval_timeout,
        origin,
    )
    .await;
    let (decision, by) = match answer {
        Some((Decision::Deny, by)) => {
            record("denied", Some(by.clone()), None);
            return Err(RunError::Denied { node: label, by });
        }
        Some((d, by)) => (d, Some(by)),
        // Nobody answered: the policy's fallback decides (Clawdbot's askFallback).
        None if policy.ask_fallback == Security::Full => (Decision::AllowOnce, None),
        None => {
            record("timed-out", None, None);
            return Err(RunError::NotAnswered(label));
        }
    };
    let out = invoke(gw, &node, &send, Some(decision)).await;
    // "Always allow" is the owner's standing approval: kept with the gateway's settings too (the
    // NodePairing in a cluster), where the owner sees and edits it.
    if let Ok(o) = &out
        && !o.allowlisted.is_empty()
    {
        let add = crate::api::ExecEdit {
            add: o.allowlisted.clone(),
            ..Default::default()
        };
        if let Err(e) = gw.nodes.edit_exec(&node.node_id, &add).await {
            tracing::error!(node = %label, error = %e, "always-allowed patterns not recorded with the node's exec settings");
        }
    }
    match &out {
        Ok(o) => record(decision.key(), by, Some(o)),
        Err(RunError::Lost { .. }) => record("lost", by, None),
        Err(_) => record("refused", by, None),
    }
    out
}

/// What the gateway sends for one command line, first and after an approval.
struct Sent<'a> {
    line: &'a str,
    timeout: Duration,
    policy: Policy,
    standing: &'a [String],
    key: &'a str,
}

async fn invoke(
    gw: &Gateway,
    node: &NodeInfo,
    sent: &Sent<'_>,
    decision: Option<Decision>,
) -> Result<RunOutput, RunError> {
    let Sent {
        line,
        timeout,
        policy,
        standing,
        key,
    } = *sent;
    let label = node
        .display_name
        .clone()
        .unwrap_or_else(|| node.node_id[..12].to_string());
    let params = RunParams {
        command: shell_argv(&node.platform, line),
        raw_command: Some(line.to_string()),
        timeout_ms: Some(timeout.as_millis() as u64),
        run_id: Some(uuid()),
        policy: Some(policy),
        allowlist: standing.to_vec(),
        approval_decision: decision.map(|d| d.key().to_string()),
        ..Default::default()
    };
    let params = serde_json::to_value(&params).expect("params serialize");
    let result = gw
        .nodes
        .registry
        .invoke(
            &node.node_id,
            SYSTEM_RUN,
            Some(&params),
            timeout + ANSWER_GRACE,
            Some(key.to_string()),
        )
        .await
        .map_err(|e| match e {
            InvokeError::Disconnected { .. } => RunError::Lost {
                node: label.clone(),
                line: line.to_string(),
            },
            other => RunError::Invoke(other),
        })?;
    if !result.ok {
        let error = result
            .error
            .unwrap_or_else(|| ErrorShape::new("UNAVAILABLE", "node invoke failed"));
        let reason = why(&error);
        return Err(RunError::Node {
            node: label,
            message: error.message,
            reason,
        });
    }
    result
        .payload_value()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or(RunError::BadAnswer(label))
}

/// Why the node refused, for the owner's approval prompt: its `details.reason` (a clawops node
/// says which program is not on its allowlist), else its message — a Clawdbot node host sends
/// only `SYSTEM_RUN_DENIED: approval required`, with no details.
fn why(error: &ErrorShape) -> String {
    error
        .details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(|r| r.as_str())
        .filter(|r| !r.trim().is_empty())
        .unwrap_or(&error.message)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_the_same_for_the_same_ask_only() {
        let k = idempotency_key("telegram/t/42/7\nnode_exec {}\n1", "abc", "uptime");
        assert_eq!(k.len(), 32);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            k,
            idempotency_key("telegram/t/42/7\nnode_exec {}\n1", "abc", "uptime")
        );
        for (seed, node, line) in [
            ("telegram/t/42/8\nnode_exec {}\n1", "abc", "uptime"),
            ("telegram/t/42/7\nnode_exec {}\n2", "abc", "uptime"),
            ("telegram/t/42/7\nnode_exec {}\n1", "abd", "uptime"),
            ("telegram/t/42/7\nnode_exec {}\n1", "abc", "uptime -p"),
        ] {
            assert_ne!(k, idempotency_key(seed, node, line), "{seed} {node} {line}");
        }
    }

    fn node(id: &str, name: &str) -> NodeInfo {
        NodeInfo {
            node_id: id.into(),
            display_name: Some(name.into()),
            platform: "linux".into(),
            version: "1".into(),
            commands: vec![],
            remote_ip: "127.0.0.1".into(),
            connected_at_ms: 0,
        }
    }

    #[test]
    fn a_node_is_found_by_id_prefix_or_name() {
        let nodes = [node("aaaa11112222", "desk"), node("aaaa33334444", "vps")];
        assert_eq!(find(&nodes, "vps").unwrap().node_id, "aaaa33334444");
        assert_eq!(
            find(&nodes, "aaaa1").unwrap().display_name.as_deref(),
            Some("desk")
        );
        assert!(matches!(
            find(&nodes, "aaaa"),
            Err(RunError::Ambiguous { .. })
        ));
        assert!(matches!(find(&nodes, "zz"), Err(RunError::NoNode(_))));
        assert!(matches!(find(&nodes, ""), Err(RunError::NoNode(_))));
    }

    #[test]
    fn the_prompt_says_why_the_node_asks_even_without_details() {
        let approval = DenyReason::ApprovalRequired.message();
        // A clawops node names the program that missed its allowlist.
        let ours = ErrorShape::new("UNAVAILABLE", approval)
            .with_details(serde_json::json!({ "reason": "/usr/bin/id is not on the allowlist" }));
        assert_eq!(why(&ours), "/usr/bin/id is not on the allowlist");
        // Clawdbot 2026.1.24's node host sends the message alone.
        let clawdbot = ErrorShape::new("UNAVAILABLE", approval);
        assert_eq!(why(&clawdbot), "SYSTEM_RUN_DENIED: approval required");
        let blank = ErrorShape::new("UNAVAILABLE", approval)
            .with_details(serde_json::json!({ "reason": " " }));
        assert_eq!(why(&blank), approval);
    }

    #[test]
    fn the_shell_argv_follows_the_platform() {
        assert_eq!(shell_argv("linux", "ls -l"), ["/bin/sh", "-lc", "ls -l"]);
        assert_eq!(
            shell_argv("win32", "dir"),
            ["cmd.exe", "/d", "/s", "/c", "dir"]
        );
    }
}
