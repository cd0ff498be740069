//! What counts as an alert: the conditions true of a pod or a node right now. Pure.

use chrono::{DateTime, TimeDelta, Utc};

use crate::patrol::cluster::facts::{NodeFacts, PodFacts};

/// A condition that is true of an object now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Active {
    pub reason: String,
    pub detail: String,
    pub action: String,
    /// Whether clearing is news: a crash loop ending is, an OOM kill aging out is not.
    pub recovers: bool,
    /// For events (an OOM kill): when it happened, so that the next one is news of its own.
    pub episode: Option<DateTime<Utc>>,
}

/// What is wrong with a pod right now. An OOM kill counts while it is within `recent`.
pub fn pod_conditions(p: &PodFacts, now: DateTime<Utc>, recent: TimeDelta) -> Vec<Active> {
    let mut out = Vec::new();
    for c in &p.containers {
        if c.crash_looping() {
            out.push(Active {
                reason: "CrashLoopBackOff".into(),
                detail: format!(
                    "container {} keeps crashing ({} restarts)",
                    c.name, c.restarts
                ),
                action: p.previous_logs(c),
                recovers: true,
                episode: None,
            });
        }
        if let Some(killed) = c.oom_killed_within(now, recent) {
            out.push(Active {
                reason: "OOMKilled".into(),
                detail: format!("container {} ran out of memory and was killed", c.name),
                action: p.raise_memory(c),
                recovers: false,
                episode: Some(killed),
            });
        }
    }
    dedup(out)
}

/// What is wrong with a node right now.
pub fn node_conditions(n: &NodeFacts) -> Vec<Active> {
    let mut out = Vec::new();
    if n.ready != Some(true) {
        out.push(Active {
            reason: "NotReady".into(),
            detail: if n.ready_reason.is_empty() {
                "the node is not Ready".into()
            } else {
                format!("the node is not Ready ({})", n.ready_reason)
            },
            action: format!("kubectl describe node {}", n.name),
            recovers: true,
            episode: None,
        });
    }
    for p in &n.pressures {
        out.push(Active {
            reason: p.clone(),
            detail: "the kubelet may start evicting pods".into(),
            action: format!("kubectl describe node {}", n.name),
            recovers: true,
            episode: None,
        });
    }
    out
}

/// One reason per object, even when several containers share it.
fn dedup(mut v: Vec<Active>) -> Vec<Active> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|a| seen.insert(a.reason.clone()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::alerts::tracker::tests::t;

    #[test]
    fn conditions_of_pods_and_nodes() {
        use crate::patrol::cluster::facts::ContainerFacts;
        let now = t(0);
        let container = |waiting: Option<&str>, last: Option<&str>, ago: i64| ContainerFacts {
            name: "main".into(),
            waiting_reason: waiting.map(String::from),
            waiting_message: None,
            last_terminated_reason: last.map(String::from),
            last_terminated_at: Some(now - TimeDelta::minutes(ago)),
            restarts: 4,
        };
        let mut pod = PodFacts {
            namespace: "web".into(),
            name: "api".into(),
            node: Some("n1".into()),
            phase: "Running".into(),
            created: None,
            unschedulable: None,
            cpu_request_milli: 0,
            memory_request_bytes: 0,
            containers: vec![container(Some("CrashLoopBackOff"), Some("OOMKilled"), 5)],
        };
        let reasons: Vec<String> = pod_conditions(&pod, now, TimeDelta::minutes(30))
            .into_iter()
            .map(|a| a.reason)
            .collect();
        assert_eq!(reasons, ["CrashLoopBackOff", "OOMKilled"]);
        pod.containers = vec![container(None, Some("OOMKilled"), 45)];
        assert!(
            pod_conditions(&pod, now, TimeDelta::minutes(30)).is_empty(),
            "an old OOM kill is not news"
        );
        let node = NodeFacts {
            name: "n2".into(),
            ready: Some(false),
            ready_reason: "NodeStatusUnknown".into(),
            ready_since: None,
            pressures: vec!["DiskPressure".into()],
            unschedulable: false,
            cpu_milli: 0,
            memory_bytes: 0,
        };
        let a = node_conditions(&node);
        assert_eq!(a[0].detail, "the node is not Ready (NodeStatusUnknown)");
        assert_eq!(a[1].reason, "DiskPressure");
    }
}
