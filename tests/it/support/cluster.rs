//! A fixture cluster for patrols and alerts: a healthy one, and one with a NotReady node, a
//! crash-looping pod, an OOM-killed pod, an image that cannot be pulled, a pod stuck Pending, a
//! Deployment with nothing available, an unbound PVC, a TLS Secret about to expire, and warning
//! events (one of them too old to count).

use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::fake_api::FakeApi;

thread_local! {
    /// Per test (each runs on a thread of its own, and the fixture is built on it), so a test
    /// that moves the clock does not move it for the others in the same binary.
    static NOW: std::cell::Cell<Option<DateTime<Utc>>> = const { std::cell::Cell::new(None) };
}

/// `now` of the fixture: five days before the fixture certificate expires, unless a test that
/// runs against the real clock moved it with [`set_now`].
pub fn now() -> DateTime<Utc> {
    NOW.get()
        .unwrap_or_else(|| "2027-02-14T08:29:07Z".parse().unwrap())
}

/// Builds the fixture's times around `now` (for tests against the real clock).
pub fn set_now(now: DateTime<Utc>) {
    NOW.set(Some(now));
}

/// tests/fixtures/site-tls.crt: notAfter 2027-02-19 08:29:07 UTC.
pub const SITE_CRT: &str = include_str!("../../fixtures/site-tls.crt");

pub fn ts(ago: Duration) -> String {
    (now() - ago).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn node(name: &str, ready: bool, pressures: &[&str]) -> Value {
    let mut conditions = vec![json!({
        "type": "Ready", "status": if ready { "True" } else { "Unknown" },
        "reason": if ready { "KubeletReady" } else { "NodeStatusUnknown" },
        "message": "Kubelet stopped posting node status.",
        "lastTransitionTime": ts(Duration::hours(2)),
    })];
    for p in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        conditions.push(
            json!({"type": p, "status": if pressures.contains(&p) { "True" } else { "False" }}),
        );
    }
    json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"conditions": conditions, "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    })
}

/// A pod in `phase` with one container whose status is `container_status` merged in.
pub fn pod(ns: &str, name: &str, phase: &str, container_status: Value) -> Value {
    let mut status = json!({"name": "main", "ready": phase == "Running", "restartCount": 0, "image": "x", "imageID": "", "state": {"running": {}}});
    super::fake_api::merge_into(&mut status, &container_status);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts(Duration::days(3))},
        "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "x",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
        "status": {"phase": phase, "containerStatuses": [status]},
    })
}

pub fn deployment(ns: &str, name: &str, replicas: i32, available: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "x"}]}}},
        "status": {"availableReplicas": available},
    })
}

pub fn pvc(ns: &str, name: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts(Duration::hours(1))},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase},
    })
}

pub fn tls_secret(ns: &str, name: &str, crt: &str) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": ns},
        "data": {"tls.crt": b64(crt), "tls.key": b64("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")},
    })
}

pub fn warning(
    ns: &str,
    name: &str,
    kind: &str,
    object: &str,
    reason: &str,
    count: i32,
    ago: Duration,
) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event", "type": "Warning",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": kind, "namespace": ns, "name": object},
        "reason": reason, "message": format!("{reason} happened to {object}"), "count": count,
        "lastTimestamp": ts(ago), "firstTimestamp": ts(ago),
    })
}

/// The healthy part: two Ready nodes, running pods, a full Deployment, a Bound PVC.
pub fn healthy(api: &FakeApi) {
    for n in ["n1", "n2"] {
        api.insert(&node(n, true, &[]));
    }
    api.insert(&pod("web", "site-1", "Running", json!({})));
    api.insert(&pod("web", "site-2", "Running", json!({})));
    api.insert(&deployment("web", "site", 2, 2));
    api.insert(&pvc("web", "site-data", "Bound"));
}

/// Everything that should make a finding, on top of [`healthy`].
pub fn troubled(api: &FakeApi) {
    healthy(api);
    api.insert(&node("n3", false, &["MemoryPressure"]));
    api.insert(&pod(
        "web",
        "api-7d9f",
        "Running",
        json!({"restartCount": 12, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
               "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": ts(Duration::minutes(4))}}}),
    ));
    api.insert(&pod(
        "media",
        "jellyfin-0",
        "Running",
        json!({"restartCount": 1, "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": ts(Duration::hours(3))}}}),
    ));
    api.insert(&pod(
        "web",
        "frontend-5c",
        "Pending",
        json!({"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"ghcr.io/me/frontend:v9\""}}}),
    ));
    let mut stuck = pod(
        "batch",
        "report-x1",
        "Pending",
        json!({"state": {"waiting": {"reason": "ContainerCreating"}}}),
    );
    stuck["spec"]["nodeName"] = Value::Null;
    stuck["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory."}]);
    api.insert(&stuck);
    api.insert(&deployment("web", "api", 2, 0));
    api.insert(&pvc("data", "postgres", "Pending"));
    api.insert(&tls_secret("web", "site-tls", SITE_CRT));
    api.insert(&warning(
        "web",
        "api.1",
        "Pod",
        "api-7d9f",
        "BackOff",
        40,
        Duration::minutes(5),
    ));
    api.insert(&warning(
        "web",
        "api.2",
        "Pod",
        "api-7d9f",
        "BackOff",
        2,
        Duration::hours(1),
    ));
    api.insert(&warning(
        "batch",
        "rep.1",
        "Pod",
        "report-x1",
        "FailedScheduling",
        7,
        Duration::minutes(10),
    ));
    api.insert(&warning(
        "old",
        "old.1",
        "Pod",
        "gone",
        "Evicted",
        3,
        Duration::days(2),
    ));
}
