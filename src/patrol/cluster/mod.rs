//! Cluster patrol: paged reads of nodes, workloads, storage, events and certificates through the
//! read-only cluster view (fetch), reduced to facts, then turned into findings by pure functions
//! per check, each with the `kubectl` command to look closer.

mod events;
pub mod facts;
pub mod fetch;
mod nodes;
pub mod restarts;
mod storage;
mod tls;
mod workloads;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use kube::{Api, Client};

use super::{Part, wants};
use crate::crd::cron::{PatrolCheck, PatrolSpec};
use facts::*;

/// Everything a cluster patrol looked at.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<NodeFacts>,
    /// Usage per node from metrics-server; None when it is not installed.
    pub node_usage: Option<HashMap<String, (u64, u64)>>,
    pub pods: Vec<PodFacts>,
    pub workloads: Vec<WorkloadFacts>,
    pub pvcs: Vec<PvcFacts>,
    pub events: Vec<EventFacts>,
    pub certs: Vec<CertFacts>,
    /// Reads that gave nothing, and why.
    pub skipped: Vec<String>,
    /// Whether the pods were listed (so their restart counts can be kept for the next patrol).
    pub pods_read: bool,
    /// Restart counts of an earlier patrol within the window, when the caller kept one.
    pub baseline: Option<restarts::Counts>,
}

/// Keeps a read's rows, or notes why there are none.
fn take<T>(skipped: &mut Vec<String>, what: &str, r: Result<Vec<T>, kube::Error>) -> Vec<T> {
    r.unwrap_or_else(|e| {
        skipped.push(fetch::explain(what, &e));
        Vec::new()
    })
}

/// Awaits `f` only when `on`.
async fn when<T>(on: bool, f: impl Future<Output = T>) -> Option<T> {
    if on { Some(f.await) } else { None }
}

/// Reads what the wanted checks need, concurrently.
pub async fn fetch(client: &Client, spec: &PatrolSpec) -> Snapshot {
    use fetch::list_all;
    let want = |c| wants(spec, c);
    let need_pods = want(PatrolCheck::Nodes) || want(PatrolCheck::Workloads);
    let workloads = want(PatrolCheck::Workloads);
    let all = |c: &Client| c.clone();
    let (nodes, usage, pods, deploys, sets, daemons, pvcs, events, secrets, certificates) = tokio::join!(
        when(
            want(PatrolCheck::Nodes),
            list_all(Api::<Node>::all(all(client)), None, |n| Some(
                NodeFacts::from(n)
            ))
        ),
        when(want(PatrolCheck::Nodes), fetch::node_usage(client)),
        when(
            need_pods,
            list_all(Api::<Pod>::all(all(client)), None, |p| Some(
                PodFacts::from(p)
            ))
        ),
        when(
            workloads,
            list_all(Api::<Deployment>::all(all(client)), None, |d| Some(
                WorkloadFacts::from(d)
            ))
        ),
        when(
            workloads,
            list_all(Api::<StatefulSet>::all(all(client)), None, |s| Some(
                WorkloadFacts::from(s)
            ))
        ),
        when(
            workloads,
            list_all(Api::<DaemonSet>::all(all(client)), None, |d| Some(
                WorkloadFacts::from(d)
            ))
        ),
        when(
            want(PatrolCheck::Storage),
            list_all(Api::<PersistentVolumeClaim>::all(all(client)), None, |p| {
                Some(PvcFacts::from(p))
            })
        ),
        when(
            want(PatrolCheck::Events),
            list_all(
                Api::<Event>::all(all(client)),
                Some("type=Warning"),
                EventFacts::from_warning
            )
        ),
        when(want(PatrolCheck::Certificates), fetch::tls_secrets(client)),
        when(want(PatrolCheck::Certificates), fetch::certificates(client)),
    );
    let mut s = Snapshot::default();
    let sk = &mut s.skipped;
    s.nodes = nodes.map(|r| take(sk, "nodes", r)).unwrap_or_default();
    // An empty answer is a metrics API with nothing behind it yet: no usage to speak of.
    s.node_usage = usage.and_then(|r| r.ok()).filter(|u| !u.is_empty());
    s.pods_read = matches!(pods, Some(Ok(_)));
    s.pods = pods.map(|r| take(sk, "pods", r)).unwrap_or_default();
    for (what, r) in [
        ("deployments", deploys),
        ("statefulsets", sets),
        ("daemonsets", daemons),
    ] {
        s.workloads
            .extend(r.map(|r| take(sk, what, r)).unwrap_or_default());
    }
    s.pvcs = pvcs
        .map(|r| take(sk, "persistentvolumeclaims", r))
        .unwrap_or_default();
    s.events = events.map(|r| take(sk, "events", r)).unwrap_or_default();
    match secrets {
        Some(Err(kube::Error::Api(e))) if e.code == 403 => sk.push(
            "TLS Secrets: not readable — the read-only role grants no Secrets, since they hold private keys; \
             cert-manager Certificates are checked instead (see the README to include TLS Secrets)"
                .into(),
        ),
        Some(r) => s.certs.extend(take(sk, "TLS Secrets", r)),
        None => {}
    }
    match certificates {
        // Without cert-manager there is nothing to say about its Certificates.
        Some(Err(kube::Error::Api(e))) if e.code == 404 => {}
        Some(r) => s.certs.extend(take(sk, "cert-manager Certificates", r)),
        None => {}
    }
    s
}

