//! The gateway's `/api` contract: the request and response bodies, one set of types the
//! gateway serves and the CLI reads, so a renamed field fails to compile instead of to parse.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::crd::node_pairing::{ExecAsk, ExecSecurity};

mod nodes;
pub use nodes::*;

/// How a Cron run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// The model answered.
    Ok,
    /// The model failed; the raw patrol report went out instead.
    Fallback,
    /// Nothing useful to send.
    Error,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Fallback => "fallback",
            RunStatus::Error => "error",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run, as recorded in `cron/runs/<name>.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub ts: DateTime<Utc>,
    pub cron: String,
    /// `ok`; `fallback` (the model failed, the raw patrol report went out); `error`.
    pub status: RunStatus,
    /// The first line of what was delivered, or the error.
    pub summary: String,
    /// The patrol's findings in one line, when it patrolled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patrol: Option<String>,
    pub delivered: bool,
    pub duration_ms: u64,
    /// The next scheduled run, in the Cron's time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

impl RunRecord {
    /// Whether the owner got what the run is for: an answer, or at least the patrol report.
    pub fn succeeded(&self, delivers: bool) -> bool {
        self.status != RunStatus::Error && (self.delivered || !delivers)
    }

    /// One line for the Cron's status; `delivers` says whether the Cron has a chat to deliver to.
    pub fn result_line(&self, delivers: bool) -> String {
        let what = match (self.status, &self.patrol) {
            (RunStatus::Ok, Some(p)) => format!("ok: {p}"),
            (RunStatus::Ok, None) => format!("ok: {}", self.summary),
            (RunStatus::Fallback, Some(p)) => format!("model failed, raw report sent: {p}"),
            (_, _) => format!("failed: {}", self.summary),
        };
        let delivery = if self.delivered || !delivers {
            ""
        } else {
            " (not delivered)"
        };
        let line = format!("{what}{delivery}");
        line.chars().take(240).collect()
    }
}

/// `POST /api/cron/{name}/run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronRunReply {
    pub ok: bool,
    pub run: RunRecord,
    /// Why the run failed, when it did.
    pub message: Option<String>,
}

/// `GET /api/crons`: each Cron with its schedule, next run and last runs (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronView {
    pub name: String,
    pub schedule: String,
    pub time_zone: String,
    pub suspended: bool,
    pub patrol: bool,
    /// The next run in the Cron's time zone; none while suspended.
    pub next_run: Option<String>,
    pub last_runs: Vec<RunRecord>,
}

/// `GET /api/pairing/{channel}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingList {
    pub channel: String,
    pub pending: Vec<PendingRequest>,
    pub approved_senders: usize,
    /// The approved senders' Telegram user ids.
    #[serde(default)]
    pub approved: Vec<String>,
}

/// `POST /api/pairing/{channel}/reject`: a pending code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    pub code: String,
}

/// `POST /api/pairing/{channel}/revoke`: an approved sender's Telegram user id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub sender: String,
}

/// A pairing request waiting for the owner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    pub code: String,
    /// Telegram user id.
    pub id: String,
    /// @username or name, when Telegram gave one.
    pub sender: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The gateway state `clawops import` carries over from Clawdbot, per channel: approved
/// senders and pending codes. `clawops state load` puts it into a state dir, or into a running
/// gateway through `POST /api/pairing/{channel}/import` (one [`PairingState`] each).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateBundle {
    /// [`STATE_BUNDLE_VERSION`]; a newer bundle is refused.
    pub version: u32,
    /// The clawops version that wrote it.
    pub clawops: String,
    /// Where it came from (a Clawdbot state dir).
    pub source: String,
    pub channels: std::collections::BTreeMap<String, PairingState>,
}

pub const STATE_BUNDLE_VERSION: u32 = 1;

/// One channel's pairing state, in Clawdbot's own record format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairingState {
    #[serde(default)]
    pub allowed: Vec<String>,
    #[serde(default)]
    pub pending: Vec<crate::gateway::telegram::pairing::Request>,
}

/// The answer to `POST /api/restore`: what was staged; the gateway stops and applies it at its
/// next start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStaged {
    pub files: usize,
    pub created: DateTime<Utc>,
    pub clawops: String,
}

/// The answer to `POST /api/pairing/{channel}/import`: what was new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingImported {
    pub channel: String,
    pub allowed_added: usize,
    pub pending_added: usize,
    pub allowed_total: usize,
}

/// `POST /api/pairing/{channel}/approve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub code: String,
    /// Tell the sender on Telegram that they may write now.
    #[serde(default)]
    pub notify: bool,
}

