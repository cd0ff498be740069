//! In a cluster, each Cron's run is mirrored into its status: last run, last success, a one-line
//! result and the next run in the Cron's time zone. The operator owns the conditions; these
//! fields are the gateway's, written with a merge patch that leaves the rest alone.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::occurrence;
use crate::api::RunRecord;
use crate::crd::Cron;
use crate::crd::cron::CronStatus;
use crate::plan::gateway_config::CronConfig;

/// RFC 3339 in UTC, as Kubernetes writes times.
pub fn k8s_time(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).expect("a time chrono can hold"))
}

pub struct CronStatusWriter {
    api: Api<Cron>,
}

/// The status fields of a finished run; the others are left as they are.
pub fn run_status(record: &RunRecord, delivers: bool) -> Value {
    fields(&CronStatus {
        last_run_time: Some(k8s_time(record.ts)),
        last_successful_time: record.succeeded(delivers).then(|| k8s_time(record.ts)),
        last_result: Some(record.result_line(delivers)),
        next_run_time: record.next_run.clone(),
        ..Default::default()
    })
}

/// The next run alone; none (a suspended Cron) clears an older one.
pub fn next_run_status(next: Option<String>) -> Value {
    let clear = next.is_none();
    let mut s = fields(&CronStatus {
        next_run_time: next,
        ..Default::default()
    });
    if clear {
        // Left out, the merge patch would keep the old time; `null` removes it.
        s["nextRunTime"] = Value::Null;
    }
    s
}

/// The fields a typed status sets, as the body of a merge patch that leaves the rest alone.
pub fn fields(status: &CronStatus) -> Value {
    serde_json::to_value(status).expect("a Cron status serializes")
}

/// Merge-patches `status` fields of Cron `name`, leaving the others alone. Status is a mirror: a
/// failed write is logged, never an error of the run it describes.
pub async fn patch_status(api: &Api<Cron>, name: &str, status: Value) {
    if let Err(e) = api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
    {
        tracing::warn!(cron = %name, error = %e, "Cron status not updated");
    }
}

impl CronStatusWriter {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }

    async fn patch(&self, name: &str, status: Value) {
        patch_status(&self.api, name, status).await;
    }

    pub async fn record(&self, cron: &CronConfig, record: &RunRecord, delivers: bool) {
        self.patch(&cron.name, run_status(record, delivers)).await;
    }

    /// At start: every Cron's next run, so `kubectl get crons` shows it before the first run.
    pub async fn announce(&self, crons: &[CronConfig]) {
        for c in crons {
            let next = occurrence::next_run(c, Utc::now());
            self.patch(&c.name, next_run_status(next)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &'static str, delivered: bool) -> RunRecord {
        RunRecord {
            ts: "2026-11-21T00:10:00Z".parse().unwrap(),
            cron: "morning-patrol".into(),
            status: serde_json::from_value(json!(status)).expect("a run status"),
            summary: "Good morning".into(),
            patrol: Some("1 critical, 2 warning(s) (cluster)".into()),
            delivered,
            duration_ms: 1200,
            next_run: Some("2026-11-21T20:10:00+08:00".into()),
        }
    }

    #[test]
    fn a_successful_run_sets_last_success_and_the_next_run() {
        let s = run_status(&record("ok", true), true);
        assert_eq!(s["lastRunTime"], "2026-11-21T00:10:00Z");
        assert_eq!(s["lastSuccessfulTime"], "2026-11-21T00:10:00Z");
        assert_eq!(s["lastResult"], "ok: 1 critical, 2 warning(s) (cluster)");
        assert_eq!(s["nextRunTime"], "2026-11-21T20:10:00+08:00");
    }

    #[test]
    fn the_fallback_report_counts_but_says_so_and_undelivered_runs_fail() {
        let s = run_status(&record("fallback", true), true);
        assert_eq!(s["lastSuccessfulTime"], "2026-11-21T00:10:00Z");
        assert_eq!(
            s["lastResult"],
            "model failed, raw report sent: 1 critical, 2 warning(s) (cluster)"
        );
        let s = run_status(&record("ok", false), true);
        assert!(s.get("lastSuccessfulTime").is_none());
        assert!(
            s["lastResult"]
                .as_str()
                .unwrap()
                .ends_with("(not delivered)")
        );
    }

    #[test]
    fn no_next_run_clears_the_old_one_and_a_next_run_is_written() {
        assert_eq!(next_run_status(None), json!({"nextRunTime": null}));
        let s = next_run_status(Some("2026-11-21T20:10:00+08:00".into()));
        assert_eq!(s, json!({"nextRunTime": "2026-11-21T20:10:00+08:00"}));
        let typed: CronStatus = serde_json::from_value(s).expect("a Cron status");
        assert_eq!(
            typed.next_run_time.as_deref(),
            Some("2026-11-21T20:10:00+08:00")
        );
    }
}
