//! The `NodePairing` custom resource: a remote machine paired with an Agent's gateway.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::CommonStatus;

/// A node (desktop or server running `clawops node run`) and what it may execute.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "clawops.dev",
    version = "v1alpha1",
    kind = "NodePairing",
    namespaced,
    status = "NodePairingStatus",
    shortname = "np",
    category = "claw",
    doc = "A remote node paired with an Agent's gateway, and the commands it may run.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Agent", type_ = "string", json_path = ".spec.agentRef"),
    printcolumn(name = "Node", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct NodePairingSpec {
    /// Name of the Agent (same namespace) whose gateway the node connects to.
    #[schemars(length(min = 1, max = 63))]
    pub agent_ref: String,
    /// Lower-case hex SHA-256 of the node's raw Ed25519 public key.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub node_id: String,
    /// The node's Ed25519 public key, raw 32 bytes as unpadded base64url.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{43}$"))]
    pub public_key: String,
    /// A human name for the node, e.g. `alice-desktop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub display_name: Option<String>,
    /// Whether the owner approved the node; unapproved nodes are refused with "pairing required".
    #[serde(default)]
    pub approved: bool,
    /// What the node may execute.
    #[serde(default)]
    pub exec: ExecPolicy,
}

/// Exec policy of a node (upstream `tools.exec`). The node applies the stricter of this and
/// its own policy file: this can tighten what the machine's owner allowed, never loosen it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecPolicy {
    /// `deny` runs nothing, `allowlist` runs what matches `allowlist`, `full` runs anything.
    #[serde(default)]
    pub security: ExecSecurity,
    /// When to ask the owner: `off`, `on-miss` (command not in the allowlist) or `always`.
    #[serde(default)]
    pub ask: ExecAsk,
    /// What a command needing approval gets when nobody answers in time: `deny`, or `full` to
    /// run it anyway. `allowlist` denies too, as what reaches the question already missed the
    /// allowlist.
    #[serde(default = "deny")]
    pub ask_fallback: ExecSecurity,
    /// Glob patterns of resolved binary paths (e.g. `/usr/bin/uptime`, `~/bin/*`) the owner
    /// approves in advance: a clawops node runs a command they match instead of asking, when its
    /// policy would ask (`ask: on-miss`). "Always allow" adds to it. A Clawdbot node host keeps
    /// its own allowlist in `~/.clawdbot/exec-approvals.json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub allowlist: Vec<String>,
}

fn deny() -> ExecSecurity {
    ExecSecurity::Deny
}

impl Default for ExecPolicy {
    fn default() -> Self {
        Self {
            security: ExecSecurity::default(),
            ask: ExecAsk::default(),
            ask_fallback: deny(),
            allowlist: Vec::new(),
        }
    }
}

/// Exec security level.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecSecurity {
    Deny,
    #[default]
    Allowlist,
    Full,
}

/// When the owner is asked to approve a command.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecAsk {
    Off,
    #[default]
    OnMiss,
    Always,
}

/// Observed state of a NodePairing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct NodePairingStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `Pending` (waiting for approval), `Approved`, `Connected`, `Disconnected` or `Revoked`
    /// (approved once, no longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NodePhase>,
    /// When the node was last connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// The node's platform, e.g. `linux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The version of the node host software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The address the node connects from (after `trustedProxies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// Commands the node offered at connect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
}

/// Phase of a node pairing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum NodePhase {
    Pending,
    Approved,
    Connected,
    Disconnected,
    Revoked,
}

/// The kubectl command that approves the NodePairing `name` (in `namespace`, when given).
pub fn approve_command(namespace: Option<&str>, name: &str) -> String {
    let ns = namespace.map(|n| format!(" -n {n}")).unwrap_or_default();
    format!(
        r#"kubectl{ns} patch nodepairing {name} --type merge -p '{{"spec":{{"approved":true}}}}'"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approve_command_is_one_a_shell_runs_as_is() {
        assert_eq!(
            approve_command(Some("home"), "shrimp-0123456789ab"),
            r#"kubectl -n home patch nodepairing shrimp-0123456789ab --type merge -p '{"spec":{"approved":true}}'"#
        );
        assert_eq!(
            approve_command(None, "n"),
            r#"kubectl patch nodepairing n --type merge -p '{"spec":{"approved":true}}'"#
        );
    }
}
