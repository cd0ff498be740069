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

/// Exec policy of a node (upstream `tools.exec`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecPolicy {
    /// `deny` runs nothing, `allowlist` runs what matches `allowlist`, `full` runs anything.
    #[serde(default)]
    pub security: ExecSecurity,
    /// When to ask the owner: `off`, `on-miss` (command not in the allowlist) or `always`.
    #[serde(default)]
    pub ask: ExecAsk,
    /// Glob patterns of resolved binary paths allowed to run, e.g. `/usr/bin/uptime`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<String>,
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
    /// `Pending` (waiting for approval), `Approved`, `Connected` or `Disconnected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NodePhase>,
    /// When the node was last connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// The node's platform, e.g. `linux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
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
}
