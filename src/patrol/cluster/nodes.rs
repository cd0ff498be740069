//! Node check: Ready, pressure conditions, cordons, requests against allocatable, and usage
//! from metrics-server when it is installed.

use std::collections::HashMap;

use super::facts::{NodeFacts, PodFacts};
use crate::crd::cron::PatrolCheck;
use crate::patrol::{Finding, Part, Severity};

/// Share of allocatable (requested or used) above which a node is called tight.
const TIGHT_PERCENT: u64 = 90;

fn pct(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

pub fn check(
    nodes: &[NodeFacts],
    pods: &[PodFacts],
    usage: Option<&HashMap<String, (u64, u64)>>,
) -> Part {
    let mut part = Part::default();
    let mut requested: HashMap<&str, (u64, u64)> = HashMap::new();
    for p in pods.iter().filter(|p| p.is_active()) {
        if let Some(node) = &p.node {
            let r = requested.entry(node).or_default();
            r.0 += p.cpu_request_milli;
            r.1 += p.memory_request_bytes;
        }
    }
    let (mut alloc, mut req, mut used) = ((0, 0), (0, 0), (0, 0));
    for n in nodes {
        let describe = format!("kubectl describe node {}", n.name);
        let subject = format!("node {}", n.name);
        match n.ready {
            Some(true) => {}
            _ => part.findings.push(Finding::new(
                Severity::Critical,
                PatrolCheck::Nodes,
                &subject,
                format!(
                    "NotReady{}{}",
                    if n.ready_reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", n.ready_reason)
                    },
                    n.ready_since
                        .map(|t| format!(" since {}", t.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default()
                ),
                format!("{describe}; check the kubelet on it (journalctl -u k3s or -u kubelet)"),
            )),
        }
        for p in &n.pressures {
            part.findings.push(Finding::new(
                Severity::Warning,
                PatrolCheck::Nodes,
                &subject,
                format!("{p}: the kubelet may evict pods"),
                format!("{describe}; kubectl top pods -A --sort-by=memory"),
            ));
        }
        if n.unschedulable {
            part.findings.push(Finding::new(
                Severity::Warning,
                PatrolCheck::Nodes,
                &subject,
                "cordoned: no new pods are scheduled on it",
                format!("kubectl uncordon {} once its maintenance is done", n.name),
            ));
        }
        let (rc, rm) = requested.get(n.name.as_str()).copied().unwrap_or_default();
        if pct(rm, n.memory_bytes) >= TIGHT_PERCENT {
            part.findings.push(Finding::new(
                Severity::Warning,
                PatrolCheck::Nodes,
                &subject,
                format!(
                    "memory requests at {}% of allocatable",
                    pct(rm, n.memory_bytes)
                ),
                format!("{describe} | grep -A8 'Allocated resources'"),
            ));
        }
        if let Some((uc, um)) = usage.and_then(|u| u.get(&n.name)) {
            if pct(*um, n.memory_bytes) >= TIGHT_PERCENT {
                part.findings.push(Finding::new(
                    Severity::Warning,
                    PatrolCheck::Nodes,
                    &subject,
                    format!("memory use at {}% of allocatable", pct(*um, n.memory_bytes)),
                    "kubectl top pods -A --sort-by=memory",
                ));
            }
            used = (used.0 + uc, used.1 + um);
        }
        alloc = (alloc.0 + n.cpu_milli, alloc.1 + n.memory_bytes);
        req = (req.0 + rc, req.1 + rm);
    }
    let ready = nodes.iter().filter(|n| n.ready == Some(true)).count();
    let mut fact = format!(
        "nodes: {ready} of {} Ready; requests CPU {}%, memory {}% of allocatable",
        nodes.len(),
        pct(req.0, alloc.0),
        pct(req.1, alloc.1)
    );
    match usage {
        Some(_) => {
            fact += &format!(
                "; usage CPU {}%, memory {}%",
                pct(used.0, alloc.0),
                pct(used.1, alloc.1)
            )
        }
        None => fact += "; usage unknown (metrics-server not installed)",
    }
    part.facts.push(fact);
    part
}
