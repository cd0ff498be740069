//! Restarts within the window: containers' restart counts kept from earlier patrols, so that a
//! patrol can say how often a container restarted lately, not since it was created.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::facts::PodFacts;

/// Restart counts of every container that had restarted, at one patrol.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub at: DateTime<Utc>,
    /// `namespace/pod/container` → restarts; absent means none.
    pub counts: BTreeMap<String, i32>,
}

pub fn key(namespace: &str, pod: &str, container: &str) -> String {
    format!("{namespace}/{pod}/{container}")
}

impl Counts {
    pub fn of(pods: &[PodFacts], at: DateTime<Utc>) -> Self {
        let counts = pods
            .iter()
            .flat_map(|p| {
                p.containers
                    .iter()
                    .filter(|c| c.restarts > 0)
                    .map(|c| (key(&p.namespace, &p.name, &c.name), c.restarts))
            })
            .collect();
        Self { at, counts }
    }

    /// Restarts of a container since these counts; all of them when the count went down (the
    /// pod was recreated under the same name).
    pub fn since(&self, key: &str, now: i32) -> i32 {
        let then = self.counts.get(key).copied().unwrap_or(0);
        if now < then { now } else { now - then }
    }
}

/// Earlier patrols' counts, oldest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    pub patrols: Vec<Counts>,
}

const GRACE: Duration = Duration::minutes(15);

/// Patrols kept: enough for twice-daily patrols with windows up to a few days.
const KEEP: usize = 8;

impl History {
    /// The oldest patrol within `window` before `now`: restarts since then happened within it.
    /// A few minutes' grace, so twice-daily patrols with a 12 h window find each other despite
    /// scheduling jitter.
    pub fn baseline(&self, now: DateTime<Utc>, window: Duration) -> Option<&Counts> {
        self.patrols
            .iter()
            .find(|c| c.at < now && now - c.at <= window + GRACE)
    }

    pub fn record(&mut self, counts: Counts) {
        self.patrols.push(counts);
        self.patrols.sort_by_key(|c| c.at);
        let excess = self.patrols.len().saturating_sub(KEEP);
        self.patrols.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        "2026-11-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h)
    }

    #[test]
    fn the_baseline_is_the_oldest_patrol_within_the_window() {
        let mut h = History::default();
        for at in [0, 12, 24] {
            h.record(Counts {
                at: t(at),
                counts: BTreeMap::from([("a/p/c".to_string(), at as i32)]),
            });
        }
        assert_eq!(h.baseline(t(30), Duration::hours(12)).unwrap().at, t(24));
        assert_eq!(h.baseline(t(30), Duration::hours(24)).unwrap().at, t(12));
        assert!(h.baseline(t(50), Duration::hours(12)).is_none());
        // 12 h plus a little jitter still finds the previous twice-daily patrol.
        let jitter = t(36) + Duration::minutes(1);
        assert_eq!(h.baseline(jitter, Duration::hours(12)).unwrap().at, t(24));
        let b = h.baseline(t(30), Duration::hours(12)).unwrap();
        assert_eq!(b.since("a/p/c", 30), 6);
        assert_eq!(
            b.since("a/p/c", 2),
            2,
            "recreated: all its restarts are new"
        );
        assert_eq!(b.since("a/other/c", 3), 3);
        for at in 25..40 {
            h.record(Counts {
                at: t(at),
                counts: BTreeMap::new(),
            });
        }
        assert_eq!(h.patrols.len(), KEEP);
        assert_eq!(h.patrols[0].at, t(32));
    }
}
