//! Paired devices (`devices/paired.json`) with the node role to NodePairings, approved, with the
//! exec policy and allowlist of `exec-approvals.json` (its `defaults`, then `agents.main`, with
//! `"*"` merged in, as Clawdbot merges them).

use serde_json::{Map, Value, json};

use super::report::Report;
use crate::gateway::nodes::exec::MAX_PATTERNS;

/// The exec settings: `tools.exec` of the config, then the approvals file on top.
fn exec_policy(
    tools_exec: &Map<String, Value>,
    approvals: Option<&Value>,
    report: &mut Report,
    file: &str,
) -> Value {
    let mut policy = json!({});
    for k in ["security", "ask"] {
        if let Some(v) = tools_exec.get(k) {
            policy[k] = v.clone();
        }
    }
    let mut patterns: Vec<String> = Vec::new();
    if let Some(a) = approvals {
        for (agent, _) in a["agents"].as_object().into_iter().flatten() {
            if agent != "main" && agent != "*" {
                report.not_carried(
                    format!("{file}: agents.{agent}"),
                    "only the main agent's (and \"*\") settings are carried",
                );
            }
        }
        for layer in [&a["defaults"], &a["agents"]["*"], &a["agents"]["main"]] {
            if layer["autoAllowSkills"].as_bool() == Some(true) {
                report.not_needed(
                    format!("{file}: autoAllowSkills"),
                    "clawops has no skills; allow their programs by path instead",
                );
            }
        }
        for layer in [&a["defaults"], &a["agents"]["*"], &a["agents"]["main"]] {
            for k in ["security", "ask", "askFallback"] {
                if let Some(v) = layer.get(k) {
                    policy[k] = v.clone();
                }
            }
            for e in layer["allowlist"].as_array().into_iter().flatten() {
                let Some(p) = e["pattern"].as_str() else {
                    continue;
                };
                if !p.contains('/') {
                    report.not_needed(
                        format!("{file}: allowlist {p}"),
                        "a bare name matches nothing (Clawdbot ignores it too)",
                    );
                } else if !patterns.iter().any(|x| x == p) {
                    patterns.push(p.to_string());
                }
            }
        }
    }
    if patterns.len() > MAX_PATTERNS {
        report.not_carried(
            format!("{file}: allowlist"),
            format!(
                "{} patterns; a NodePairing holds at most {MAX_PATTERNS}: the first {MAX_PATTERNS} were kept",
                patterns.len()
            ),
        );
        patterns.truncate(MAX_PATTERNS);
    }
    if !patterns.is_empty() {
        policy["allowlist"] = json!(patterns);
    }
    policy
}

/// The NodePairings for the paired node devices.
pub fn map(
    devices: &Value,
    file: &str,
    approvals: Option<(&str, &Value)>,
    tools_exec: &Map<String, Value>,
    agent: &str,
    report: &mut Report,
) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(paired) = devices["pairedByDeviceId"].as_object() else {
        return out;
    };
    // One approvals file for the host: the same settings for every node, read (and reported) once.
    let mut policy = None;
    for (id, d) in paired {
        let roles: Vec<&str> = d["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .chain(d["role"].as_str())
            .collect();
        let name = d["displayName"].as_str().unwrap_or(id);
        if !roles.contains(&"node") {
            report.not_needed(
                format!("{file}: device {name}"),
                "an operator device (a CLI or app), not a node: clawops clients use the gateway token",
            );
            continue;
        }
        let Some(key) = d["publicKey"].as_str() else {
            report.not_carried(
                format!("{file}: device {name}"),
                "no public key: pair the node again",
            );
            continue;
        };
        let policy = policy
            .get_or_insert_with(|| {
                exec_policy(
                    tools_exec,
                    approvals.map(|(_, v)| v),
                    report,
                    approvals.map_or("exec-approvals.json", |(f, _)| f),
                )
            })
            .clone();
        let short: String = id.chars().take(12).collect();
        let mut spec = json!({
            "agentRef": agent,
            "nodeId": id,
            "publicKey": key,
            "approved": true,
            "exec": policy,
        });
        if let Some(n) = d["displayName"].as_str() {
            spec["displayName"] = json!(n);
        }
        out.push(super::resource(
            "NodePairing",
            &format!("{agent}-{short}"),
            spec,
        ));
    }
    if !out.is_empty() {
        report.not_needed(
            format!("{file}: tokens"),
            "the nodes' Clawdbot device tokens are not carried: a node reconnects with the gateway token and is known by its key",
        );
    }
    out
}
