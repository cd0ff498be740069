//! The standalone scheduler: which Crons are due when (their occurrences come from
//! [`occurrence`](super::occurrence)), and the loop that fires each occurrence once, also across
//! a restart within the same minute.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;

use super::occurrence::{next, parse};
use crate::gateway::Gateway;
use crate::plan::gateway_config::CronConfig;

/// The state file holding the last occurrence each Cron fired for.
pub const FIRED_FILE: &str = "cron/fired.json";

struct Entry {
    name: String,
    pattern: croner::Cron,
    tz: Tz,
    next: Option<DateTime<Utc>>,
}

/// Which Crons are due when. Pure: the caller passes the time, so tests drive the clock.
pub struct Scheduler {
    entries: Vec<Entry>,
}

impl Scheduler {
    /// Schedules the Crons that are not suspended. `fired` holds the last occurrence each one
    /// fired for: an occurrence in the current minute that did not fire yet (the gateway was
    /// restarting at the time) still fires, and one that did never fires twice.
    pub fn new(
        crons: &[CronConfig],
        fired: &BTreeMap<String, DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (Self, Vec<String>) {
        let minute_start =
            now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now) - TimeDelta::nanoseconds(1);
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for c in crons.iter().filter(|c| !c.suspend) {
            match parse(c) {
                Ok((pattern, tz)) => {
                    let from = fired
                        .get(&c.name)
                        .map_or(minute_start, |f| (*f).max(minute_start));
                    entries.push(Entry {
                        name: c.name.clone(),
                        next: next(&pattern, tz, from),
                        pattern,
                        tz,
                    });
                }
                Err(why) => problems.push(why),
            }
        }
        (Self { entries }, problems)
    }

    /// The Crons due at `now`, each with the occurrence it fires for. Missed occurrences (the
    /// machine slept) fire once, not once each.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>)> {
        let mut out = Vec::new();
        for e in &mut self.entries {
            if let Some(at) = e.next.filter(|at| *at <= now) {
                out.push((e.name.clone(), at));
                e.next = next(&e.pattern, e.tz, at.max(now));
            }
        }
        out
    }

    /// When the next Cron is due.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.entries.iter().filter_map(|e| e.next).min()
    }
}

/// Marks a Cron as running until dropped.
struct Running(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&self.1);
        }
    }
}

