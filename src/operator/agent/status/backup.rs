//! The `BackedUp` condition and `status.backup`, from what the Kubernetes CronJob controller
//! reports on the backup CronJob (its last schedule, last success and running Jobs).

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::conditions::Cond;
use crate::consts::*;
use crate::crd::Agent;
use crate::crd::backup::BackupStatus;
use crate::plan::build::meta;

/// BackedUp's reason when the last scheduled backup failed; an Event tells it once.
pub const BACKUP_FAILED: &str = "BackupFailed";

/// The condition and status of the Agent's backups, when it has `spec.backup`.
pub fn decide(agent: &Agent, cron_job: Option<&CronJob>) -> Option<(Cond, BackupStatus)> {
    let spec = agent.spec.backup.as_ref()?;
    let name = meta::backup_cron_job_name(agent);
    let observed = cron_job.and_then(|c| c.status.clone()).unwrap_or_default();
    let status = BackupStatus {
        cron_job: name.clone(),
        last_schedule_time: observed.last_schedule_time.clone(),
        last_successful_time: observed.last_successful_time.clone(),
    };
    let running = observed.active.as_ref().is_some_and(|a| !a.is_empty());
    let when = |t: &Time| t.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let last_ok = status.last_successful_time.as_ref();
    let jobs = format!(
        "kubectl get jobs -l {LABEL_INSTANCE}={},{LABEL_COMPONENT}={COMPONENT_BACKUP} and the logs of the failed Job's pod",
        agent.metadata.name.as_deref().unwrap_or_default()
    );
    let cond = |ok: bool, reason: &str, message: String| {
        Cond::new(CONDITION_BACKED_UP, ok, reason, message)
    };
    let cond = if cron_job.is_none() {
        cond(
            false,
            "NotCreated",
            format!("CronJob {name} does not exist yet"),
        )
    } else if let Some(started) = status
        .last_schedule_time
        .as_ref()
        .filter(|s| !running && last_ok.is_none_or(|ok| ok.0 < s.0))
    {
        let before = match last_ok {
            Some(ok) => format!("the last that did finished at {}", when(ok)),
            None => "none has yet".into(),
        };
        cond(
            false,
            BACKUP_FAILED,
            format!(
                "the backup to {} started at {} did not succeed ({before}); see {jobs}",
                spec.destination,
                when(started)
            ),
        )
    } else if let Some(ok) = last_ok {
        cond(
            true,
            "BackupSucceeded",
            format!(
                "the last backup to {} finished at {}",
                spec.destination,
                when(ok)
            ),
        )
    } else if running {
        cond(
            false,
            "FirstBackupRunning",
            format!("the first backup to {} is running", spec.destination),
        )
    } else {
        let tz = spec
            .time_zone
            .as_deref()
            .unwrap_or(&agent.spec.user_timezone);
        cond(
            false,
            "NoBackupYet",
            format!(
                "the first backup runs at `{}` ({tz}){}; to take one now: kubectl create job --from=cronjob/{name} {name}-now",
                spec.schedule,
                if spec.suspend {
                    ", but spec.backup.suspend is set"
                } else {
                    ""
                }
            ),
        )
    };
    Some((cond, status))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::CronJobStatus;
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    fn agent(backup: bool) -> Agent {
        let mut spec: crate::crd::AgentSpec = serde_json::from_value(serde_json::json!({
            "identity": {"name": "shrimp"},
            "model": {"primary": "zai/glm-4.7"},
            "userTimezone": "Asia/Shanghai",
        }))
        .unwrap();
        if backup {
            spec.backup = Some(
                serde_json::from_value(serde_json::json!({
                    "schedule": "0 3 * * *",
                    "destination": "s3://my-backups/shrimp/",
                    "credentialsSecretRef": {"name": "s3"},
                }))
                .unwrap(),
            );
        }
        Agent::new("shrimp", spec)
    }

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn cron_job(schedule: Option<&str>, success: Option<&str>, running: bool) -> CronJob {
        CronJob {
            status: Some(CronJobStatus {
                last_schedule_time: schedule.map(at),
                last_successful_time: success.map(at),
                active: running.then(|| vec![ObjectReference::default()]),
            }),
            ..Default::default()
        }
    }

    fn reason(agent: &Agent, cj: Option<&CronJob>) -> (bool, String, String) {
        let (c, _) = decide(agent, cj).expect("a backup spec");
        (c.status, c.reason, c.message)
    }

    #[test]
    fn without_a_backup_spec_there_is_neither_condition_nor_status() {
        assert_eq!(
            decide(&agent(false), Some(&cron_job(None, None, false))),
            None
        );
    }

    #[test]
    fn each_state_of_the_cron_job_is_told() {
        let a = agent(true);
        let (ok, r, m) = reason(&a, None);
        assert!(
            !ok && r == "NotCreated" && m.contains("shrimp-backup"),
            "{m}"
        );

        let (ok, r, m) = reason(&a, Some(&cron_job(None, None, false)));
        assert!(!ok && r == "NoBackupYet", "{r}");
        assert!(m.contains("`0 3 * * *` (Asia/Shanghai)"), "{m}");
        assert!(
            m.contains("kubectl create job --from=cronjob/shrimp-backup"),
            "{m}"
        );

        let (ok, r, _) = reason(
            &a,
            Some(&cron_job(Some("2026-11-29T03:00:00Z"), None, true)),
        );
        assert!(!ok && r == "FirstBackupRunning", "{r}");

        let (ok, r, m) = reason(
            &a,
            Some(&cron_job(Some("2026-11-29T03:00:00Z"), None, false)),
        );
        assert!(!ok && r == BACKUP_FAILED, "{r}");
        assert!(
            m.contains("started at 2026-11-29 03:00:00 UTC") && m.contains("none has yet"),
            "{m}"
        );
        assert!(m.contains("component=backup"), "{m}");

        let done = cron_job(
            Some("2026-11-29T03:00:00Z"),
            Some("2026-11-29T03:00:04Z"),
            false,
        );
        let (ok, r, m) = reason(&a, Some(&done));
        assert!(ok && r == "BackupSucceeded", "{r}");
        assert!(
            m.contains("s3://my-backups/shrimp/ finished at 2026-11-29 03:00:04 UTC"),
            "{m}"
        );

        // The next night's run is going: the last success still stands.
        let next = cron_job(
            Some("2026-11-30T03:00:00Z"),
            Some("2026-11-29T03:00:04Z"),
            true,
        );
        assert!(reason(&a, Some(&next)).0);

        // It failed: the last success is named.
        let failed = cron_job(
            Some("2026-11-30T03:00:00Z"),
            Some("2026-11-29T03:00:04Z"),
            false,
        );
        let (ok, r, m) = reason(&a, Some(&failed));
        assert!(!ok && r == BACKUP_FAILED, "{r}");
        assert!(
            m.contains("the last that did finished at 2026-11-29 03:00:04 UTC"),
            "{m}"
        );

        let (_, status) = decide(&a, Some(&failed)).unwrap();
        assert_eq!(status.cron_job, "shrimp-backup");
        assert_eq!(
            status.last_successful_time,
            Some(at("2026-11-29T03:00:04Z"))
        );
    }
}
