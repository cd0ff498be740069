//! The `Agent` custom resource: one assistant, its model, persona and gateway workload.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, SecretKeyRef, TIME_ZONE_PATTERN};
pub use super::expose::{Expose, IngressExpose, IngressTls, TailscaleExpose, TailscaleMode};

/// Pattern of a model reference `provider/model`.
pub const MODEL_REF_PATTERN: &str = r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/-]*$";

/// An assistant: who it is, which model answers for it, and how its gateway runs and is reached.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "clawops.dev",
    version = "v1alpha1",
    kind = "Agent",
    namespaced,
    status = "AgentStatus",
    shortname = "ag",
    validation = Rule::new("!has(self.spec.alerts) || !self.spec.alerts.enabled || self.spec.clusterAccess == 'read'").message("spec.alerts.enabled needs spec.clusterAccess: read: alerts watch the cluster's pods and nodes"),
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS label (lower-case letters, digits and '-', starting with a letter, at most 63 characters): it names the gateway Service and labels"),
    category = "claw",
    doc = "An AI assistant reconciled into a gateway Deployment that answers on its Channels.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model.primary"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Backup",
        type_ = "date",
        json_path = ".status.backup.lastSuccessfulTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct AgentSpec {
    /// Who the assistant is: its name, emoji and persona.
    pub identity: Identity,
    /// The language model that answers for the assistant.
    pub model: ModelSpec,
    /// How many model calls (chats, crons and heartbeat together) may run at once. GLM plans
    /// allow little concurrency; calls beyond this wait their turn instead of failing with 429.
    #[serde(default = "default_max_concurrent")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent: u32,
    /// A periodic agent turn whose trivial answer (HEARTBEAT_OK) is not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    /// IANA time zone of the user, used for the current time in the prompt and as the default
    /// time zone of Crons, e.g. `Asia/Shanghai`.
    #[serde(default = "default_time_zone")]
    #[schemars(regex(pattern = TIME_ZONE_PATTERN))]
    pub user_timezone: String,
    /// Clock format used in the prompt: `auto`, `12` or `24`.
    #[serde(default)]
    pub time_format: TimeFormat,
    /// `read` gives the gateway a read-only view of the whole cluster (for patrols and
    /// questions); `none` limits it to its own resources.
    #[serde(default)]
    pub cluster_access: ClusterAccess,
    /// Immediate alerts between patrols: crash loops, OOM kills, nodes NotReady or under
    /// pressure, each told once per cool-down, and told again when it clears. Off by default;
    /// needs `clusterAccess: read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsSpec>,
    /// The tools the assistant may call in a chat: cluster (with `clusterAccess: read`), nodes,
    /// pod logs (opt-in), and their limits.
    #[serde(default)]
    pub tools: super::tools::ToolsSpec,
    /// The gateway workload: image, port, token, storage, resources and exposure.
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// Scheduled backups of the gateway's state to S3-compatible storage, by a CronJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<super::backup::BackupSpec>,
}

/// Immediate alerts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSpec {
    /// Send alerts.
    #[serde(default)]
    pub enabled: bool,
    /// Where alerts go: a Channel of this Agent and a chat id.
    pub deliver: super::common::Deliver,
    /// Quiet time per object and reason after an alert, e.g. `30m`; a condition that clears and
    /// comes back within it is not told twice.
    #[serde(default = "default_cool_down")]
    #[schemars(regex(pattern = r"^[0-9]{1,4}(m|h)$"))]
    pub cool_down: String,
}

fn default_cool_down() -> String {
    "30m".into()
}

fn default_max_concurrent() -> u32 {
    1
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// The assistant's identity, as in the upstream IDENTITY.md.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Display name of the assistant, e.g. `聪明小虾`.
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// An emoji shown with the assistant's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub emoji: Option<String>,
    /// The persona: free text that becomes the system prompt (tone, language, duties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = PERSONA_MAX_CHARS))]
    pub persona: Option<String>,
}

/// The longest persona: it is sent with every model call.
pub const PERSONA_MAX_CHARS: u32 = 32_768;

/// The same bound for files read without the API server.
pub fn check_persona(persona: &str) -> Result<(), String> {
    let chars = persona.chars().count();
    if chars <= PERSONA_MAX_CHARS as usize {
        Ok(())
    } else {
        Err(format!(
            "{chars} characters; at most {PERSONA_MAX_CHARS} (it goes with every model call): shorten it"
        ))
    }
}

/// Which model answers, and how to reach it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// The primary model as `provider/model`, e.g. `zai/glm-4.7`. Provider `zai` is Z.AI GLM;
    /// any other provider needs `baseUrl` of an OpenAI-compatible endpoint.
    #[schemars(regex(pattern = MODEL_REF_PATTERN))]
    pub primary: String,
    /// Models tried in order when the primary fails, same `provider/model` form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(regex(pattern = MODEL_REF_PATTERN)))]
    pub fallbacks: Vec<String>,
    /// The Secret key that holds the API key. For provider `zai` the gateway reads it as
    /// `ZAI_API_KEY` when the key is named `zai-api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Base URL of an OpenAI-compatible API (the part before `/chat/completions`). For `zai`
    /// it overrides `endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub base_url: Option<String>,
    /// Z.AI endpoint when `baseUrl` is not set: `global` (pay-as-you-go), `coding-global`
    /// (GLM Coding Plan), `cn` or `coding-cn` (open.bigmodel.cn). Keys only work on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<ZaiEndpoint>,
    /// Let GLM think before chat replies (slower, more tokens). Off by default.
    #[serde(default)]
    pub thinking: bool,
    /// How long one model request may take before it is given up (and retried, up to 3
    /// attempts), in seconds; 120 when not set. A hung connection holds one of the
    /// `maxConcurrent` slots for that long: raise it for slow local models, lower it to fail
    /// faster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MODEL_TIMEOUT_MIN, max = MODEL_TIMEOUT_MAX))]
    pub timeout_seconds: Option<u32>,
}

