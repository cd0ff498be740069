//! The `BackedUp` condition and `status.backup`, from the backup CronJob as the Kubernetes
//! CronJob controller reports it and from the Job of its last scheduled run. The Job decides
//! how that run went: the controller takes a finished Job out of `active` one sync before it
//! sets `lastSuccessfulTime`, so the CronJob alone would show a success as a failure for a
//! moment. The schedule decides whether the last success is overdue (runs missed while the
//! controller was down, or never started).

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::conditions::{self, Cond};
use crate::consts::*;
use crate::crd::Agent;
use crate::crd::backup::BackupStatus;
use crate::plan::build::meta;

/// BackedUp's reason when the last scheduled backup failed; an Event tells it once.
pub const BACKUP_FAILED: &str = "BackupFailed";

/// The name the CronJob controller gives the Job of the run scheduled at `at`:
/// `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cron_job: &str, at: &Time) -> String {
    format!("{cron_job}-{}", at.0.as_second().div_euclid(60))
}

/// How the Job of the last scheduled run stands.
#[derive(Debug, PartialEq, Eq)]
enum Run {
    Running,
    Succeeded(Option<Time>),
    Failed(String),
    /// The Job is gone (deleted by hand or by the history limit).
    Gone,
}

fn run_of(job: Option<&Job>) -> Run {
    let Some(job) = job else {
        return Run::Gone;
    };
    let status = job.status.clone().unwrap_or_default();
    let done = |type_: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == "True")
            .cloned()
    };
    if done("Complete").is_some() {
        Run::Succeeded(status.completion_time)
    } else if let Some(failed) = done("Failed") {
        Run::Failed(
            failed
                .message
                .or(failed.reason)
                .unwrap_or_else(|| "it failed".into()),
        )
    } else {
        Run::Running
    }
}

fn when(t: &Time) -> String {
    t.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn chrono_of(t: &Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), 0).unwrap_or_default()
}

/// The first two scheduled times after `after`.
fn due_twice(
    schedule: &str,
    tz: &str,
    after: &Timestamp,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let pattern = schedule.parse::<croner::Cron>().ok()?;
    let tz = tz.parse::<chrono_tz::Tz>().ok()?;
    let first = crate::util::schedule::next(&pattern, tz, chrono_of(after))?;
    let second = crate::util::schedule::next(&pattern, tz, first)?;
    Some((first, second))
}

/// The second scheduled time after `after`, when it is before `now`: by then a backup after
/// `after` was due twice over.
fn overdue_since(schedule: &str, tz: &str, after: &Timestamp, now: &Timestamp) -> Option<String> {
    let (first, second) = due_twice(schedule, tz, after)?;
    (second < chrono_of(now)).then(|| {
        format!(
            "{} and {}",
            first.format("%Y-%m-%d %H:%M UTC"),
            second.format("%Y-%m-%d %H:%M UTC")
        )
    })
}

