//! Remembering what was told: per object and reason, whether the owner heard of the current
//! episode, the cool-down since the last alert, and when a clearing has held long enough to tell.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::conditions::Active;
use super::notice::Notice;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct Entry {
    /// When the last alert for it went out.
    alerted_at: Option<DateTime<Utc>>,
    /// Whether it is true now.
    active: bool,
    /// Whether the owner was told of the current episode (so clearing is told too).
    announced: bool,
    /// Since when a told condition has been false: its clearing is told once it stays false for
    /// `clear_after` (a crash-looping container is briefly running between its crashes).
    absent_since: Option<DateTime<Utc>>,
    /// The current episode of an event-like condition.
    episode: Option<DateTime<Utc>>,
    #[serde(skip)]
    last: Option<Active>,
}

/// The alert clock.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Quiet time per object and reason after an alert.
    pub cool_down: TimeDelta,
    /// How long a told condition must stay false before its clearing is told: longer than a
    /// crash loop's longest back-off (5 min).
    pub clear_after: TimeDelta,
    /// How often clearings and held-back alerts are looked at.
    pub tick: std::time::Duration,
}

impl Timing {
    pub fn new(cool_down: TimeDelta) -> Self {
        Self {
            cool_down,
            clear_after: TimeDelta::minutes(10),
            tick: std::time::Duration::from_secs(60),
        }
    }
}

/// Decides what to tell, per object and reason, with a cool-down. Pure: the caller passes time.
pub struct Tracker {
    timing: Timing,
    entries: BTreeMap<String, Entry>,
}

fn key(object: &str, reason: &str) -> String {
    format!("{object}|{reason}")
}

