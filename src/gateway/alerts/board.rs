//! What the Control UI's Alerts page shows: the conditions the owner was told of that still
//! hold, and the clearings told lately. Fed by the notices as they go out, and seeded at start
//! from the saved alert state, so a restart does not forget what is still wrong.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::notice::Notice;
use crate::api::{ClearedAlert, ToldAlert};

/// Clearings kept for the page.
pub const RECENT_CLEARED: usize = 20;

#[derive(Default)]
pub struct Board {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By object and reason.
    told: BTreeMap<(String, String), ToldAlert>,
    /// Newest first.
    cleared: VecDeque<ClearedAlert>,
}

impl Board {
    /// Notes a notice that went out at `at`.
    pub fn record(&self, notice: &Notice, at: DateTime<Utc>) {
        let mut b = self.inner.lock().expect("alert board lock");
        match notice {
            Notice::Alert { object, active } => {
                let key = (object.clone(), active.reason.clone());
                let since = b.told.get(&key).map_or(at, |t| t.since);
                b.told.insert(
                    key,
                    ToldAlert {
                        object: object.clone(),
                        reason: active.reason.clone(),
                        detail: active.detail.clone(),
                        action: active.action.clone(),
                        since,
                    },
                );
            }
            Notice::Cleared {
                object,
                reason,
                gone,
            } => {
                b.told.remove(&(object.clone(), reason.clone()));
                b.cleared.push_front(ClearedAlert {
                    object: object.clone(),
                    reason: reason.clone(),
                    at,
                    gone: *gone,
                });
                b.cleared.truncate(RECENT_CLEARED);
            }
        }
    }

    /// Makes the told conditions exactly `told` (object, reason, when told), as the tracker
    /// has them: one told before a restart comes back (its details with the next notice), one
    /// that ended without a clearing of its own (an OOM kill aging out) goes.
    pub fn sync(&self, told: Vec<(String, String, DateTime<Utc>)>) {
        let mut b = self.inner.lock().expect("alert board lock");
        let keys: std::collections::BTreeSet<(String, String)> = told
            .iter()
            .map(|(o, r, _)| (o.clone(), r.clone()))
            .collect();
        b.told.retain(|k, _| keys.contains(k));
        for (object, reason, since) in told {
            b.told
                .entry((object.clone(), reason.clone()))
                .or_insert(ToldAlert {
                    object,
                    reason,
                    detail: String::new(),
                    action: String::new(),
                    since,
                });
        }
    }

    /// The told conditions (oldest first) and the recent clearings (newest first).
    pub fn view(&self) -> (Vec<ToldAlert>, Vec<ClearedAlert>) {
        let b = self.inner.lock().expect("alert board lock");
        let mut told: Vec<ToldAlert> = b.told.values().cloned().collect();
        told.sort_by_key(|t| t.since);
        (told, b.cleared.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::alerts::Active;
    use crate::gateway::alerts::tracker::tests::t;

    fn alert(object: &str, reason: &str) -> Notice {
        Notice::Alert {
            object: object.into(),
            active: Active {
                reason: reason.into(),
                detail: "restarted 5 times".into(),
                action: "kubectl logs".into(),
                recovers: true,
                episode: None,
            },
        }
    }

    #[test]
    fn told_conditions_stay_until_cleared_and_keep_their_first_time() {
        let b = Board::default();
        b.record(&alert("pod default/web", "CrashLoopBackOff"), t(0));
        b.record(&alert("node n1", "NotReady"), t(1));
        // Told again after the cool-down: still since the first time.
        b.record(&alert("pod default/web", "CrashLoopBackOff"), t(40));
        let (told, cleared) = b.view();
        assert_eq!(told.len(), 2);
        assert_eq!(
            (told[0].object.as_str(), told[0].since),
            ("pod default/web", t(0))
        );
        assert!(cleared.is_empty());
        b.record(
            &Notice::Cleared {
                object: "pod default/web".into(),
                reason: "CrashLoopBackOff".into(),
                gone: false,
            },
            t(50),
        );
        let (told, cleared) = b.view();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].reason, "NotReady");
        assert_eq!(
            (cleared[0].object.as_str(), cleared[0].at),
            ("pod default/web", t(50))
        );
    }

    #[test]
    fn only_the_latest_clearings_are_kept_and_a_sync_follows_the_tracker() {
        let b = Board::default();
        for i in 0..(RECENT_CLEARED as i64 + 5) {
            b.record(
                &Notice::Cleared {
                    object: format!("pod default/p{i}"),
                    reason: "OOMKilled".into(),
                    gone: true,
                },
                t(i),
            );
        }
        let (_, cleared) = b.view();
        assert_eq!(cleared.len(), RECENT_CLEARED);
        assert_eq!(
            cleared[0].object,
            format!("pod default/p{}", RECENT_CLEARED + 4)
        );
        b.record(&alert("node n1", "NotReady"), t(3));
        b.record(&alert("pod default/big", "OOMKilled"), t(3));
        b.sync(vec![
            ("node n1".into(), "NotReady".into(), t(1)),
            ("node n2".into(), "MemoryPressure".into(), t(2)),
        ]);
        let (told, _) = b.view();
        assert_eq!(told.len(), 2, "the aged-out OOM kill went: {told:?}");
        let n1 = told.iter().find(|a| a.object == "node n1").unwrap();
        assert_eq!(
            n1.detail, "restarted 5 times",
            "the live notice's details are kept"
        );
        assert!(
            told.iter()
                .any(|a| a.object == "node n2" && a.detail.is_empty())
        );
    }
}
