//! Event check: Warning events of the window, grouped by reason and object, busiest first.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::facts::EventFacts;
use super::{clip, qualified};
use crate::crd::cron::PatrolCheck;
use crate::patrol::{Finding, Part, Severity};

/// Reasons named in the facts line.
const TOP_REASONS: usize = 5;

struct Group<'a> {
    count: u32,
    latest: &'a EventFacts,
}

pub fn check(
    events: &[EventFacts],
    window_text: &str,
    window: Duration,
    now: DateTime<Utc>,
) -> Part {
    let mut part = Part::default();
    let mut groups: HashMap<(&str, &str, &str, &str), Group> = HashMap::new();
    let mut by_reason: HashMap<&str, u32> = HashMap::new();
    let mut total = 0;
    for e in events
        .iter()
        .filter(|e| e.last.is_some_and(|t| now - t <= window))
    {
        total += e.count;
        *by_reason.entry(&e.reason).or_default() += e.count;
        let g = groups
            .entry((&e.reason, &e.kind, &e.namespace, &e.name))
            .or_insert(Group {
                count: 0,
                latest: e,
            });
        g.count += e.count;
        if e.last > g.latest.last {
            g.latest = e;
        }
    }
    let mut reasons: Vec<_> = by_reason.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut fact = format!(
        "warning events in the last {window_text}: {total} in {} group(s)",
        groups.len()
    );
    if !reasons.is_empty() {
        let top: Vec<String> = reasons
            .iter()
            .take(TOP_REASONS)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        fact += &format!("; top reasons: {}", top.join(", "));
    }
    part.facts.push(fact);
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
    for ((reason, kind, ns, name), g) in groups {
        let field = format!("involvedObject.name={name}");
        part.findings.push(Finding::new(
            Severity::Warning,
            PatrolCheck::Events,
            format!("{} {}", kind.to_lowercase(), qualified(ns, name)),
            format!("{reason} ×{}: {}", g.count, clip(&g.latest.message, 160)),
            if ns.is_empty() {
                format!("kubectl get events -A --field-selector {field}")
            } else {
                format!(
                    "kubectl -n {ns} get events --field-selector {field} --sort-by=.lastTimestamp"
                )
            },
        ));
    }
    part
}
