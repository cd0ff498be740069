//! The handshake of protocol v3: the `connect.challenge` event, the `connect` request's params
//! and the `hello-ok` payload that answers it (reference §5.1, Clawdbot 2026.1.24's schema: no
//! extra keys at any level).

use serde::{Deserialize, Serialize};

use super::frames::PROTOCOL_VERSION;

/// Client ids Clawdbot's schema admits in `client.id`.
pub const CLIENT_IDS: &[&str] = &[
    "webchat-ui",
    "clawdbot-control-ui",
    "webchat",
    "cli",
    "gateway-client",
    "clawdbot-macos",
    "clawdbot-ios",
    "clawdbot-android",
    "node-host",
    "test",
    "fingerprint",
    "clawdbot-probe",
];
/// Modes Clawdbot's schema admits in `client.mode`.
pub const CLIENT_MODES: &[&str] = &["webchat", "cli", "ui", "backend", "node", "probe", "test"];

/// The node host's client id and mode.
pub const NODE_CLIENT_ID: &str = "node-host";
pub const NODE_MODE: &str = "node";
pub const ROLE_NODE: &str = "node";
pub const ROLE_OPERATOR: &str = "operator";

/// Limits announced in `hello-ok.policy` and enforced by the gateway.
pub const MAX_PAYLOAD: usize = 512 * 1024;
pub const MAX_BUFFERED_BYTES: usize = 1536 * 1024;
pub const TICK_INTERVAL_MS: u64 = 30_000;
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// How far `device.signedAt` may be from the gateway's clock.
pub const SIGNATURE_SKEW_MS: i64 = 600_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectParams {
    pub min_protocol: u32,
    pub max_protocol: u32,
    pub client: ClientInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<std::collections::BTreeMap<String, bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ConnectAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub version: String,
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_identifier: Option<String>,
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceBlock {
    pub id: String,
    pub public_key: String,
    pub signature: String,
    pub signed_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The params carry the token: logs get [`ConnectParams::describe`], never the params.
impl ConnectParams {
    /// A one-line description for logs: client, device id prefix, role; never the token.
    pub fn describe(&self) -> String {
        let device = self
            .device
            .as_ref()
            .map(|d| d.id.chars().take(12).collect::<String>())
            .unwrap_or_else(|| "no device".into());
        format!(
            "{} {} ({}, {}, device {device})",
            self.client.id,
            self.client.display_name.as_deref().unwrap_or("-"),
            self.client.platform,
            self.role.as_deref().unwrap_or(ROLE_OPERATOR),
        )
    }

    /// Problems with the values the schema restricts, as Clawdbot words them.
    pub fn schema_problem(&self) -> Option<String> {
        if self.min_protocol < 1 || self.max_protocol < 1 {
            return Some("minProtocol and maxProtocol must be ≥ 1".into());
        }
        if !CLIENT_IDS.contains(&self.client.id.as_str()) {
            return Some(format!(
                "client.id `{}` is not a known client",
                self.client.id
            ));
        }
        if !CLIENT_MODES.contains(&self.client.mode.as_str()) {
            return Some(format!(
                "client.mode `{}` is not a known mode",
                self.client.mode
            ));
        }
        if self.client.version.is_empty() || self.client.platform.is_empty() {
            return Some("client.version and client.platform must not be empty".into());
        }
        None
    }

    pub fn speaks_our_protocol(&self) -> bool {
        self.min_protocol <= PROTOCOL_VERSION && self.max_protocol >= PROTOCOL_VERSION
    }
}

/// `connect.challenge` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    pub nonce: String,
    pub ts: i64,
}

/// `hello-ok`, the payload of the `res` to `connect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloOk {
    /// Always `hello-ok`.
    #[serde(rename = "type")]
    pub kind: String,
    pub protocol: u32,
    pub server: ServerInfo,
    pub features: Features,
    pub snapshot: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HelloAuth>,
    pub policy: HelloPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub conn_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub methods: Vec<String>,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloAuth {
    pub device_token: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub issued_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloPolicy {
    pub max_payload: usize,
    pub max_buffered_bytes: usize,
    pub tick_interval_ms: u64,
}

impl Default for HelloPolicy {
    fn default() -> Self {
        Self {
            max_payload: MAX_PAYLOAD,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
            tick_interval_ms: TICK_INTERVAL_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `clawdbot node run` 2026.1.24 sends (the reference's captured shape).
    const CLAWDBOT_CONNECT: &str = r#"{"minProtocol":3,"maxProtocol":3,
        "client":{"id":"node-host","displayName":"desk","version":"2026.1.24-3","platform":"linux","mode":"node","instanceId":"7b0c"},
        "caps":["system","browser"],
        "commands":["system.run","system.which","system.execApprovals.get","system.execApprovals.set","browser.proxy"],
        "pathEnv":"/usr/bin:/bin","auth":{"token":"tok-SECRET"},"role":"node","scopes":[],
        "device":{"id":"ab","publicKey":"k","signature":"s","signedAt":1737800000000,"nonce":"n"}}"#;

    #[test]
    fn clawdbots_node_host_connect_reads_and_passes_the_schema() {
        let p: ConnectParams = serde_json::from_str(CLAWDBOT_CONNECT).unwrap();
        assert_eq!(p.schema_problem(), None);
        assert!(p.speaks_our_protocol());
        assert_eq!(p.device.as_ref().unwrap().nonce.as_deref(), Some("n"));
        let said = p.describe();
        assert!(
            said.contains("node-host desk") && !said.contains("SECRET"),
            "{said}"
        );
    }

    #[test]
    fn extra_keys_unknown_clients_and_other_protocols_are_refused() {
        let extra = CLAWDBOT_CONNECT.replace("\"pathEnv\"", "\"extra\":1,\"pathEnv\"");
        assert!(serde_json::from_str::<ConnectParams>(&extra).is_err());
        let mut p: ConnectParams = serde_json::from_str(CLAWDBOT_CONNECT).unwrap();
        p.client.id = "evil".into();
        assert!(p.schema_problem().unwrap().contains("client.id `evil`"));
        p.client.id = "node-host".into();
        p.min_protocol = 4;
        p.max_protocol = 5;
        assert!(!p.speaks_our_protocol());
    }
}
