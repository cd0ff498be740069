//! `gateway.json`: the one file the gateway reads, rendered by the operator (or from CR YAML
//! standalone). It holds no secret values, only the names of the environment variables that do.

mod render;

pub use render::{ConfigInputs, render};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crd::agent::{ClusterAccess, TimeFormat, ZaiEndpoint};
use crate::crd::channel::{DmPolicy, GroupPolicy, TelegramGroup};
use crate::crd::cron::PatrolSpec;
use crate::crd::tools::ToolsSpec;

pub const CONFIG_VERSION: u32 = 1;

/// The whole gateway configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    pub version: u32,
    pub agent: AgentConfig,
    pub gateway: ServerConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub crons: Vec<CronConfig>,
    /// Where the gateway mirrors status when it runs in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesConfig>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    pub model: ModelConfig,
    pub max_concurrent: u32,
    pub heartbeat: HeartbeatConfig,
    pub user_timezone: String,
    pub time_format: TimeFormat,
    pub cluster_access: ClusterAccess,
    /// Immediate alerts, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsConfig>,
    /// The tools the assistant may call, and their limits.
    #[serde(default)]
    pub tools: ToolsSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertsConfig {
    pub deliver: DeliverConfig,
    /// `30m`, `1h`.
    pub cool_down: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelConfig {
    pub primary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// Environment variable holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<ZaiEndpoint>,
    #[serde(default)]
    pub thinking: bool,
    /// One model request's time limit in seconds (120 when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// `30m`, `1h`, `0m` (off).
    pub every: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerConfig {
    pub port: u16,
    pub bind: String,
    pub auth: AuthConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// The external URL, when the gateway is exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// The Control UI's path prefix (`gateway.controlUi.basePath`, as in Clawdbot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_ui: Option<crate::crd::agent::ControlUiSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfig {
    /// Environment variable holding the gateway token.
    pub token_env: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub telegram: TelegramConfig,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramConfig {
    pub bot_token_env: String,
    pub dm_policy: DmPolicy,
    pub group_policy: GroupPolicy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, TelegramGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronConfig {
    pub name: String,
    pub schedule: String,
    pub time_zone: String,
    #[serde(default)]
    pub suspend: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patrol: Option<PatrolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver: Option<DeliverConfig>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliverConfig {
    /// Name of the channel in `channels`.
    pub channel: String,
    pub to: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesConfig {
    pub namespace: String,
    pub agent: String,
}

impl GatewayConfig {
    /// The file content: pretty JSON, stable field order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("gateway config always serializes") + "\n"
    }
}
