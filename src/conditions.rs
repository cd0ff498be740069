//! Status conditions by the Kubernetes API conventions: set one, keep `lastTransitionTime`
//! when the status did not flip, and read one back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition as a reconcile step decides it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn is_true(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, true, reason, message)
    }
    pub fn is_false(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, false, reason, message)
    }
}

/// Turns decided conditions into API conditions, keeping the previous `lastTransitionTime`
/// of every condition whose status did not change.
pub fn merge(
    previous: &[Condition],
    decided: &[Cond],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    decided
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: c.type_.to_string(),
                status: status.to_string(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn keeps_transition_time_when_status_unchanged() {
        let first = merge(
            &[],
            &[Cond::is_false("Ready", "A", "a")],
            Some(1),
            ts("2026-01-01T00:00:00Z"),
        );
        let second = merge(
            &first,
            &[Cond::is_false("Ready", "B", "b")],
            Some(2),
            ts("2026-01-02T00:00:00Z"),
        );
        assert_eq!(second[0].last_transition_time.0, ts("2026-01-01T00:00:00Z"));
        assert_eq!(second[0].reason, "B");
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn new_transition_time_when_status_flips() {
        let first = merge(
            &[],
            &[Cond::is_false("Ready", "A", "a")],
            Some(1),
            ts("2026-01-01T00:00:00Z"),
        );
        let second = merge(
            &first,
            &[Cond::is_true("Ready", "Ok", "")],
            Some(1),
            ts("2026-01-02T00:00:00Z"),
        );
        assert_eq!(second[0].last_transition_time.0, ts("2026-01-02T00:00:00Z"));
        assert_eq!(second[0].status, "True");
    }
}