/// The condition and status of the Agent's backups, when it has `spec.backup`, from what is
/// wrong with its Secret keys, its CronJob, the Job of that CronJob's last scheduled run, and
/// the time now.
pub fn decide(
    agent: &Agent,
    problems: &[String],
    cron_job: Option<&CronJob>,
    last_job: Option<&Job>,
    now: &Timestamp,
) -> Option<(Cond, BackupStatus)> {
    let spec = agent.spec.backup.as_ref()?;
    let name = meta::backup_cron_job_name(agent);
    let observed = cron_job.and_then(|c| c.status.clone()).unwrap_or_default();
    let run = run_of(last_job);
    // The Job may know the success before the CronJob does.
    let last_ok = match (&run, observed.last_successful_time.clone()) {
        (Run::Succeeded(Some(done)), Some(known)) if known.0 < done.0 => Some(done.clone()),
        (Run::Succeeded(Some(done)), None) => Some(done.clone()),
        (_, known) => known,
    };
    let status = BackupStatus {
        cron_job: name.clone(),
        last_schedule_time: observed.last_schedule_time.clone(),
        last_successful_time: last_ok.clone(),
    };
    let tz = spec
        .time_zone
        .as_deref()
        .unwrap_or(&agent.spec.user_timezone);
    let last_good = match &last_ok {
        Some(ok) => format!("the last that succeeded finished at {}", when(ok)),
        None => "none has succeeded yet".into(),
    };
    let jobs = format!(
        "kubectl get jobs -l {LABEL_INSTANCE}={},{LABEL_COMPONENT}={COMPONENT_BACKUP}",
        agent.metadata.name.as_deref().unwrap_or_default()
    );
    let cond = |ok: bool, reason: &str, message: String| {
        Cond::new(CONDITION_BACKED_UP, ok, reason, message)
    };
    let previous = agent
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.common.conditions, CONDITION_BACKED_UP))
        .map(|c| c.status == "True");
    if !problems.is_empty() {
        return Some((
            cond(
                false,
                "SecretInvalid",
                format!(
                    "{}; backups fail until it is fixed (the gateway goes on as it is)",
                    problems.join("; ")
                ),
            ),
            status,
        ));
    }
    let Some(cron_job) = cron_job else {
        return Some((
            cond(
                false,
                "NotCreated",
                format!("CronJob {name} does not exist yet"),
            ),
            status,
        ));
    };
    let Some(started) = observed.last_schedule_time.as_ref() else {
        let since = cron_job.metadata.creation_timestamp.as_ref().map(|t| &t.0);
        let cond = if spec.suspend {
            cond(
                false,
                "Suspended",
                "spec.backup.suspend is set: no backup runs".into(),
            )
        } else if let Some(due) = since.and_then(|s| overdue_since(&spec.schedule, tz, s, now)) {
            cond(
                false,
                "BackupOverdue",
                format!(
                    "CronJob {name} has started no backup, though its schedule `{}` ({tz}) called for one at {due}; see kubectl describe cronjob {name}",
                    spec.schedule
                ),
            )
        } else {
            cond(
                false,
                "NoBackupYet",
                format!(
                    "the first backup runs at `{}` ({tz}); to take one now: kubectl create job --from=cronjob/{name} {name}-now",
                    spec.schedule
                ),
            )
        };
        return Some((cond, status));
    };
    let cond = match run {
        Run::Running => cond(
            previous.unwrap_or(false),
            "BackupRunning",
            format!(
                "the backup to {} started at {} is running; {last_good}",
                spec.destination,
                when(started)
            ),
        ),
        Run::Failed(why) => cond(
            false,
            BACKUP_FAILED,
            format!(
                "the backup to {} started at {} failed ({why}); {last_good}; see {jobs} and the logs of the failed Job's pod",
                spec.destination,
                when(started)
            ),
        ),
        Run::Gone if last_ok.as_ref().is_none_or(|ok| ok.0 < started.0) => cond(
            false,
            "BackupUnknown",
            format!(
                "the Job of the backup started at {} is gone, so how it went is unknown; {last_good}",
                when(started)
            ),
        ),
        Run::Succeeded(_) | Run::Gone => {
            let ok = last_ok.as_ref().unwrap_or(started);
            match overdue_since(&spec.schedule, tz, &ok.0, now).filter(|_| !spec.suspend) {
                Some(due) => cond(
                    false,
                    "BackupOverdue",
                    format!(
                        "the last backup finished at {}, and none has run since, though the schedule `{}` ({tz}) called for one at {due}; see kubectl describe cronjob {name}",
                        when(ok),
                        spec.schedule
                    ),
                ),
                None => cond(
                    true,
                    "BackupSucceeded",
                    format!(
                        "the last backup to {} finished at {}",
                        spec.destination,
                        when(ok)
                    ),
                ),
            }
        }
    };
    Some((cond, status))
}

/// How long until the backups become overdue with nothing else happening — no run, so no watch
/// event to reconcile on: the Agent is looked at again then. From the last success, or from
/// when the CronJob was made; none while suspended or already overdue.
pub fn recheck_in(
    agent: &Agent,
    status: &BackupStatus,
    cron_job: Option<&CronJob>,
    now: &Timestamp,
) -> Option<std::time::Duration> {
    let spec = agent.spec.backup.as_ref().filter(|b| !b.suspend)?;
    let since = status
        .last_successful_time
        .as_ref()
        .or(cron_job?.metadata.creation_timestamp.as_ref())?;
    let tz = spec
        .time_zone
        .as_deref()
        .unwrap_or(&agent.spec.user_timezone);
    let (_, second) = due_twice(&spec.schedule, tz, &since.0)?;
    // A minute after, so the run due then has had its chance.
    (second - chrono_of(now) + chrono::Duration::minutes(1))
        .to_std()
        .ok()
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
