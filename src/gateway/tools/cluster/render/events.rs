//! Events as text, newest first: when, type, reason, which object, how often, what it said. Each
//! event is reduced to a row as its page arrives, so sorting a busy cluster's events costs rows,
//! not API objects.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;

use super::{Render, age, clip, heading};
use crate::patrol::cluster::facts::{event_count, event_last_seen};

/// The little kept of an event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub last: Option<DateTime<Utc>>,
    pub type_: String,
    pub reason: String,
    /// `namespace/kind/name` of the object it is about.
    pub object: String,
    pub count: u32,
    pub message: String,
}

pub const HEADER: &str = "LAST-SEEN  TYPE  REASON  OBJECT(ns/kind/name)  COUNT  MESSAGE";

impl From<&Event> for EventRow {
    fn from(e: &Event) -> Self {
        let o = &e.involved_object;
        let ns = o.namespace.as_deref();
        let kind = o.kind.as_deref().unwrap_or("-").to_ascii_lowercase();
        let name = o.name.as_deref().unwrap_or("-");
        Self {
            last: event_last_seen(e),
            type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
            reason: e.reason.clone().unwrap_or_else(|| "-".into()),
            object: match ns.filter(|n| !n.is_empty()) {
                Some(ns) => format!("{ns}/{kind}/{name}"),
                None => format!("{kind}/{name}"),
            },
            count: event_count(e),
            message: clip(e.message.as_deref().unwrap_or(""), 200),
        }
    }
}

impl EventRow {
    pub fn line(&self, now: DateTime<Utc>) -> String {
        format!(
            "{}  {}  {}  {}  {}  {}",
            self.last.map(|t| age(now, t)).unwrap_or_else(|| "-".into()),
            self.type_,
            self.reason,
            self.object,
            self.count,
            self.message
        )
    }
}

/// The newest `limit` of `rows`, newest first, and a line for the older ones left out.
pub fn newest(mut rows: Vec<EventRow>, limit: usize, now: DateTime<Utc>) -> String {
    rows.sort_by_key(|r| std::cmp::Reverse(r.last));
    let older = rows.len().saturating_sub(limit);
    let mut out = String::from(HEADER);
    for r in rows.iter().take(limit) {
        out.push('\n');
        out.push_str(&r.line(now));
    }
    if older > 0 {
        let _ = write!(
            out,
            "\n… {older} older not shown; raise limit (max 200) or ask for one object's events"
        );
    }
    out
}

impl Render for Event {
    const HEADER: &'static str = HEADER;

    fn row(&self, now: DateTime<Utc>) -> String {
        EventRow::from(self).line(now)
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let r = EventRow::from(self);
        let mut out = heading("event", &self.metadata, now);
        let _ = write!(
            out,
            "\n{} {} on {}, {} time(s), last {}",
            r.type_,
            r.reason,
            r.object,
            r.count,
            r.last
                .map(|t| age(now, t) + " ago")
                .unwrap_or_else(|| "-".into())
        );
        let source = self
            .reporting_component
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.source.as_ref().and_then(|s| s.component.clone()));
        if let Some(s) = source {
            let _ = write!(out, "\nfrom: {s}");
        }
        let _ = write!(
            out,
            "\nmessage: {}",
            clip(self.message.as_deref().unwrap_or(""), 1000)
        );
        out
    }
}
