//! Workload check: Deployments, StatefulSets and DaemonSets short of replicas, and pods that
//! crash-loop, were OOM-killed, cannot pull their image, wait too long to be scheduled, or
//! restarted too often within the window.

use chrono::{DateTime, Duration, Utc};

use super::facts::{ContainerFacts, PodFacts, WorkloadFacts};
use super::restarts::{Counts, key};
use super::{age, clip, qualified};
use crate::crd::cron::PatrolCheck;
use crate::patrol::{Finding, Part, Severity};

/// Pending longer than this is more than a slow image pull.
pub const PENDING_TOO_LONG: Duration = Duration::minutes(15);

/// Waiting reasons that mean the container will not start without a fix.
const BROKEN: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// What makes a pod's restarts a finding.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    pub restarts: u32,
    pub window: Duration,
    /// An earlier patrol's counts within the window: restarts are counted since then. Without
    /// one, a container counts when its total reaches the limit and its last exit is recent.
    pub baseline: Option<&'a Counts>,
}

pub fn check(
    pods: &[PodFacts],
    workloads: &[WorkloadFacts],
    limits: Limits,
    now: DateTime<Utc>,
) -> Part {
    let mut part = Part::default();
    let mut short = 0;
    for w in workloads.iter().filter(|w| w.available < w.desired) {
        short += 1;
        let subject = format!("{} {}", w.kind, qualified(&w.namespace, &w.name));
        part.findings.push(Finding::new(
            if w.available == 0 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            PatrolCheck::Workloads,
            subject,
            format!("{} of {} available", w.available, w.desired),
            format!("kubectl -n {} describe {} {}", w.namespace, w.kind, w.name),
        ));
    }
    let (mut running, mut pending) = (0, 0);
    for p in pods {
        match p.phase.as_str() {
            "Running" => running += 1,
            "Pending" => pending += 1,
            _ => {}
        }
        pod_findings(p, limits, now, &mut part.findings);
    }
    part.facts.push(format!(
        "pods: {} ({running} Running, {pending} Pending); workloads: {} of {} at full strength",
        pods.len(),
        workloads.len() - short,
        workloads.len()
    ));
    part
}

fn pod_findings(p: &PodFacts, limits: Limits, now: DateTime<Utc>, out: &mut Vec<Finding>) {
    let subject = format!("pod {}", qualified(&p.namespace, &p.name));
    let ns = &p.namespace;
    let mut push = |severity, problem: String, action: String| {
        out.push(Finding::new(
            severity,
            PatrolCheck::Workloads,
            &subject,
            problem,
            action,
        ))
    };
    for c in &p.containers {
        let waiting = c.waiting_reason.as_deref().unwrap_or("");
        if c.crash_looping() {
            push(
                Severity::Critical,
                format!(
                    "container {} in CrashLoopBackOff ({} restarts{})",
                    c.name,
                    c.restarts,
                    c.last_terminated_reason
                        .as_deref()
                        .map(|r| format!(", last exit {r}"))
                        .unwrap_or_default()
                ),
                p.previous_logs(c),
            );
        } else if BROKEN.contains(&waiting) {
            push(
                Severity::Critical,
                format!(
                    "container {} cannot start: {waiting}{}",
                    c.name,
                    c.waiting_message
                        .as_deref()
                        .map(|m| format!(" ({})", clip(m, 160)))
                        .unwrap_or_default()
                ),
                format!(
                    "kubectl -n {ns} describe pod {} (check the image name, tag and pull secret)",
                    p.name
                ),
            );
        } else if let Some(problem) = restarted(p, c, limits, now) {
            push(Severity::Warning, problem, p.previous_logs(c));
        }
        if let Some(killed) = c.oom_killed_within(now, limits.window) {
            push(
                Severity::Warning,
                format!(
                    "container {} was OOMKilled {} ago: it needs more memory than its limit",
                    c.name,
                    age(now - killed)
                ),
                p.raise_memory(c),
            );
        }
    }
    if p.phase == "Pending"
        && let Some(created) = p.created
        && now - created > PENDING_TOO_LONG
        && p.containers
            .iter()
            .all(|c| !BROKEN.contains(&c.waiting_reason.as_deref().unwrap_or("")))
    {
        push(
            Severity::Warning,
            format!(
                "Pending for {}{}",
                age(now - created),
                p.unschedulable
                    .as_deref()
                    .map(|m| format!(": {}", clip(m, 160)))
                    .unwrap_or_default()
            ),
            format!(
                "kubectl -n {ns} describe pod {} (see Events at the bottom)",
                p.name
            ),
        );
    }
}

/// How a container restarted too often within the window, if it did.
fn restarted(
    p: &PodFacts,
    c: &ContainerFacts,
    limits: Limits,
    now: DateTime<Utc>,
) -> Option<String> {
    let limit = limits.restarts as i32;
    match limits.baseline {
        Some(b) => {
            let n = b.since(&key(&p.namespace, &p.name, &c.name), c.restarts);
            (n >= limit).then(|| {
                format!(
                    "container {} restarted {n} times in the last {} ({} in total)",
                    c.name,
                    age(now - b.at),
                    c.restarts
                )
            })
        }
        None => {
            let last = c.last_terminated_at?;
            (now - last <= limits.window && c.restarts >= limit).then(|| {
                format!(
                    "container {} restarted {} times, the last {} ago",
                    c.name,
                    c.restarts,
                    age(now - last)
                )
            })
        }
    }
}
