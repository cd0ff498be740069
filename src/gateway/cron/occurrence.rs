//! When a Cron fires: its schedule and time zone parsed, and its occurrences in that zone
//! (croner + chrono-tz, so DST gaps and repeats are handled). Pure, and it imports no other part
//! of cron/: the scheduler, a run's record and the Cron status all ask here.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::plan::gateway_config::CronConfig;

/// Parses a Cron's schedule and time zone, naming whichever is wrong.
pub(super) fn parse(cron: &CronConfig) -> Result<(croner::Cron, Tz), String> {
    let pattern = cron
        .schedule
        .parse::<croner::Cron>()
        .map_err(|e| format!("Cron {}: schedule `{}`: {e}", cron.name, cron.schedule))?;
    let tz = cron.time_zone.parse::<Tz>().map_err(|_| {
        format!(
            "Cron {}: `{}` is not an IANA time zone",
            cron.name, cron.time_zone
        )
    })?;
    Ok((pattern, tz))
}

pub(super) use crate::util::schedule::next;

/// The first occurrence of `cron` strictly after `after`, as an instant.
pub fn next_after(cron: &CronConfig, after: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let (pattern, tz) = parse(cron)?;
    next(&pattern, tz, after).ok_or_else(|| format!("Cron {} never fires again", cron.name))
}

/// The next scheduled run after `now`, in the Cron's own time zone, for status; none while the
/// Cron is suspended or when it never fires again.
pub fn next_run(cron: &CronConfig, now: DateTime<Utc>) -> Option<String> {
    if cron.suspend {
        return None;
    }
    next_after(cron, now).ok().map(|t| in_zone(cron, t))
}

/// `next` rendered in the Cron's own time zone (RFC 3339 with its offset), for status.
pub fn in_zone(cron: &CronConfig, at: DateTime<Utc>) -> String {
    match cron.time_zone.parse::<Tz>() {
        Ok(tz) => at.with_timezone(&tz).to_rfc3339(),
        Err(_) => at.to_rfc3339(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::gateway::cron) fn cron(name: &str, schedule: &str, tz: &str) -> CronConfig {
        CronConfig {
            name: name.into(),
            schedule: schedule.into(),
            time_zone: tz.into(),
            suspend: false,
            message: "patrol".into(),
            patrol: None,
            deliver: None,
        }
    }

    pub(in crate::gateway::cron) fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn new_york_hour_follows_dst() {
        let c = cron("daily", "0 9 * * *", "America/New_York");
        assert_eq!(
            next_after(&c, t("2027-03-13T00:00:00Z")).unwrap(),
            t("2027-03-13T14:00:00Z")
        );
        assert_eq!(
            next_after(&c, t("2027-03-15T00:00:00Z")).unwrap(),
            t("2027-03-15T13:00:00Z")
        );
        assert_eq!(
            in_zone(&c, t("2027-03-15T13:00:00Z")),
            "2027-03-15T09:00:00-04:00"
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// Schedules and time zones edited anywhere: refused ones say why, accepted ones give a
        /// next run or say it never fires; never a panic.
        #[test]
        fn fuzz_schedules(edits in crate::util::fuzz::edits(), tz_edits in crate::util::fuzz::edits(), which in 0usize..4) {
            use crate::plan::validate::{check_schedule, check_time_zone};
            let seeds = ["10 8 * * *", "*/15 9-17 * * 1-5", "0 0 29 2 *", "@daily"];
            let schedule = crate::util::fuzz::apply(seeds[which], &edits);
            let time_zone = crate::util::fuzz::apply("Asia/Shanghai", &tz_edits);
            let (s, z) = (check_schedule(&schedule), check_time_zone(&time_zone));
            for e in [&s, &z].into_iter().filter_map(|r| r.as_ref().err()) {
                proptest::prop_assert!(!e.is_empty());
            }
            if s.is_ok() && z.is_ok() {
                let cron = crate::plan::gateway_config::CronConfig {
                    name: "c".into(),
                    schedule,
                    time_zone,
                    suspend: false,
                    message: "m".into(),
                    patrol: None,
                    deliver: None,
                };
                let _ = next_run(&cron, chrono::Utc::now());
            }
        }
    }
}
