//! The backup condition from typed CronJob and Job fixtures, as the CronJob controller leaves
//! them at each step of a run.

use k8s_openapi::api::batch::v1::{CronJobStatus, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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
        metadata: ObjectMeta {
            creation_timestamp: Some(at("2026-11-29T10:00:00Z")),
            ..Default::default()
        },
        status: Some(CronJobStatus {
            last_schedule_time: schedule.map(at),
            last_successful_time: success.map(at),
            active: running.then(|| vec![ObjectReference::default()]),
        }),
        ..Default::default()
    }
}

fn job(condition: Option<(&str, &str)>, completion: Option<&str>) -> Job {
    Job {
        status: Some(JobStatus {
            completion_time: completion.map(at),
            conditions: condition.map(|(type_, message)| {
                vec![JobCondition {
                    type_: type_.into(),
                    status: "True".into(),
                    message: Some(message.into()),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// 03:00 Asia/Shanghai is 19:00 UTC the day before.
const NOW: &str = "2026-11-29T20:00:00Z";

fn decided(a: &Agent, cj: Option<&CronJob>, j: Option<&Job>) -> (bool, String, String) {
    let (c, _) = decide(a, &[], cj, j, &NOW.parse().unwrap()).expect("a backup spec");
    (c.status, c.reason, c.message)
}

#[test]
fn the_job_name_is_the_controllers() {
    // kube-controller-manager: fmt.Sprintf("%s-%d", name, scheduledTime.Unix()/60)
    assert_eq!(
        job_name("shrimp-backup", &at("2026-11-29T19:00:00Z")),
        "shrimp-backup-29932980"
    );
}

#[test]
fn without_a_backup_spec_there_is_neither_condition_nor_status() {
    let now = NOW.parse().unwrap();
    assert_eq!(
        decide(
            &agent(false),
            &[],
            Some(&cron_job(None, None, false)),
            None,
            &now
        ),
        None
    );
}

#[test]
fn each_step_of_a_run_is_told_as_it_is() {
    let a = agent(true);
    let (ok, r, m) = decided(&a, None, None);
    assert!(
        !ok && r == "NotCreated" && m.contains("shrimp-backup"),
        "{m}"
    );

    let (ok, r, m) = decided(&a, Some(&cron_job(None, None, false)), None);
    assert!(!ok && r == "NoBackupYet", "{r}: {m}");
    assert!(m.contains("`0 3 * * *` (Asia/Shanghai)"), "{m}");
    assert!(
        m.contains("kubectl create job --from=cronjob/shrimp-backup"),
        "{m}"
    );

    let started = "2026-11-29T19:00:00Z";
    let running = cron_job(Some(started), None, true);
    let (ok, r, _) = decided(&a, Some(&running), Some(&job(None, None)));
    assert!(!ok && r == "BackupRunning", "{r}");

    // The controller took the finished Job out of `active` but has not set
    // lastSuccessfulTime yet: the Job says it succeeded.
    let between = cron_job(Some(started), None, false);
    let done = job(Some(("Complete", "")), Some("2026-11-29T19:00:04Z"));
    let (ok, r, m) = decided(&a, Some(&between), Some(&done));
    assert!(ok && r == "BackupSucceeded", "{r}: {m}");
    assert!(m.contains("finished at 2026-11-29 19:00:04 UTC"), "{m}");
    let (_, status) = decide(&a, &[], Some(&between), Some(&done), &NOW.parse().unwrap()).unwrap();
    assert_eq!(
        status.last_successful_time,
        Some(at("2026-11-29T19:00:04Z"))
    );

    let failed = job(
        Some(("Failed", "Job has reached the specified backoff limit")),
        None,
    );
    let (ok, r, m) = decided(&a, Some(&between), Some(&failed));
    assert!(!ok && r == BACKUP_FAILED, "{r}");
    assert!(
        m.contains("started at 2026-11-29 19:00:00 UTC failed (Job has reached the specified backoff limit)")
            && m.contains("none has succeeded yet")
            && m.contains("component=backup"),
        "{m}"
    );

    // A failed night after a good one names the good one.
    let after = cron_job(
        Some("2026-11-29T19:00:00Z"),
        Some("2026-11-28T19:00:04Z"),
        false,
    );
    let (_, _, m) = decided(&a, Some(&after), Some(&failed));
    assert!(
        m.contains("the last that succeeded finished at 2026-11-28 19:00:04 UTC"),
        "{m}"
    );

    // Its Job is gone: unknown, unless the CronJob saw it succeed.
    let (ok, r, _) = decided(&a, Some(&after), None);
    assert!(!ok && r == "BackupUnknown", "{r}");
    let seen = cron_job(Some(started), Some("2026-11-29T19:00:04Z"), false);
    assert_eq!(decided(&a, Some(&seen), None).1, "BackupSucceeded");
}

#[test]
fn a_backup_running_keeps_what_the_last_one_told() {
    let mut a = agent(true);
    let running = cron_job(
        Some("2026-11-29T19:00:00Z"),
        Some("2026-11-28T19:00:04Z"),
        true,
    );
    for previous in ["True", "False"] {
        a.status = Some(crate::crd::AgentStatus {
            common: crate::crd::CommonStatus {
                conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                    type_: CONDITION_BACKED_UP.into(),
                    status: previous.into(),
                    reason: "X".into(),
                    message: String::new(),
                    last_transition_time: at("2026-11-28T19:00:04Z"),
                    observed_generation: None,
                }],
                ..Default::default()
            },
            ..Default::default()
        });
        let (ok, r, m) = decided(&a, Some(&running), Some(&job(None, None)));
        assert_eq!(
            (ok, r.as_str()),
            (previous == "True", "BackupRunning"),
            "{m}"
        );
    }
}

#[test]
fn missed_runs_make_the_last_success_overdue() {
    let a = agent(true);
    // The last run, two days before NOW, succeeded; two nights were due since.
    let old = cron_job(
        Some("2026-11-27T19:00:00Z"),
        Some("2026-11-27T19:00:04Z"),
        false,
    );
    let done = job(Some(("Complete", "")), Some("2026-11-27T19:00:04Z"));
    let (ok, r, m) = decided(&a, Some(&old), Some(&done));
    assert!(!ok && r == "BackupOverdue", "{r}: {m}");
    assert!(
        m.contains("2026-11-28 19:00 UTC and 2026-11-29 19:00 UTC"),
        "{m}"
    );
    // One night due is not overdue yet (it may be running late).
    let recent = cron_job(
        Some("2026-11-28T19:00:00Z"),
        Some("2026-11-28T19:00:04Z"),
        false,
    );
    assert_eq!(decided(&a, Some(&recent), Some(&done)).1, "BackupSucceeded");
    // A CronJob that never started one in two days.
    let (ok, r, _) = decided(&a, Some(&cron_job(None, None, false)), None);
    assert!(
        !ok && r == "NoBackupYet",
        "made on the 29th 10:00: one night due so far"
    );
    let mut never = cron_job(None, None, false);
    never.metadata.creation_timestamp = Some(at("2026-11-27T10:00:00Z"));
    assert_eq!(decided(&a, Some(&never), None).1, "BackupOverdue");
    // Suspended is said as such.
    let mut suspended = agent(true);
    suspended.spec.backup.as_mut().unwrap().suspend = true;
    assert_eq!(decided(&suspended, Some(&never), None).1, "Suspended");
}

#[test]
fn the_agent_is_looked_at_again_when_its_backups_would_become_overdue() {
    let a = agent(true);
    let now: Timestamp = NOW.parse().unwrap();
    let status = |ok: Option<&str>| BackupStatus {
        cron_job: "shrimp-backup".into(),
        last_schedule_time: None,
        last_successful_time: ok.map(at),
    };
    let cj = cron_job(None, None, false);
    // Last success 29th 19:00:04; due 30th 19:00 and 1st 19:00: overdue from then (+1 min).
    assert_eq!(
        recheck_in(&a, &status(Some("2026-11-29T19:00:04Z")), Some(&cj), &now),
        Some(std::time::Duration::from_secs((47 * 60 + 1) * 60))
    );
    // Never a success: from the CronJob's creation (29th 10:00): due 29th and 30th 19:00.
    assert_eq!(
        recheck_in(&a, &status(None), Some(&cj), &now),
        Some(std::time::Duration::from_secs((23 * 60 + 1) * 60))
    );
    // Already overdue, or suspended: nothing to wait for.
    assert_eq!(
        recheck_in(&a, &status(Some("2026-11-27T19:00:04Z")), Some(&cj), &now),
        None
    );
    let mut suspended = agent(true);
    suspended.spec.backup.as_mut().unwrap().suspend = true;
    assert_eq!(recheck_in(&suspended, &status(None), Some(&cj), &now), None);
}
