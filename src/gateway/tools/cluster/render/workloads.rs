//! Workloads as text: Deployments, StatefulSets and DaemonSets (replicas wanted, ready,
//! available), Jobs (status, completions, duration) and CronJobs (schedule, last run). The pod
//! template shows only its images.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{Render, age_of, ago, condition, created, heading, name_of, pairs, span};
use crate::patrol::cluster::facts::utc;

/// `images: app=nginx:1.27, envoy=envoy:v1.31`.
fn images(t: Option<&PodTemplateSpec>) -> String {
    let spec = t.and_then(|t| t.spec.as_ref());
    let all: Vec<String> = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("-")))
        .collect();
    format!("\nimages: {}", all.join(", "))
}

fn selector(s: Option<&LabelSelector>) -> String {
    let Some(s) = s else { return String::new() };
    let mut terms: Vec<String> = s.match_labels.iter().map(pairs).collect();
    terms.extend(s.match_expressions.iter().flatten().map(|e| {
        format!(
            "{} {} ({})",
            e.key,
            e.operator,
            e.values.as_deref().unwrap_or_default().join(",")
        )
    }));
    format!("\nselector: {}", terms.join(","))
}

/// Conditions that are not True (or, for `bad_when_true`, that are True), one line.
fn conditions<'a>(
    all: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>, Option<&'a str>)>,
    bad_when_true: &[&str],
) -> String {
    let bad: Vec<String> = all
        .filter(|(t, s, ..)| (*s == "True") == bad_when_true.contains(t))
        .map(|(t, s, r, m)| condition(t, s, r, m))
        .collect();
    if bad.is_empty() {
        String::new()
    } else {
        format!("\nconditions: {}", bad.join("; "))
    }
}

impl Render for Deployment {
    const HEADER: &'static str = "NAMESPACE/NAME  READY  UP-TO-DATE  AVAILABLE  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let st = self.status.clone().unwrap_or_default();
        format!(
            "{}  {}/{}  {}  {}  {}",
            name_of(&self.metadata),
            st.ready_replicas.unwrap_or(0),
            desired(self.spec.as_ref().and_then(|s| s.replicas)),
            st.updated_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("deployment", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\nreplicas: {} desired, {} updated, {} ready, {} available, {} unavailable",
            desired(spec.replicas),
            st.updated_replicas.unwrap_or(0),
            st.ready_replicas.unwrap_or(0),
            st.available_replicas.unwrap_or(0),
            st.unavailable_replicas.unwrap_or(0)
        );
        let strategy = spec.strategy.and_then(|s| s.type_);
        let _ = write!(
            out,
            "\nstrategy: {}",
            strategy.as_deref().unwrap_or("RollingUpdate")
        );
        if spec.paused == Some(true) {
            out.push_str("  (paused)");
        }
        out.push_str(&selector(Some(&spec.selector)));
        out.push_str(&images(Some(&spec.template)));
        let conds = st.conditions.iter().flatten().map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_deref(),
                c.message.as_deref(),
            )
        });
        out.push_str(&conditions(conds, &["ReplicaFailure"]));
        out
    }
}

/// Replicas wanted: 1 when the spec leaves it out, as the API server defaults it.
fn desired(replicas: Option<i32>) -> i32 {
    replicas.unwrap_or(1)
}

impl Render for StatefulSet {
    const HEADER: &'static str = "NAMESPACE/NAME  READY  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let st = self.status.clone().unwrap_or_default();
        format!(
            "{}  {}/{}  {}",
            name_of(&self.metadata),
            st.ready_replicas.unwrap_or(0),
            desired(self.spec.as_ref().and_then(|s| s.replicas)),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("statefulset", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\nreplicas: {} desired, {} current, {} ready, {} updated",
            desired(spec.replicas),
            st.current_replicas.unwrap_or(0),
            st.ready_replicas.unwrap_or(0),
            st.updated_replicas.unwrap_or(0)
        );
        if let (Some(cur), Some(upd)) = (&st.current_revision, &st.update_revision)
            && cur != upd
        {
            let _ = write!(out, "\nrollout: from revision {cur} to {upd}");
        }
        if let Some(svc) = &spec.service_name {
            let _ = write!(out, "\nservice: {svc}");
        }
        out.push_str(&selector(Some(&spec.selector)));
        out.push_str(&images(Some(&spec.template)));
        let claims: Vec<String> = spec
            .volume_claim_templates
            .iter()
            .flatten()
            .map(|c| {
                let size = c
                    .spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map(|q| q.0.as_str())
                    .unwrap_or("-");
                format!("{} {size}", c.metadata.name.as_deref().unwrap_or("-"))
            })
            .collect();
        if !claims.is_empty() {
            let _ = write!(out, "\nvolumeClaimTemplates: {}", claims.join(", "));
        }
        let conds = st.conditions.iter().flatten().map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_deref(),
                c.message.as_deref(),
            )
        });
        out.push_str(&conditions(conds, &[]));
        out
    }
}

