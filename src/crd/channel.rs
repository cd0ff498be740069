//! The `Channel` custom resource: a chat surface (Telegram) an Agent answers on.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, SecretKeyRef};

/// Pattern of a Telegram allow-list entry: `*`, a numeric user or chat id, or `@username`.
pub const ALLOW_FROM_PATTERN: &str = r"^(\*|-?[0-9]{1,20}|@[A-Za-z0-9_]{4,32})$";

/// A chat channel of an Agent.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "clawops.dev",
    version = "v1alpha1",
    kind = "Channel",
    namespaced,
    status = "ChannelStatus",
    shortname = "chan",
    category = "claw",
    doc = "A chat channel (Telegram bot) through which an Agent talks to people.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Agent", type_ = "string", json_path = ".spec.agentRef"),
    printcolumn(name = "Bot", type_ = "string", json_path = ".status.botUsername"),
    printcolumn(
        name = "Pending",
        type_ = "integer",
        json_path = ".status.pendingCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct ChannelSpec {
    /// Name of the Agent (same namespace) that answers on this channel.
    #[schemars(length(min = 1, max = 63))]
    pub agent_ref: String,
    /// A Telegram bot.
    pub telegram: TelegramSpec,
}

/// Telegram bot settings (upstream `channels.telegram`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.dmPolicy != 'open' || (has(self.allowFrom) && '*' in self.allowFrom)").message("dmPolicy open requires allowFrom to include \"*\""))]
#[serde(rename_all = "camelCase")]
pub struct TelegramSpec {
    /// Secret key holding the bot token from @BotFather.
    pub bot_token_secret_ref: SecretKeyRef,
    /// Who may talk to the bot in private chats: `pairing` (unknown senders get a code the owner
    /// approves), `allowlist` (only `allowFrom`), `open` (everyone; needs `"*"` in allowFrom) or
    /// `disabled`.
    #[serde(default)]
    pub dm_policy: DmPolicy,
    /// Which groups the bot answers in: `disabled`, `allowlist` (only `groups`) or `open`.
    #[serde(default)]
    pub group_policy: GroupPolicy,
    /// Telegram user ids or `@usernames` always allowed in private chats, plus those approved
    /// through pairing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = ALLOW_FROM_PATTERN)))]
    pub allow_from: Vec<String>,
    /// Per-group settings keyed by chat id (or `*`); with `groupPolicy: allowlist` only these
    /// groups are answered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, TelegramGroup>,
    /// Base URL of a self-hosted Bot API server instead of https://api.telegram.org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub api_url: Option<String>,
}

/// Private-chat access policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    #[default]
    Pairing,
    Allowlist,
    Open,
    Disabled,
}

/// Group access policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    Disabled,
    #[default]
    Allowlist,
    Open,
}

/// Settings of one Telegram group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelegramGroup {
    /// Answer only when the bot is mentioned.
    #[serde(default = "default_true")]
    pub require_mention: bool,
    /// Members allowed to address the bot in this group; everyone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = ALLOW_FROM_PATTERN)))]
    pub allow_from: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// Observed state of a Channel, partly mirrored from the gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct ChannelStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The bot's @username as reported by Telegram getMe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_username: Option<String>,
    /// Pairing requests waiting for approval (`clawops pairing approve telegram CODE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_pairings: Vec<PendingPairing>,
    /// Number of pending pairing requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_count: Option<u32>,
    /// Number of senders approved through pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_senders: Option<u32>,
}

/// A pending pairing request.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingPairing {
    /// The 8-character code to approve.
    pub code: String,
    /// Telegram user id of the sender.
    pub sender: String,
    /// @username or name of the sender, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// When the code expires.
    pub expires_at: Time,
}
