//! The `Cron` custom resource: a scheduled agent turn, typically a cluster patrol reported in chat.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, Deliver, TIME_ZONE_PATTERN};

/// One field of a cron expression: a comma-separated list of `*` (or `?` in the day fields), a
/// value or a range, each with an optional `/step` (a step after a single value is refused: the gateway's parser
/// rejects `5/15`, and the CronJob's would read it as `5-59/15`).
macro_rules! cron_field {
    ($any:literal, $value:literal) => {
        concat!(
            cron_item!($any, $value),
            "(,",
            cron_item!($any, $value),
            ")*"
        )
    };
}
macro_rules! cron_item {
    ($any:literal, $value:literal) => {
        concat!(
            "(",
            $any,
            "(/0*[1-9][0-9]*)?|(",
            $value,
            ")(-(",
            $value,
            ")(/0*[1-9][0-9]*)?)?)"
        )
    };
}

/// Pattern of a 5-field cron expression (minute hour day-of-month month day-of-week) with every
/// number in its field's range — what Kubernetes CronJobs accept (day-of-week 0–6, names in any
/// case) — or a macro such as `@daily`. What a pattern cannot see (a range that runs backwards,
/// 30 February) the operator reports as Ready=False on the Cron.
pub const SCHEDULE_PATTERN: &str = concat!(
    "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|",
    cron_field!(r"\*", "[0-5]?[0-9]"),
    " +",
    cron_field!(r"\*", "[01]?[0-9]|2[0-3]"),
    " +",
    cron_field!(r"[*?]", "0?[1-9]|[12][0-9]|3[01]"),
    " +",
    cron_field!(
        r"\*",
        "0?[1-9]|1[0-2]|[Jj][Aa][Nn]|[Ff][Ee][Bb]|[Mm][Aa][Rr]|[Aa][Pp][Rr]|[Mm][Aa][Yy]|[Jj][Uu][Nn]|[Jj][Uu][Ll]|[Aa][Uu][Gg]|[Ss][Ee][Pp]|[Oo][Cc][Tt]|[Nn][Oo][Vv]|[Dd][Ee][Cc]"
    ),
    " +",
    cron_field!(
        r"[*?]",
        "0?[0-6]|[Ss][Uu][Nn]|[Mm][Oo][Nn]|[Tt][Uu][Ee]|[Ww][Ee][Dd]|[Tt][Hh][Uu]|[Ff][Rr][Ii]|[Ss][Aa][Tt]"
    ),
    ")$"
);

/// A scheduled agent turn.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "clawops.dev",
    version = "v1alpha1",
    kind = "Cron",
    namespaced,
    status = "CronStatus",
    shortname = "crn",
    validation = Rule::new("size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be lower-case letters, digits and '-', at most 63 characters: it names the CronJob and labels its pods"),
    category = "claw",
    doc = "A scheduled agent turn (e.g. a cluster patrol) whose answer is delivered to a chat.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "TimeZone", type_ = "string", json_path = ".spec.timeZone"),
    printcolumn(name = "Last Run", type_ = "date", json_path = ".status.lastRunTime"),
    printcolumn(name = "Next Run", type_ = "string", json_path = ".status.nextRunTime"),
    printcolumn(
        name = "Failures",
        type_ = "integer",
        json_path = ".status.consecutiveFailures"
    ),
    printcolumn(
        name = "Last Failure",
        type_ = "string",
        json_path = ".status.lastFailure",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct CronSpec {
    /// Name of the Agent (same namespace) that runs this Cron.
    #[schemars(length(min = 1, max = 63))]
    pub agent_ref: String,
    /// When to run: a 5-field cron expression (minute hour day-of-month month day-of-week),
    /// e.g. `10 8 * * *` for 08:10 every day.
    #[schemars(regex(pattern = SCHEDULE_PATTERN))]
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. `Asia/Shanghai`; the Agent's userTimezone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: Option<String>,
    /// Stop scheduling new runs without deleting the Cron.
    #[serde(default)]
    pub suspend: bool,
    /// The instruction for the agent turn, e.g. "Patrol the cluster and report concisely".
    #[schemars(length(min = 1, max = 16384))]
    pub message: String,
    /// Collect cluster (or host) facts before the turn and hand them to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patrol: Option<PatrolSpec>,
    /// Where the answer goes; without it the run is only recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver: Option<Deliver>,
}

/// What a patrol checks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatrolSpec {
    /// Checks to run; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<PatrolCheck>,
    /// Limits that turn an observation into a finding.
    #[serde(default)]
    pub thresholds: PatrolThresholds,
}

/// One patrol check.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PatrolCheck {
    Nodes,
    Workloads,
    Storage,
    Events,
    Certificates,
    Gateway,
    Host,
}

/// Patrol thresholds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatrolThresholds {
    /// Container restarts within the window that make a finding.
    #[serde(default = "default_restarts")]
    #[schemars(range(min = 1, max = 10000))]
    pub restarts: u32,
    /// Report TLS certificates expiring within this many days.
    #[serde(default = "default_cert_days")]
    #[schemars(range(min = 1, max = 365))]
    pub cert_expiry_days: u32,
    /// How far back restarts and events count, e.g. `12h`.
    #[serde(default = "default_window")]
    #[schemars(regex(pattern = r"^[0-9]{1,4}(m|h|d)$"))]
    pub window: String,
    /// Disk usage percentage that makes a finding (host patrol).
    #[serde(default = "default_disk_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub disk_percent: u32,
}

impl Default for PatrolThresholds {
    fn default() -> Self {
        Self {
            restarts: default_restarts(),
            cert_expiry_days: default_cert_days(),
            window: default_window(),
            disk_percent: default_disk_percent(),
        }
    }
}

fn default_restarts() -> u32 {
    3
}
fn default_cert_days() -> u32 {
    14
}
fn default_window() -> String {
    "12h".into()
}
fn default_disk_percent() -> u32 {
    85
}

/// Observed state of a Cron.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct CronStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Name of the generated batch/v1 CronJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job: Option<String>,
    /// When the last run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Time>,
    /// When the last successful run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// One line about the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// Next scheduled run, in the Cron's time zone (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<String>,
    /// When the last failed run ended (recorded by the run itself, also when it could not reach
    /// the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// Why the last failed run failed, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Failed runs in a row; a successful run resets it to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
}