/// The bounds of `spec.model.timeoutSeconds`.
pub const MODEL_TIMEOUT_MIN: u32 = 5;
pub const MODEL_TIMEOUT_MAX: u32 = 3600;

/// The same bounds for files read without the API server (`gateway.json`, `render`).
pub fn check_model_timeout(seconds: u32) -> Result<(), String> {
    if (MODEL_TIMEOUT_MIN..=MODEL_TIMEOUT_MAX).contains(&seconds) {
        Ok(())
    } else {
        Err(format!(
            "{seconds} is out of range: use {MODEL_TIMEOUT_MIN} to {MODEL_TIMEOUT_MAX} seconds"
        ))
    }
}

/// Z.AI API endpoints; a key only works on the endpoint of its plan and region.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ZaiEndpoint {
    Global,
    CodingGlobal,
    Cn,
    CodingCn,
}

/// Periodic heartbeat turn.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// Interval such as `30m`, `1h` or `0m` (off).
    #[schemars(regex(pattern = r"^[0-9]+(s|m|h|d)$"))]
    pub every: String,
}

/// Clock format.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TimeFormat {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "12")]
    H12,
    #[serde(rename = "24")]
    H24,
}

/// How much of the cluster the gateway may read.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClusterAccess {
    #[default]
    None,
    Read,
}

/// The gateway workload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Container image of the gateway; defaults to the operator's own image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,
    /// Port of the gateway's HTTP API, WebSocket and Control UI.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: u16,
    /// Secret key holding the gateway token for the API and Control UI. When absent the operator
    /// generates one (32 random bytes) into the Secret `<agent>-gateway-token`, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_secret_ref: Option<SecretKeyRef>,
    /// Exact addresses of reverse proxies allowed to set X-Forwarded-For. The Tailscale
    /// sidecar's 127.0.0.1 is added automatically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[0-9a-fA-F:.]+(/[0-9]{1,3})?$")))]
    pub trusted_proxies: Vec<String>,
    /// The PersistentVolumeClaim for gateway state (approved senders, history, cron runs).
    #[serde(default)]
    pub storage: StorageSpec,
    /// CPU and memory requests and limits of the gateway container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How the gateway is reached from outside the cluster: exactly one of `ingress` or
    /// `tailscale`. Omit it to reach the gateway only inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,
    /// The NetworkPolicy that admits traffic to the gateway.
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// The Control UI (the owner's web console on the gateway's port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_ui: Option<ControlUiSpec>,
}

/// Where the Control UI is served.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlUiSpec {
    /// A path prefix such as `/clawops`, for a host shared with other apps: the gateway serves
    /// the Control UI, `/api` and the node WebSocket under it (and still at `/`), and the
    /// Ingress routes only this prefix. Nodes then connect to `wss://<host>/clawops`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$"))]
    pub base_path: Option<String>,
}

/// Why `path` cannot be a `basePath`, if it cannot (the CRD schema's pattern, for files read
/// without the API server).
pub fn check_base_path(path: &str) -> Result<(), String> {
    let segments_ok = path.strip_prefix('/').is_some_and(|rest| {
        rest.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        })
    });
    if segments_ok {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not a path prefix such as /clawops (a leading /, no trailing /, segments of letters, digits and . _ ~ - not starting with .)"
        ))
    }
}

impl GatewaySpec {
    /// The Control UI's path prefix, if one is set.
    pub fn base_path(&self) -> Option<&str> {
        self.control_ui.as_ref()?.base_path.as_deref()
    }
}

impl Default for GatewaySpec {
    fn default() -> Self {
        Self {
            image: None,
            port: default_port(),
            auth_token_secret_ref: None,
            trusted_proxies: Vec::new(),
            storage: StorageSpec::default(),
            resources: None,
            expose: None,
            network_policy: NetworkPolicySpec::default(),
            control_ui: None,
        }
    }
}

fn default_port() -> u16 {
    crate::consts::GATEWAY_PORT
}

/// State storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Requested size, e.g. `1Gi`.
    #[serde(default = "default_storage_size")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"))]
    pub size: String,
    /// StorageClass of the claim; the cluster default (k3s: `local-path`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

fn default_storage_size() -> String {
    "1Gi".into()
}

/// NetworkPolicy settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create a NetworkPolicy that admits only the exposure, the Crons and the namespaces below.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// More namespaces allowed to reach the gateway port (e.g. `monitoring` for Prometheus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from_namespaces: Vec<String>,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_from_namespaces: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// Observed state of an Agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct AgentStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Where the gateway's Control UI and API are reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Name of the Secret holding the gateway token (never the token itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// The scheduled backups, with `spec.backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<super::backup::BackupStatus>,
}