impl Render for DaemonSet {
    const HEADER: &'static str =
        "NAMESPACE/NAME  DESIRED  CURRENT  READY  UP-TO-DATE  AVAILABLE  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let st = self.status.clone().unwrap_or_default();
        format!(
            "{}  {}  {}  {}  {}  {}  {}",
            name_of(&self.metadata),
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready,
            st.updated_number_scheduled.unwrap_or(0),
            st.number_available.unwrap_or(0),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("daemonset", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\nnodes: {} desired, {} scheduled, {} ready, {} updated, {} available, {} misscheduled",
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready,
            st.updated_number_scheduled.unwrap_or(0),
            st.number_available.unwrap_or(0),
            st.number_misscheduled
        );
        let node_selector = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.node_selector.as_ref());
        if let Some(ns) = node_selector.filter(|n| !n.is_empty()) {
            let _ = write!(out, "\nnodeSelector: {}", pairs(ns));
        }
        out.push_str(&selector(Some(&spec.selector)));
        out.push_str(&images(Some(&spec.template)));
        let conds = st.conditions.iter().flatten().map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_deref(),
                c.message.as_deref(),
            )
        });
        out.push_str(&conditions(conds, &[]));
        out
    }
}

/// kubectl's Job STATUS: the condition that ended it, Suspended, or Running.
fn job_status(j: &Job) -> &'static str {
    let st = j.status.as_ref();
    let is = |t: &str| {
        st.iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == t && c.status == "True")
    };
    if is("Complete") {
        "Complete"
    } else if is("Failed") {
        "Failed"
    } else if is("FailureTarget") {
        "FailureTarget"
    } else if is("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

/// How long it ran: to its completion, or until now while it runs.
fn job_duration(j: &Job, now: DateTime<Utc>) -> String {
    let st = j.status.clone().unwrap_or_default();
    let Some(start) = st.start_time.as_ref().map(|t| utc(&t.0)) else {
        return "-".into();
    };
    let end = st
        .completion_time
        .as_ref()
        .map(|t| utc(&t.0))
        .unwrap_or(now);
    span((end - start).num_seconds())
}

impl Render for Job {
    const HEADER: &'static str = "NAMESPACE/NAME  STATUS  COMPLETIONS  DURATION  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let succeeded = self.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
        let completions = self.spec.as_ref().and_then(|s| s.completions).unwrap_or(1);
        format!(
            "{}  {}  {succeeded}/{completions}  {}  {}",
            name_of(&self.metadata),
            job_status(self),
            job_duration(self, now),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("job", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\nstatus: {}  pods: {} active, {} succeeded, {} failed",
            job_status(self),
            st.active.unwrap_or(0),
            st.succeeded.unwrap_or(0),
            st.failed.unwrap_or(0)
        );
        let _ = write!(
            out,
            "\ncompletions: {}  parallelism: {}  backoffLimit: {}",
            spec.completions.unwrap_or(1),
            spec.parallelism.unwrap_or(1),
            spec.backoff_limit.unwrap_or(6)
        );
        let _ = write!(
            out,
            "\nstarted: {}  completed: {}  duration: {}",
            ago(now, st.start_time.as_ref()),
            ago(now, st.completion_time.as_ref()),
            job_duration(self, now)
        );
        out.push_str(&images(Some(&spec.template)));
        let conds = st.conditions.iter().flatten().map(|c| {
            (
                c.type_.as_str(),
                c.status.as_str(),
                c.reason.as_deref(),
                c.message.as_deref(),
            )
        });
        // A Job's conditions are all news when True: Complete, Failed, Suspended.
        out.push_str(&conditions(
            conds,
            &[
                "Failed",
                "FailureTarget",
                "Suspended",
                "Complete",
                "SuccessCriteriaMet",
            ],
        ));
        out
    }
}

impl Render for CronJob {
    const HEADER: &'static str =
        "NAMESPACE/NAME  SCHEDULE  TIMEZONE  SUSPEND  ACTIVE  LAST-SCHEDULE  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        format!(
            "{}  {}  {}  {}  {}  {}  {}",
            name_of(&self.metadata),
            spec.schedule,
            spec.time_zone.as_deref().unwrap_or("-"),
            spec.suspend.unwrap_or(false),
            st.active.as_ref().map(Vec::len).unwrap_or(0),
            age_of(now, st.last_schedule_time.as_ref()),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("cronjob", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let st = self.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\nschedule: {}  timeZone: {}  suspend: {}  concurrencyPolicy: {}",
            spec.schedule,
            spec.time_zone.as_deref().unwrap_or("-"),
            spec.suspend.unwrap_or(false),
            spec.concurrency_policy.as_deref().unwrap_or("Allow")
        );
        let _ = write!(
            out,
            "\nlast schedule: {}  last success: {}",
            ago(now, st.last_schedule_time.as_ref()),
            ago(now, st.last_successful_time.as_ref())
        );
        let active: Vec<&str> = st
            .active
            .iter()
            .flatten()
            .filter_map(|r| r.name.as_deref())
            .collect();
        if !active.is_empty() {
            let _ = write!(out, "\nactive jobs: {}", active.join(", "));
        }
        let _ = write!(
            out,
            "\nhistory kept: {} successful, {} failed",
            spec.successful_jobs_history_limit.unwrap_or(3),
            spec.failed_jobs_history_limit.unwrap_or(1)
        );
        let template = spec.job_template.spec.as_ref().map(|s| &s.template);
        out.push_str(&images(template));
        out
    }
}