/// Longest sleep between checks, so a changed wall clock is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Fires the gateway's Crons on time (standalone; in a cluster, CronJobs do). A Cron still
/// running when it is due again is skipped, like a CronJob's `concurrencyPolicy: Forbid`.
pub async fn run(gw: Arc<Gateway>) {
    let mut fired: BTreeMap<String, DateTime<Utc>> = match gw.state.read(FIRED_FILE) {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "cron state unreadable; starting afresh");
            BTreeMap::new()
        }
    };
    let (mut scheduler, problems) = Scheduler::new(&gw.config.crons, &fired, Utc::now());
    for p in problems {
        tracing::warn!("{p}; it will not run");
    }
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let now = Utc::now();
        for (name, at) in scheduler.due(now) {
            let Some(cron) = gw.config.crons.iter().find(|c| c.name == name).cloned() else {
                continue;
            };
            // Recorded before the run, so a crash during it cannot fire the occurrence again.
            fired.insert(name.clone(), at);
            if let Err(e) = gw.state.write(FIRED_FILE, &fired) {
                tracing::warn!(error = %e, "cron state not saved");
            }
            if !running.lock().expect("running lock").insert(name.clone()) {
                tracing::warn!(cron = %name, "still running from its last occurrence; this one is skipped");
                continue;
            }
            tracing::info!(cron = %name, occurrence = %at, "cron due");
            let (gw, running) = (gw.clone(), running.clone());
            tokio::spawn(async move {
                // Removed even if the run panics, so the Cron is not skipped forever.
                let _guard = Running(running, cron.name.clone());
                super::run::run(&gw, &cron).await;
            });
        }
        let wait = scheduler
            .next_wake()
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::cron::occurrence::tests::{cron, t};

    /// Drives the scheduler minute by minute (and at a few seconds past) over `hours`.
    fn fire_times(s: &mut Scheduler, from: DateTime<Utc>, hours: i64) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut now = from;
        while now < from + TimeDelta::hours(hours) {
            for step in [0, 1, 30, 59] {
                out.extend(
                    s.due(now + TimeDelta::seconds(step))
                        .into_iter()
                        .map(|(_, at)| at),
                );
            }
            now += TimeDelta::minutes(1);
        }
        out
    }

    #[test]
    fn shanghai_0810_fires_once_at_0010_utc() {
        let c = cron("morning", "10 8 * * *", "Asia/Shanghai");
        let (mut s, problems) = Scheduler::new(&[c], &BTreeMap::new(), t("2026-11-21T00:00:00Z"));
        assert!(problems.is_empty());
        assert_eq!(s.next_wake(), Some(t("2026-11-21T00:10:00Z")));
        let fired = fire_times(&mut s, t("2026-11-21T00:00:00Z"), 48);
        assert_eq!(
            fired,
            [t("2026-11-21T00:10:00Z"), t("2026-11-22T00:10:00Z")]
        );
    }

    #[test]
    fn both_patrols_of_the_example_fire_twice_a_day() {
        let c = cron("patrol", "10 8,20 * * *", "Asia/Shanghai");
        let (mut s, _) = Scheduler::new(&[c], &BTreeMap::new(), t("2026-11-21T00:00:00Z"));
        let fired = fire_times(&mut s, t("2026-11-21T00:00:00Z"), 24);
        assert_eq!(
            fired,
            [t("2026-11-21T00:10:00Z"), t("2026-11-21T12:10:00Z")]
        );
    }

    #[test]
    fn dst_gap_and_repeat_in_berlin() {
        // 2027-03-28: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
        let c = cron("night", "30 2 * * *", "Europe/Berlin");
        let (mut s, _) = Scheduler::new(
            std::slice::from_ref(&c),
            &BTreeMap::new(),
            t("2027-03-27T00:00:00Z"),
        );
        let fired = fire_times(&mut s, t("2027-03-27T00:00:00Z"), 72);
        // 27th at 02:30 CET (01:30 UTC); the 28th's has no 02:30 (croner moves it into the gap's
        // end or skips it, never twice); 29th at 02:30 CEST (00:30 UTC).
        assert_eq!(fired.first(), Some(&t("2027-03-27T01:30:00Z")));
        assert_eq!(fired.last(), Some(&t("2027-03-29T00:30:00Z")));
        assert!(fired.len() <= 3, "{fired:?}");
        let mut dedup = fired.clone();
        dedup.dedup();
        assert_eq!(dedup, fired);

        // 2027-10-31: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice but fires once.
        let (mut s, _) = Scheduler::new(&[c], &BTreeMap::new(), t("2027-10-30T12:00:00Z"));
        let fired = fire_times(&mut s, t("2027-10-30T12:00:00Z"), 24);
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(
            fired[0] == t("2027-10-31T00:30:00Z") || fired[0] == t("2027-10-31T01:30:00Z"),
            "{fired:?}"
        );
    }

    #[test]
    fn restart_within_the_minute_neither_misses_nor_repeats() {
        let c = cron("morning", "10 8 * * *", "Asia/Shanghai");
        // Down at 00:09:50, back at 00:10:30 UTC: the 08:10 patrol had not fired, so it fires now.
        let (mut s, _) = Scheduler::new(
            std::slice::from_ref(&c),
            &BTreeMap::new(),
            t("2026-11-21T00:10:30Z"),
        );
        assert_eq!(
            s.due(t("2026-11-21T00:10:30Z")),
            [("morning".to_string(), t("2026-11-21T00:10:00Z"))]
        );
        // It fired at 00:10:00 and the gateway restarted at 00:10:30: nothing fires again.
        let fired = BTreeMap::from([("morning".to_string(), t("2026-11-21T00:10:00Z"))]);
        let (mut s, _) =
            Scheduler::new(std::slice::from_ref(&c), &fired, t("2026-11-21T00:10:30Z"));
        assert!(s.due(t("2026-11-21T00:10:45Z")).is_empty());
        assert_eq!(s.next_wake(), Some(t("2026-11-22T00:10:00Z")));
        // Back only at 00:11: that occurrence is missed, not fired late.
        let (mut s, _) = Scheduler::new(&[c], &BTreeMap::new(), t("2026-11-21T00:11:05Z"));
        assert!(s.due(t("2026-11-21T00:11:05Z")).is_empty());
    }

    #[test]
    fn a_machine_that_slept_fires_once_not_for_every_missed_minute() {
        let c = cron("often", "*/5 * * * *", "UTC");
        let (mut s, _) = Scheduler::new(&[c], &BTreeMap::new(), t("2026-11-21T00:00:30Z"));
        assert_eq!(s.due(t("2026-11-21T03:02:00Z")).len(), 1);
        assert_eq!(s.next_wake(), Some(t("2026-11-21T03:05:00Z")));
    }

    #[test]
    fn suspended_crons_do_not_fire_and_bad_ones_are_named() {
        let mut suspended = cron("off", "* * * * *", "UTC");
        suspended.suspend = true;
        let bad = cron("bad", "10 8 * * *", "Mars/Olympus");
        let (mut s, problems) = Scheduler::new(
            &[suspended, bad],
            &BTreeMap::new(),
            t("2026-11-21T00:00:00Z"),
        );
        assert!(s.due(t("2026-11-22T00:00:00Z")).is_empty());
        assert_eq!(
            problems,
            ["Cron bad: `Mars/Olympus` is not an IANA time zone"]
        );
    }
}
