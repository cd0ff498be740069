//! What a Cron's patrol looks at from the gateway: the cluster through the read-only view (with
//! `clusterAccess: read`), the host it runs on (standalone, or when asked), and its own health
//! (model failures counted since the previous patrol, which [`PatrolMarks`] remembers).

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::crd::agent::ClusterAccess;
use crate::crd::cron::{PatrolCheck, PatrolSpec};
use crate::gateway::Gateway;
use crate::patrol::cluster::restarts::History;
use crate::patrol::{self, Finding, Part, Report, Severity, wants};

/// The cluster checks (everything but the host and the gateway itself).
const CLUSTER_CHECKS: &[PatrolCheck] = &[
    PatrolCheck::Nodes,
    PatrolCheck::Workloads,
    PatrolCheck::Storage,
    PatrolCheck::Events,
    PatrolCheck::Certificates,
];

/// Model failures and 429s counted at the last patrol's gateway check.
#[derive(Default)]
pub struct PatrolMarks(Mutex<(u64, u64)>);

impl PatrolMarks {
    /// Failures and 429s since the last call, given the totals `now`; `now` is remembered.
    pub fn since(&self, now: (u64, u64)) -> (u64, u64) {
        let mut seen = self.0.lock().expect("patrol marks lock");
        let since = (now.0 - seen.0.min(now.0), now.1 - seen.1.min(now.1));
        *seen = now;
        since
    }
}

/// Collects a patrol for `spec` at `at`.
pub async fn collect(gw: &Gateway, spec: &PatrolSpec, at: DateTime<Utc>) -> Report {
    let mut part = Part::default();
    let mut scope = Vec::new();
    let wants_cluster = CLUSTER_CHECKS.iter().any(|c| wants(spec, *c));
    match (&gw.kube, gw.config.agent.cluster_access) {
        (Some(client), ClusterAccess::Read) if wants_cluster => {
            scope.push("cluster".to_string());
            part.extend(cluster_part(gw, client, spec, at).await);
        }
        (None, ClusterAccess::Read) if wants_cluster => part.skipped.push(
            "cluster: no Kubernetes client (no in-cluster service account or kubeconfig)".into(),
        ),
        (_, ClusterAccess::None) if wants_cluster && gw.config.kubernetes.is_some() => {
            part.skipped.push(
                "cluster: the Agent has clusterAccess: none; set clusterAccess: read to patrol the cluster"
                    .into(),
            )
        }
        _ => {}
    }
    // The host is the point of a standalone patrol; in a pod it is only checked when asked for.
    let host = spec.checks.contains(&PatrolCheck::Host)
        || (spec.checks.is_empty() && gw.config.kubernetes.is_none());
    if host {
        scope.push(format!("host {}", patrol::host::hostname()));
        part.extend(patrol::host::collect(&spec.thresholds).await);
    }
    if wants(spec, PatrolCheck::Gateway) {
        part.extend(gateway_part(gw).await);
    }
    let scope = if scope.is_empty() {
        "gateway".to_string()
    } else {
        scope.join(" and ")
    };
    Report::new(scope, at, &spec.thresholds.window, part)
}

/// Earlier patrols' restart counts, so restarts are counted within the window.
pub const RESTARTS_FILE: &str = "patrol/restarts.json";

/// The cluster patrol, with restarts counted since the oldest kept patrol within the window.
async fn cluster_part(
    gw: &Gateway,
    client: &kube::Client,
    spec: &PatrolSpec,
    at: DateTime<Utc>,
) -> Part {
    let state = gw.state.clone();
    let mut history: History =
        match tokio::task::spawn_blocking(move || state.read(RESTARTS_FILE)).await {
            Ok(Ok(h)) => h.unwrap_or_default(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "restart counts unreadable; this patrol counts totals");
                History::default()
            }
            Err(_) => History::default(),
        };
    let before = history.clone();
    let part = patrol::cluster::run(client, spec, &mut history, at).await;
    if history != before {
        let state = gw.state.clone();
        let saved = tokio::task::spawn_blocking(move || state.write(RESTARTS_FILE, &history)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "restart counts not saved; the next patrol counts totals");
        }
    }
    part
}

/// The gateway's own health: the model and each channel.
pub async fn gateway_part(gw: &Gateway) -> Part {
    let mut part = Part::default();
    let logs = match &gw.config.kubernetes {
        Some(k) => format!("kubectl -n {} logs deploy/{}-gateway", k.namespace, k.agent),
        None => "the gateway's log".to_string(),
    };
    let model = &gw.config.agent.model.primary;
    if let Some(p) = &gw.model_problem {
        part.findings.push(Finding::new(
            Severity::Critical,
            PatrolCheck::Gateway,
            format!("model {model}"),
            p.clone(),
            "set the API key in the Agent's model Secret; the gateway restarts with it",
        ));
    }
    // Counted since the previous patrol, so one bad hour is not reported forever.
    let (failed, limited) = gw.patrol_marks.since((
        gw.metrics.llm_failures.get(),
        gw.metrics.llm_rate_limited.get(),
    ));
    if failed > 0 {
        part.findings.push(Finding::new(
            Severity::Warning,
            PatrolCheck::Gateway,
            format!("model {model}"),
            format!("{failed} model call(s) failed since the last patrol ({limited} rate-limited)"),
            format!("{logs} | grep -i model; check the plan's quota and concurrency"),
        ));
    }
    let mut reachable = Vec::new();
    for c in &gw.channels {
        let probe = c.probe.lock().await.clone();
        match (&probe.username, &probe.error) {
            (Some(u), None) => reachable.push(format!("{} @{u}", c.name)),
            (_, why) => part.findings.push(Finding::new(
                Severity::Critical,
                PatrolCheck::Gateway,
                format!("channel {}", c.name),
                format!(
                    "Telegram not reachable: {}",
                    why.as_deref().unwrap_or("not probed yet")
                ),
                format!("{logs}; check the bot token and egress to api.telegram.org"),
            )),
        }
    }
    for (name, why) in &gw.channel_problems {
        part.findings.push(Finding::new(
            Severity::Critical,
            PatrolCheck::Gateway,
            format!("channel {name}"),
            format!("disabled: {why}"),
            "set the bot token in the Channel's Secret",
        ));
    }
    part.facts.push(format!(
        "gateway: up {}h, model {model} ({} messages sent, {failed} failed calls since the last patrol), channels reachable: {}",
        gw.started.elapsed().as_secs() / 3600,
        gw.metrics.messages_out.get(),
        if reachable.is_empty() {
            "none".to_string()
        } else {
            reachable.join(", ")
        }
    ));
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_count_what_happened_since_the_last_patrol() {
        let marks = PatrolMarks::default();
        assert_eq!(marks.since((3, 1)), (3, 1));
        assert_eq!(marks.since((5, 1)), (2, 0));
        // Totals that went down (never in one process) count nothing rather than wrap.
        assert_eq!(marks.since((4, 0)), (0, 0));
    }
}