/// The answer to [`ApproveRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approved {
    pub channel: String,
    pub approved: ApprovedSender,
    /// Whether the sender was told.
    pub notified: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovedSender {
    pub id: String,
    pub sender: Option<String>,
}

/// `POST /api/chat`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// Conversation id; history is kept per chat.
    #[serde(default = "default_chat")]
    pub chat: String,
    pub text: String,
}

pub fn default_chat() -> String {
    "webchat".into()
}

/// The answer to [`ChatRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatReply {
    pub reply: String,
    /// The tool calls the turn made, each as a short line (`node_exec docker ps`), in order.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// `GET /api/chat[?chat=webchat]`: the conversation so far (what the agent remembers), oldest
/// first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatHistory {
    pub chat: String,
    pub messages: Vec<ChatLine>,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatLine {
    /// `user` or `assistant`.
    pub role: String,
    pub text: String,
}

/// `GET /health` (unauthenticated): the agent, the model, each channel, the API token, the
/// tools and what is disabled; `ok` only when nothing is disabled and every channel is
/// reachable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub ok: bool,
    pub agent: AgentBrief,
    pub version: String,
    pub uptime_seconds: u64,
    pub model: ModelHealth,
    pub channels: Vec<ChannelHealth>,
    pub auth: AuthHealth,
    pub tools: ToolsHealth,
    pub disabled: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentBrief {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelHealth {
    pub primary: String,
    pub configured: bool,
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelHealth {
    pub name: String,
    pub kind: String,
    pub configured: bool,
    /// The Bot API answered `getMe`.
    pub ok: bool,
    /// `@username` of the bot, once probed.
    #[serde(default)]
    pub bot: Option<String>,
    #[serde(default)]
    pub problem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_senders: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthHealth {
    pub configured: bool,
    /// Where the token comes from (never the token).
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolsHealth {
    pub offered: Vec<String>,
    /// Why the others are off.
    pub off: Vec<String>,
}

/// `GET /api/status`: [`Health`] with what only the owner sees — the cluster, the nodes and
/// the Crons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(flatten)]
    pub health: Health,
    pub cluster: ClusterBrief,
    pub nodes: NodesBrief,
    pub crons: Vec<CronBrief>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBrief {
    /// `spec.clusterAccess`: `none` or `read`.
    pub access: crate::crd::agent::ClusterAccess,
    /// The gateway has a Kubernetes client (in a pod, or a kubeconfig standalone).
    pub client: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodesBrief {
    pub connected: usize,
    pub paired: usize,
    pub pending: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronBrief {
    pub name: String,
    pub schedule: String,
    pub time_zone: String,
}

/// `GET /api/alerts`: the conditions the owner was told of that still hold, and the clearings
/// told lately.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsView {
    pub enabled: bool,
    /// Why alerts are off, when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_reason: Option<String>,
    pub told: Vec<ToldAlert>,
    pub cleared: Vec<ClearedAlert>,
}

/// A condition the owner was told of that still holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToldAlert {
    /// `pod <namespace>/<name>` or `node <name>`.
    pub object: String,
    pub reason: String,
    /// Empty for a condition told before the gateway restarted, until it is told again.
    pub detail: String,
    pub action: String,
    pub since: DateTime<Utc>,
}

/// A clearing that was told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearedAlert {
    pub object: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The object was deleted.
    pub gone: bool,
}

/// Every error the API answers with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// What kind of failure: `unauthorized`, `not_found`, `channel`, `model`, `invalid`, ….
    pub error: String,
    /// What to tell the user.
    pub message: String,
    /// The underlying error, where there is one worth showing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_back_as_written_with_its_status_in_lower_case() {
        let reply = CronRunReply {
            ok: false,
            run: RunRecord {
                ts: "2026-11-21T00:10:00Z".parse().unwrap(),
                cron: "morning-patrol".into(),
                status: RunStatus::Fallback,
                summary: "quota".into(),
                patrol: Some("1 critical".into()),
                delivered: true,
                duration_ms: 1200,
                next_run: None,
            },
            message: Some("Cron morning-patrol failed".into()),
        };
        let wire = serde_json::to_value(&reply).unwrap();
        assert_eq!(wire["run"]["status"], "fallback");
        assert_eq!(wire["run"]["durationMs"], 1200);
        assert!(wire["run"].get("nextRun").is_none());
        assert_eq!(serde_json::from_value::<CronRunReply>(wire).unwrap(), reply);
    }

    #[test]
    fn an_approval_with_an_unknown_field_is_refused() {
        let e = serde_json::from_value::<ApproveRequest>(
            serde_json::json!({"code": "ABCD2345", "notfy": true}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("notfy"), "{e}");
    }
}