/// Findings of every wanted check over `snap`, at `now`.
pub fn analyze(snap: &Snapshot, spec: &PatrolSpec, now: DateTime<Utc>) -> Part {
    let t = &spec.thresholds;
    let window = chrono::Duration::seconds(super::window_secs(t));
    let mut part = Part {
        skipped: snap.skipped.clone(),
        ..Default::default()
    };
    if wants(spec, PatrolCheck::Nodes) {
        part.extend(nodes::check(
            &snap.nodes,
            &snap.pods,
            snap.node_usage.as_ref(),
        ));
    }
    if wants(spec, PatrolCheck::Workloads) {
        part.extend(workloads::check(
            &snap.pods,
            &snap.workloads,
            workloads::Limits {
                restarts: t.restarts,
                window,
                baseline: snap.baseline.as_ref(),
            },
            now,
        ));
    }
    if wants(spec, PatrolCheck::Storage) {
        part.extend(storage::check(&snap.pvcs, now));
    }
    if wants(spec, PatrolCheck::Events) {
        part.extend(events::check(&snap.events, &t.window, window, now));
    }
    if wants(spec, PatrolCheck::Certificates) {
        part.extend(tls::check(&snap.certs, t.cert_expiry_days, now));
    }
    part
}

/// A cluster patrol: fetch, count restarts since the oldest patrol in `history` within the
/// window (totals when there is none), analyze, then remember this patrol's restart counts.
pub async fn run(
    client: &Client,
    spec: &PatrolSpec,
    history: &mut restarts::History,
    now: DateTime<Utc>,
) -> Part {
    let mut snap = fetch(client, spec).await;
    let window = chrono::Duration::seconds(super::window_secs(&spec.thresholds));
    snap.baseline = history.baseline(now, window).cloned();
    let part = analyze(&snap, spec, now);
    if snap.pods_read {
        history.record(restarts::Counts::of(&snap.pods, now));
    }
    part
}

/// `ns/name` for subjects.
fn qualified(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

/// A short age, e.g. `3h`, `2d`, `45m`.
fn age(d: chrono::Duration) -> String {
    let m = d.num_minutes().max(0);
    match m {
        0..60 => format!("{m}m"),
        60..2880 => format!("{}h", m / 60),
        _ => format!("{}d", m / 1440),
    }
}

/// At most `n` characters of `s`, on one line.
fn clip(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= n {
        one
    } else {
        one.chars().take(n).collect::<String>() + "…"
    }
}
