//! Storage check: PersistentVolumeClaims that are not Bound.

use chrono::{DateTime, Duration, Utc};

use super::facts::PvcFacts;
use super::{age, qualified};
use crate::crd::cron::PatrolCheck;
use crate::patrol::{Finding, Part, Severity};

/// A claim this young may still be waiting for its volume to be provisioned.
const GRACE: Duration = Duration::minutes(5);

pub fn check(pvcs: &[PvcFacts], now: DateTime<Utc>) -> Part {
    let mut part = Part::default();
    let bound = pvcs.iter().filter(|p| p.phase == "Bound").count();
    part.facts
        .push(format!("PVCs: {bound} of {} Bound", pvcs.len()));
    for p in pvcs.iter().filter(|p| p.phase != "Bound") {
        let waited = p.created.map(|c| now - c).unwrap_or(Duration::zero());
        if p.phase != "Lost" && waited < GRACE {
            continue;
        }
        let phase = if p.phase.is_empty() {
            "Pending"
        } else {
            p.phase.as_str()
        };
        part.findings.push(Finding::new(
            if phase == "Lost" {
                Severity::Critical
            } else {
                Severity::Warning
            },
            PatrolCheck::Storage,
            format!("pvc {}", qualified(&p.namespace, &p.name)),
            format!("{phase} for {}", age(waited)),
            format!(
                "kubectl -n {} describe pvc {} (check the StorageClass and the provisioner's logs)",
                p.namespace, p.name
            ),
        ));
    }
    part
}
