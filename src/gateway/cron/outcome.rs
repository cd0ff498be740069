//! What `clawops cron run --record` (a Cron's CronJob) leaves behind about its run: on a failure
//! the time, a one-line reason and the failures in a row in the Cron's status, a Warning Event on
//! the Cron and the container's termination message; on a success the count back to 0. The run
//! writes these itself, with its own ServiceAccount (`<agent>-cron`: only its Agent's Crons'
//! status and Events), because a failed run often means the gateway is unreachable and so cannot
//! be the one to record it. Recording never makes a run fail harder: problems are logged.

use std::path::Path;

use chrono::{DateTime, Utc};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use serde_json::Value;

use super::status::{fields, k8s_time};
use crate::crd::Cron;
use crate::crd::cron::CronStatus;

/// Where Kubernetes reads a container's termination message by default.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Event reason of a failed run.
pub const REASON_RUN_FAILED: &str = "RunFailed";
/// Reporting controller of the runner's Events.
const REPORTER: &str = "clawops-cron";
/// A reason longer than this is cut, so `kubectl get -o wide` and events stay readable.
const MAX_REASON: usize = 512;

/// A reason on one line, cut to [`MAX_REASON`] characters.
pub fn one_line(reason: &str) -> String {
    let line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_REASON {
        return line;
    }
    line.chars().take(MAX_REASON - 1).collect::<String>() + "…"
}

/// The status fields a run's outcome changes, given the failures in a row before it: a failure
/// counts one more; a success resets the count. `None` when nothing changes.
pub fn status_patch(
    previous_failures: u32,
    failure: Option<&str>,
    at: DateTime<Utc>,
) -> Option<Value> {
    match failure {
        Some(reason) => Some(fields(&CronStatus {
            last_failure_time: Some(k8s_time(at)),
            last_failure: Some(one_line(reason)),
            consecutive_failures: Some(previous_failures.saturating_add(1)),
            ..Default::default()
        })),
        None if previous_failures > 0 => Some(fields(&CronStatus {
            consecutive_failures: Some(0),
            ..Default::default()
        })),
        None => None,
    }
}

/// Records the outcome of a run of Cron `name` in `namespace`: its status, and on a failure a
/// Warning Event.
pub async fn record(client: Client, namespace: &str, name: &str, failure: Option<&str>) {
    let api = Api::<Cron>::namespaced(client.clone(), namespace);
    let cron = match api.get_status(name).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(cron = %name, %namespace, error = %e, "cannot read the Cron to record this run");
            return;
        }
    };
    let previous = cron
        .status
        .as_ref()
        .and_then(|s| s.consecutive_failures)
        .unwrap_or(0);
    if let Some(status) = status_patch(previous, failure, Utc::now()) {
        super::status::patch_status(&api, name, status).await;
    }
    let Some(reason) = failure else { return };
    let reporter = Reporter {
        controller: REPORTER.into(),
        // A pod's hostname is its name.
        instance: std::env::var("HOSTNAME").ok(),
    };
    let event = Event {
        type_: EventType::Warning,
        reason: REASON_RUN_FAILED.into(),
        note: Some(one_line(reason)),
        action: "Run".into(),
        secondary: None,
    };
    if let Err(e) = Recorder::new(client, reporter)
        .publish(&event, &cron.object_ref(&()))
        .await
    {
        tracing::warn!(cron = %name, error = %e, "could not record the failure as an Event");
    }
}

/// Writes the reason where `kubectl describe pod` shows it as the container's last state.
pub fn write_termination_message(path: &Path, reason: &str) {
    if let Err(e) = std::fs::write(path, one_line(reason)) {
        tracing::warn!(path = %path.display(), error = %e, "termination message not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        "2026-11-28T00:10:00Z".parse().unwrap()
    }

    #[test]
    fn a_failure_counts_one_more_and_says_why_on_one_line() {
        let s = status_patch(
            2,
            Some("cannot reach the gateway:\n  DNS cannot resolve x"),
            at(),
        )
        .unwrap();
        assert_eq!(
            s,
            json!({
                "lastFailureTime": "2026-11-28T00:10:00Z",
                "lastFailure": "cannot reach the gateway: DNS cannot resolve x",
                "consecutiveFailures": 3,
            })
        );
    }

    #[test]
    fn a_success_resets_the_count_and_writes_nothing_when_there_was_none() {
        assert_eq!(
            status_patch(4, None, at()),
            Some(json!({"consecutiveFailures": 0}))
        );
        assert_eq!(status_patch(0, None, at()), None);
    }

    #[test]
    fn long_reasons_are_cut() {
        let long = "x".repeat(2000);
        let line = one_line(&long);
        assert_eq!(line.chars().count(), MAX_REASON);
        assert!(line.ends_with('…'));
    }
}
