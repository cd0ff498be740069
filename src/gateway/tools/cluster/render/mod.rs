//! Compact text of Kubernetes objects for the model: a table line per object for lists, a few
//! lines per object for one, like kubectl's but shorter. Pure functions of the object and "now",
//! so every render is tested without a cluster. What may carry secrets (env values, commands,
//! arguments, ConfigMap values, annotations) is never rendered.

mod cluster;
mod config;
pub mod events;
mod network;
mod pods;
mod storage;
pub mod usage;
mod workloads;

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::patrol::cluster::facts::utc;

/// How an object kind reads as text.
pub trait Render {
    /// The header line of a list.
    const HEADER: &'static str;
    /// The object's line in a list.
    fn row(&self, now: DateTime<Utc>) -> String;
    /// The object alone: what `kubectl describe` would tell, in a few lines.
    fn describe(&self, now: DateTime<Utc>) -> String;
}

/// Whether a list was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    No,
    /// How many more the API server says there are.
    Count(u64),
    /// More, but the API server does not count them (it does not, for a filtered list).
    Some,
}

/// A list: the header, a row per object, and what was left out.
pub fn table<K: Render>(items: &[K], more: More, now: DateTime<Utc>) -> String {
    let mut out = String::from(K::HEADER);
    for item in items {
        out.push('\n');
        out.push_str(&item.row(now));
    }
    out.push_str(&more_line(more));
    out
}

/// The last line of a list cut short, and how to see the rest.
pub fn more_line(more: More) -> String {
    let rest = "raise limit (max 200) or narrow with namespace or labelSelector";
    match more {
        More::No => String::new(),
        More::Count(n) => format!("\n… {n} more not shown; {rest}"),
        More::Some => format!("\n… more not shown; {rest}"),
    }
}

/// A short age like kubectl's: `45s`, `12m`, `3h5m`, `14h`, `3d4h`, `41d`, `2y10d`.
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    span((now - then).num_seconds())
}

/// A duration of `s` seconds in the same form as [`age`].
pub fn span(s: i64) -> String {
    let s = s.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    let pair = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{m}m"),
        3600..36000 => pair(h, "h", m % 60, "m"),
        36000..86400 => format!("{h}h"),
        86400..864000 => pair(d, "d", h % 24, "h"),
        864000..31536000 => format!("{d}d"),
        _ => pair(d / 365, "y", d % 365, "d"),
    }
}

/// The age of an optional time, `-` when there is none.
pub fn age_of(now: DateTime<Utc>, t: Option<&Time>) -> String {
    t.map(|t| age(now, utc(&t.0))).unwrap_or_else(|| "-".into())
}

/// How long ago, for descriptions: `3d4h ago`.
pub fn ago(now: DateTime<Utc>, t: Option<&Time>) -> String {
    match t {
        Some(t) => format!("{} ago", age(now, utc(&t.0))),
        None => "-".into(),
    }
}

/// `namespace/name`, or the name of a cluster-scoped object.
pub fn name_of(meta: &ObjectMeta) -> String {
    let name = meta.name.as_deref().unwrap_or("");
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// The object's age, from its creation.
pub fn created(now: DateTime<Utc>, meta: &ObjectMeta) -> String {
    age_of(now, meta.creation_timestamp.as_ref())
}

/// At most `n` characters of `s`, on one line.
pub fn clip(s: &str, n: usize) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= n {
        one
    } else {
        one.chars().take(n).collect::<String>() + "…"
    }
}

/// The description's first lines every kind shares: what and where it is, its age, labels and
/// owner. Annotations are left out (they hold last-applied configurations, and so values).
pub fn heading(kind: &str, meta: &ObjectMeta, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "{kind} {}\ncreated: {}",
        name_of(meta),
        ago(now, meta.creation_timestamp.as_ref())
    );
    if let Some(t) = &meta.deletion_timestamp {
        let _ = write!(
            out,
            "\nterminating: deletion requested {}",
            ago(now, Some(t))
        );
    }
    if let Some(labels) = meta.labels.as_ref().filter(|l| !l.is_empty()) {
        let _ = write!(out, "\nlabels: {}", clip(&pairs(labels), 300));
    }
    let owners: Vec<String> = meta
        .owner_references
        .iter()
        .flatten()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect();
    if !owners.is_empty() {
        let _ = write!(out, "\nowner: {}", owners.join(", "));
    }
    out
}

/// `k=v,k2=v2`.
pub fn pairs(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A condition that is not as it should be, as one line: `Ready False (Reason: message)`.
pub fn condition(type_: &str, status: &str, reason: Option<&str>, message: Option<&str>) -> String {
    let why = match (reason, message.map(|m| clip(m, 200))) {
        (Some(r), Some(m)) => format!(" ({r}: {m})"),
        (Some(r), None) => format!(" ({r})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    };
    format!("{type_} {status}{why}")
}

/// Memory in MiB (rounded), for usage and capacities.
pub fn mib(bytes: u64) -> u64 {
    (bytes + (1 << 19)) >> 20
}

/// A byte count for people: `812B`, `3.4KiB`, `1.2MiB`.
pub fn size(bytes: usize) -> String {
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1048576 => format!("{:.1}KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1}MiB", bytes as f64 / 1048576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectls() {
        let now: DateTime<Utc> = "2027-02-14T08:29:07Z".parse().unwrap();
        let a = |secs: i64| age(now, now - chrono::Duration::seconds(secs));
        assert_eq!(a(-30), "0s", "a clock ahead of ours is no negative age");
        assert_eq!(a(45), "45s");
        assert_eq!(a(12 * 60 + 5), "12m");
        assert_eq!(a(3 * 3600), "3h");
        assert_eq!(a(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(a(14 * 3600 + 5 * 60), "14h");
        assert_eq!(a(3 * 86400 + 4 * 3600 + 60), "3d4h");
        assert_eq!(a(41 * 86400 + 3600), "41d");
        assert_eq!(a(800 * 86400), "2y70d");
    }

    #[test]
    fn sizes_and_clips() {
        assert_eq!(size(812), "812B");
        assert_eq!(size(3500), "3.4KiB");
        assert_eq!(size(5 * 1048576), "5.0MiB");
        assert_eq!(mib(1 << 30), 1024);
        assert_eq!(clip("a\n  b", 10), "a b");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(
            condition("Ready", "False", Some("KubeletNotReady"), None),
            "Ready False (KubeletNotReady)"
        );
        assert_eq!(more_line(More::No), "");
        assert!(more_line(More::Count(3)).contains("3 more"));
    }
}
