//! When a cron expression fires in a time zone (croner + chrono-tz, so DST gaps and repeats are
//! handled): the gateway's Cron scheduler and the operator's backup status both ask here.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The first occurrence of `pattern` in `tz` strictly after `after`, as an instant.
pub fn next(pattern: &croner::Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    pattern
        .find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