impl Tracker {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            entries: BTreeMap::new(),
        }
    }

    fn cooled(&self, e: &Entry, now: DateTime<Utc>) -> bool {
        e.alerted_at
            .is_none_or(|t| now - t >= self.timing.cool_down)
    }

    /// `object` now has exactly the conditions `active` (none when it was deleted: `gone`).
    pub fn observe(
        &mut self,
        object: &str,
        active: Vec<Active>,
        gone: bool,
        now: DateTime<Utc>,
    ) -> Vec<Notice> {
        let mut out = Vec::new();
        let prefix = format!("{object}|");
        let current: Vec<String> = active.iter().map(|a| key(object, &a.reason)).collect();
        let keys: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        // What is no longer true.
        for k in keys.into_iter().filter(|k| !current.contains(k)) {
            let e = self.entries.get_mut(&k).expect("listed");
            let told = e.announced && e.last.as_ref().is_none_or(|a| a.recovers);
            if gone {
                if told && (e.active || e.absent_since.is_some()) {
                    out.push(Notice::Cleared {
                        object: object.to_string(),
                        reason: k[prefix.len()..].to_string(),
                        gone: true,
                    });
                }
                self.entries.remove(&k);
            } else if e.active {
                e.active = false;
                if told {
                    e.absent_since = Some(now);
                } else {
                    e.announced = false;
                }
            }
        }
        // What is true now.
        for (a, k) in active.into_iter().zip(current) {
            let cooled = self.entries.get(&k).is_none_or(|e| self.cooled(e, now));
            let e = self.entries.entry(k).or_default();
            if e.absent_since.take().is_some() {
                // Back before its clearing was told: the same episode goes on.
                e.active = true;
                e.last = Some(a);
                continue;
            }
            let new_episode = a.episode.is_some() && a.episode != e.episode;
            if !e.active || new_episode {
                e.announced = false;
            }
            e.active = true;
            e.episode = a.episode;
            e.last = Some(a.clone());
            if !e.announced && cooled {
                e.alerted_at = Some(now);
                e.announced = true;
                out.push(Notice::Alert {
                    object: object.to_string(),
                    active: a,
                });
            }
        }
        out
    }

    /// Clearings that held for `clear_after`, alerts held back by the cool-down that are now
    /// due, and forgetting what cleared and cooled down.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Notice> {
        let Timing {
            cool_down,
            clear_after,
            ..
        } = self.timing;
        let mut out = Vec::new();
        for (k, e) in &mut self.entries {
            let (object, reason) = k.split_once('|').unwrap_or((k, ""));
            if e.absent_since.is_some_and(|t| now - t >= clear_after) {
                e.absent_since = None;
                e.announced = false;
                out.push(Notice::Cleared {
                    object: object.to_string(),
                    reason: reason.to_string(),
                    gone: false,
                });
            }
            if e.active
                && !e.announced
                && e.alerted_at.is_none_or(|t| now - t >= cool_down)
                && let Some(a) = &e.last
            {
                e.alerted_at = Some(now);
                e.announced = true;
                out.push(Notice::Alert {
                    object: object.to_string(),
                    active: a.clone(),
                });
            }
        }
        self.entries.retain(|_, e| {
            e.active
                || e.absent_since.is_some()
                || e.alerted_at.is_some_and(|t| now - t < cool_down)
        });
        out
    }

    /// What the owner was told of and still holds (or has not held clear long enough to be
    /// told so): object, reason and when it was told.
    pub fn told(&self) -> Vec<(String, String, DateTime<Utc>)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.announced && (e.active || e.absent_since.is_some()))
            .filter_map(|(k, e)| {
                let (object, reason) = k.split_once('|')?;
                Some((object.to_string(), reason.to_string(), e.alerted_at?))
            })
            .collect()
    }

    /// Objects of a kind (`pod `, `node `) this tracker remembers.
    pub fn objects(&self, kind: &str) -> BTreeSet<String> {
        self.entries
            .keys()
            .filter(|k| k.starts_with(kind))
            .filter_map(|k| k.split_once('|').map(|(o, _)| o.to_string()))
            .collect()
    }

    pub(super) fn save(&self) -> BTreeMap<String, Entry> {
        self.entries.clone()
    }

    pub(super) fn load(timing: Timing, entries: BTreeMap<String, Entry>) -> Self {
        Self { timing, entries }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::gateway::alerts) fn t(min: i64) -> DateTime<Utc> {
        "2026-11-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(min)
    }

    fn crash() -> Active {
        Active {
            reason: "CrashLoopBackOff".into(),
            detail: "container main keeps crashing (5 restarts)".into(),
            action: "kubectl -n web logs api -c main --previous".into(),
            recovers: true,
            episode: None,
        }
    }

    const POD: &str = "pod web/api";

    fn kinds(n: &[Notice]) -> Vec<&'static str> {
        n.iter()
            .map(|n| match n {
                Notice::Alert { .. } => "alert",
                Notice::Cleared { .. } => "cleared",
            })
            .collect()
    }

    fn tracker() -> Tracker {
        Tracker::new(Timing::new(TimeDelta::minutes(30)))
    }

    #[test]
    fn one_alert_per_cool_down_then_recovery_once_it_holds() {
        let mut tr = tracker();
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        // Still crash-looping: every pod update is not another alert.
        for m in 1..10 {
            assert!(tr.observe(POD, vec![crash()], false, t(m)).is_empty());
            assert!(tr.tick(t(m)).is_empty());
        }
        // It clears; the owner is told once it has stayed clear for 10 minutes.
        assert!(tr.observe(POD, vec![], false, t(12)).is_empty());
        assert!(tr.tick(t(20)).is_empty());
        let n = tr.tick(t(22));
        assert_eq!(
            n,
            [Notice::Cleared {
                object: POD.into(),
                reason: "CrashLoopBackOff".into(),
                gone: false
            }]
        );
        assert_eq!(n[0].text(false), "✅ pod web/api: CrashLoopBackOff cleared");
        assert!(tr.tick(t(40)).is_empty());
    }

    #[test]
    fn a_crash_loop_running_between_crashes_is_not_cleared() {
        let mut tr = tracker();
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        for m in (1..60).step_by(5) {
            // Running for a few minutes, then back in back-off.
            assert!(tr.observe(POD, vec![], false, t(m)).is_empty());
            assert!(tr.tick(t(m + 2)).is_empty());
            assert!(tr.observe(POD, vec![crash()], false, t(m + 4)).is_empty());
            assert!(
                tr.tick(t(m + 4)).is_empty(),
                "no second alert, no false clearing"
            );
        }
    }

    #[test]
    fn a_flap_after_clearing_within_the_cool_down_is_held_back() {
        let mut tr = tracker();
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(0))),
            ["alert"]
        );
        assert!(tr.observe(POD, vec![], false, t(5)).is_empty());
        assert_eq!(kinds(&tr.tick(t(16))), ["cleared"]);
        // Back within 30 minutes of the alert: held back until the cool-down ends.
        assert!(tr.observe(POD, vec![crash()], false, t(20)).is_empty());
        assert!(tr.tick(t(25)).is_empty());
        let n = tr.tick(t(31));
        assert_eq!(kinds(&n), ["alert"]);
        assert!(
            n[0].text(true)
                .starts_with("🚨 告警 pod web/api：CrashLoopBackOff")
        );
        // Cleared and back after the cool-down: told at once.
        assert!(tr.observe(POD, vec![], false, t(40)).is_empty());
        assert_eq!(kinds(&tr.tick(t(51))), ["cleared"]);
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash()], false, t(70))),
            ["alert"]
        );
    }

    #[test]
    fn every_oom_kill_is_news_and_none_recovers() {
        let mut tr = tracker();
        let oom = |at: i64| Active {
            reason: "OOMKilled".into(),
            detail: "x".into(),
            action: "y".into(),
            recovers: false,
            episode: Some(t(at)),
        };
        let n = tr.observe(POD, vec![crash(), oom(0)], false, t(0));
        assert_eq!(kinds(&n), ["alert", "alert"]);
        assert_eq!(
            kinds(&tr.observe("pod web/other", vec![crash()], false, t(1))),
            ["alert"]
        );
        // The same kill seen again is not news; it ages out without a "cleared".
        assert!(
            tr.observe(POD, vec![crash(), oom(0)], false, t(10))
                .is_empty()
        );
        assert!(tr.observe(POD, vec![crash()], false, t(40)).is_empty());
        assert!(tr.tick(t(60)).is_empty());
        // A new kill days later is.
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash(), oom(3000)], false, t(3000))),
            ["alert"]
        );
        // A pod that stayed quiet since its kill, killed again after the cool-down: told too.
        assert!(
            tr.observe(POD, vec![crash(), oom(3000)], false, t(3010))
                .is_empty()
        );
        assert_eq!(
            kinds(&tr.observe(POD, vec![crash(), oom(3100)], false, t(3100))),
            ["alert"]
        );
        // The pod is deleted: its crash loop is over at once.
        let n = tr.observe(POD, vec![], true, t(3101));
        assert_eq!(
            n[0].text(false),
            "✅ pod web/api: CrashLoopBackOff cleared (the object is gone)"
        );
        assert_eq!(tr.objects("pod "), ["pod web/other".to_string()].into());
    }
}
