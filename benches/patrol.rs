//! Cluster patrol benchmark (prints figures; asserts only that the patrol found what the fixture
//! plants): time and peak memory of `patrol::cluster::collect` over a fixture of 10,000 pods on
//! 100 nodes with 5,000 Warning events, 300 Deployments, StatefulSets, DaemonSets, PVCs, TLS
//! Secrets and node metrics, read page by page (`limit=500`, `continue`) over HTTP as from a real
//! API server, then the report rendered. Targets: ≤ 1 s and ≤ 100 MiB.
//!
//! The fixture is served by a child process (this binary re-run with `--serve-fixture`), so the
//! memory figures are the collector's alone: the process peak (`VmHWM`) and its growth over the
//! resident size before the first collect.
//!
//! `make bench` (or `cargo bench --bench patrol`); under `cargo test` it runs a short smoke over
//! 200 pods, 5 nodes and 100 events.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clawops::crd::cron::PatrolSpec;
use clawops::patrol::{Report, cluster};
use serde_json::{Value, json};

/// The fixture's clock: five days before [`SITE_CRT`] expires.
const NOW: &str = "2027-02-14T08:29:07Z";
/// notAfter 2027-02-19 08:29:07 UTC.
const SITE_CRT: &str = include_str!("../tests/fixtures/site-tls.crt");
const TARGET_SECS: f64 = 1.0;
const TARGET_MIB: f64 = 100.0;

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Layout: which pod belongs to what, runs where, and is in what trouble. Shared by the server
// (to build the objects) and the bench (to know what the patrol must find), so no JSON is built
// in the measured process.

#[derive(Clone, Copy, Debug)]
struct Size {
    pods: usize,
    nodes: usize,
    events: usize,
}

impl Size {
    fn new(pods: usize, nodes: usize, events: usize) -> Self {
        let s = Self {
            pods,
            nodes,
            events,
        };
        assert!(nodes >= 5, "the fixture plants trouble on nodes 1 to 4");
        assert!(
            pods >= s.first_deployment_pod() + s.deployments(),
            "too few pods for the workloads"
        );
        s
    }
    fn namespaces(self) -> usize {
        (self.pods / 200).clamp(5, 50)
    }
    fn daemonsets(self) -> usize {
        DAEMONSETS.len()
    }
    fn statefulsets(self) -> usize {
        (self.pods / 500).max(1)
    }
    fn deployments(self) -> usize {
        (self.pods * 3 / 100).max(3)
    }
    fn first_deployment_pod(self) -> usize {
        self.daemonsets() * self.nodes + self.statefulsets() * 3
    }
    fn pvcs(self) -> usize {
        self.statefulsets() * 3 + self.deployments() / 10
    }
    fn tls_secrets(self) -> usize {
        (self.namespaces() / 5).max(1)
    }
    fn event_groups(self) -> usize {
        (self.events / 25).clamp(1, 200)
    }
}

const DAEMONSETS: &[(&str, &str)] = &[
    ("kube-system", "kube-proxy"),
    ("kube-system", "aws-node"),
    ("kube-system", "ebs-csi-node"),
    ("monitoring", "node-exporter"),
    ("logging", "fluent-bit"),
];
const TEAMS: &[&str] = &[
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "billing",
    "shipping",
    "reviews",
    "ads",
    "media",
    "notify",
    "ledger",
    "pricing",
    "orders",
    "support",
    "growth",
    "data",
    "ml",
    "platform",
    "infra",
    "mobile",
    "partner",
    "risk",
    "loyalty",
    "inventory",
];
const APPS: &[&str] = &[
    "api", "worker", "web", "cron", "gateway", "sync", "ingest", "render", "auth", "export",
];
const NOT_READY_NODE: usize = 3;
const PRESSURE_NODE: usize = 1;
const CORDONED_NODE: usize = 2;
const BUSY_NODE: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Owner {
    DaemonSet(usize),
    StatefulSet(usize, usize),
    Deployment(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Trouble {
    None,
    CrashLoop,
    OomKilled,
    Pending,
    ImagePull,
}

#[derive(Clone, Copy, Debug)]
struct PodPlan {
    owner: Owner,
    node: Option<usize>,
    trouble: Trouble,
}

fn plan(s: Size, i: usize) -> PodPlan {
    let ds_pods = s.daemonsets() * s.nodes;
    if i < ds_pods {
        return PodPlan {
            owner: Owner::DaemonSet(i / s.nodes),
            node: Some(i % s.nodes),
            trouble: Trouble::None,
        };
    }
    if i < s.first_deployment_pod() {
        let k = i - ds_pods;
        return PodPlan {
            owner: Owner::StatefulSet(k / 3, k % 3),
            node: Some((k * 7 + 1) % s.nodes),
            trouble: Trouble::None,
        };
    }
    let k = i - s.first_deployment_pod();
    let trouble = if k % 100 == 7 {
        Trouble::CrashLoop
    } else if k % 200 == 57 {
        Trouble::OomKilled
    } else if k % 500 == 123 {
        Trouble::Pending
    } else if k % 1000 == 321 {
        Trouble::ImagePull
    } else {
        Trouble::None
    };
    PodPlan {
        owner: Owner::Deployment(k % s.deployments()),
        node: (trouble != Trouble::Pending).then_some(k % s.nodes),
        trouble,
    }
}

fn namespace(s: Size, n: usize) -> String {
    let n = n % s.namespaces();
    let env = if n < TEAMS.len() { "prod" } else { "staging" };
    format!("{}-{env}", TEAMS[n % TEAMS.len()])
}

fn deployment_ns(s: Size, j: usize) -> String {
    namespace(s, j)
}

fn deployment_name(j: usize) -> String {
    let base = format!(
        "{}-{}",
        TEAMS[j % TEAMS.len()],
        APPS[j / TEAMS.len() % APPS.len()]
    );
    match j / (TEAMS.len() * APPS.len()) {
        0 => base,
        n => format!("{base}-{n}"),
    }
}

fn statefulset_ns(s: Size, j: usize) -> String {
    namespace(s, j * 7 + 3)
}

fn statefulset_name(j: usize) -> String {
    let kinds = ["postgres", "redis", "kafka", "elasticsearch", "rabbitmq"];
    format!("{}-{}", kinds[j % kinds.len()], j / kinds.len())
}

fn node_name(n: usize) -> String {
    format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        n / 200,
        n % 200 + 20
    )
}

/// (namespace, name, app name) of pod `i`.
fn pod_identity(s: Size, i: usize) -> (String, String, String) {
    match plan(s, i).owner {
        Owner::DaemonSet(d) => {
            let (ns, name) = DAEMONSETS[d];
            (
                ns.to_string(),
                format!("{name}-{}", k8s_suffix(seed(1, i), 5)),
                name.to_string(),
            )
        }
        Owner::StatefulSet(j, o) => {
            let name = statefulset_name(j);
            (statefulset_ns(s, j), format!("{name}-{o}"), name)
        }
        Owner::Deployment(j) => {
            let name = deployment_name(j);
            (
                deployment_ns(s, j),
                format!("{name}-{}-{}", template_hash(j), k8s_suffix(seed(2, i), 5)),
                name,
            )
        }
    }
}

fn template_hash(j: usize) -> String {
    k8s_suffix(seed(3, j), 10)
}

/// Per Deployment: (replicas, pods in trouble).
fn deployment_counts(s: Size) -> Vec<(i32, i32)> {
    let mut v = vec![(0, 0); s.deployments()];
    for i in s.first_deployment_pod()..s.pods {
        let p = plan(s, i);
        if let Owner::Deployment(j) = p.owner {
            v[j].0 += 1;
            if p.trouble != Trouble::None {
                v[j].1 += 1;
            }
        }
    }
    v
}

const POD_REASONS: &[(&str, &str)] = &[
    (
        "BackOff",
        "Back-off restarting failed container app in pod {obj}",
    ),
    (
        "Unhealthy",
        "Readiness probe failed: Get \"http://10.0.3.17:8080/readyz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
    ),
    (
        "FailedMount",
        "MountVolume.SetUp failed for volume \"config\" : configmap \"{obj}-config\" not found",
    ),
    (
        "FailedScheduling",
        "0/100 nodes are available: 3 Insufficient memory, 97 node(s) didn't match pod anti-affinity rules. preemption: 0/100 nodes are available: 100 No preemption victims found for incoming pod.",
    ),
    (
        "FailedCreatePodSandBox",
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox: plugin type=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container",
    ),
    (
        "FailedKillPod",
        "error killing pod: failed to \"KillPodSandbox\" for \"{obj}\" with KillPodSandboxError: \"rpc error: code = DeadlineExceeded\"",
    ),
    (
        "ProbeWarning",
        "Liveness probe warning: HTTP probe failed with statuscode: 503",
    ),
    (
        "FailedAttachVolume",
        "AttachVolume.Attach failed for volume \"pvc-6f1c\" : rpc error: code = DeadlineExceeded desc = context deadline exceeded",
    ),
    (
        "Evicted",
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91204Ki. Container app was using 2104432Ki, request is 256Mi, has larger consumption of memory.",
    ),
    (
        "FailedPreStopHook",
        "PreStopHook failed: command '/bin/sh -c sleep 15' exited with 137",
    ),
    (
        "NetworkNotReady",
        "network is not ready: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
    ),
    (
        "InspectFailed",
        "Failed to apply default image tag \"registry.example.com/{obj}:\": couldn't parse image reference",
    ),
];
const NODE_REASONS: &[(&str, &str)] = &[
    ("NodeNotReady", "Node {obj} status is now: NodeNotReady"),
    (
        "Rebooted",
        "Node {obj} has been rebooted, boot id: 3f1c0a52-90e1-4f5b-a1d2-8c1e2f4b9d77",
    ),
    (
        "ContainerGCFailed",
        "rpc error: code = ResourceExhausted desc = grpc: trying to send message larger than max",
    ),
    (
        "ImageGCFailed",
        "wanted to free 3221225472 bytes, but freed 0 bytes space with errors in image deletion",
    ),
    (
        "FreeDiskSpaceFailed",
        "Failed to garbage collect required amount of images. Attempted to free 4294967296 bytes, but only found 0 bytes eligible to free.",
    ),
    (
        "SystemOOM",
        "System OOM encountered, victim process: java, pid: 28173",
    ),
];

/// (reason, message template, involved kind, namespace, name, host node) of event group `g`.
fn event_group(
    s: Size,
    g: usize,
) -> (
    &'static str,
    &'static str,
    &'static str,
    String,
    String,
    usize,
) {
    if g % 10 == 9 {
        let n = (g / 10) % s.nodes;
        let (reason, msg) = NODE_REASONS[g / 10 % NODE_REASONS.len()];
        return (reason, msg, "Node", "default".into(), node_name(n), n);
    }
    let p = (g * 37 + 11) % s.pods;
    let (ns, name, _) = pod_identity(s, p);
    let (reason, msg) = POD_REASONS[g % POD_REASONS.len()];
    let node = plan(s, p).node.unwrap_or(0);
    (reason, msg, "Pod", ns, name, node)
}

/// Events of groups ending in 3 are older than the 12 h window.
fn event_in_window(g: usize) -> bool {
    g % 10 != 3
}

/// What the patrol must report for a fixture.
#[derive(Debug)]
struct Expected {
    crash: usize,
    oom: usize,
    pending: usize,
    image_pull: usize,
    short_deployments: usize,
    workloads: usize,
    event_groups: usize,
    pending_pvcs: usize,
    tls: usize,
}

fn expected(s: Size) -> Expected {
    let count = |t| (0..s.pods).filter(|&i| plan(s, i).trouble == t).count();
    let groups: HashSet<_> = (0..s.event_groups())
        .filter(|&g| event_in_window(g))
        .map(|g| {
            let (reason, _, kind, ns, name, _) = event_group(s, g);
            (reason, kind, ns, name)
        })
        .collect();
    Expected {
        crash: count(Trouble::CrashLoop),
        oom: count(Trouble::OomKilled),
        pending: count(Trouble::Pending),
        image_pull: count(Trouble::ImagePull),
        short_deployments: deployment_counts(s).iter().filter(|(_, t)| *t > 0).count(),
        workloads: s.deployments() + s.statefulsets() + s.daemonsets(),
        event_groups: groups.len(),
        pending_pvcs: (0..s.pvcs()).filter(|j| j % 40 == 17).count(),
        tls: s.tls_secrets(),
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic names and ids.

fn seed(tag: u64, i: usize) -> u64 {
    (tag << 40) ^ i as u64
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hex(seed: u64, n: usize) -> String {
    let mut s = String::with_capacity(n + 16);
    let mut x = seed;
    while s.len() < n {
        x = mix(x);
        let _ = write!(s, "{x:016x}");
    }
    s.truncate(n);
    s
}

fn k8s_suffix(seed: u64, n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = mix(seed);
    (0..n)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x = mix(x);
            c
        })
        .collect()
}

fn uid(seed: u64) -> String {
    let h = hex(seed ^ 0x55, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn ts(ago: TimeDelta) -> String {
    (now() - ago).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rv(seed: u64) -> String {
    (10_000_000 + mix(seed) % 90_000_000).to_string()
}

// ---------------------------------------------------------------------------------------------
// Objects.

fn container(name: &str, image: &str, cpu: &str, mem: &str, sa_volume: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
        ],
        "env": [
            {"name": "RUST_LOG", "value": "info,tower_http=warn"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{name}-db"), "key": "url"}}}
        ],
        "resources": {
            "requests": {"cpu": cpu, "memory": mem},
            "limits": {"memory": mem}
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
            "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 10,
            "successThreshold": 1, "failureThreshold": 3
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3
        },
        "volumeMounts": [
            {"name": "config", "readOnly": true, "mountPath": "/etc/app"},
            {"name": sa_volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false
        }
    })
}

/// A sidecar or init container: no probes, no environment.
fn slim_container(name: &str, image: &str, cpu: &str, mem: &str, sa_volume: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"memory": mem}},
        "volumeMounts": [
            {"name": sa_volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

fn pod_json(s: Size, i: usize) -> Value {
    let p = plan(s, i);
    let (ns, name, app) = pod_identity(s, i);
    let created_min = match p.trouble {
        Trouble::Pending => 120,
        _ => 600 + mix(seed(4, i)) % (60 * 24 * 20),
    };
    let created = TimeDelta::minutes(created_min as i64);
    let sa_volume = format!("kube-api-access-{}", k8s_suffix(seed(5, i), 5));
    let version = format!("v1.{}.{}", i % 17, i % 5);
    let image = format!("registry.example.com/{app}:{version}");
    let cpu = ["100m", "250m", "500m", "50m"][i % 4];
    let mem = ["128Mi", "256Mi", "512Mi", "384Mi"][i % 4];
    let mut containers = vec![container("app", &image, cpu, mem, &sa_volume)];
    let sidecar = i.is_multiple_of(4);
    if sidecar {
        containers.push(slim_container(
            "envoy",
            "docker.io/envoyproxy/envoy:v1.31.2",
            "50m",
            "64Mi",
            &sa_volume,
        ));
    }
    let init = i % 8 == 1;
    let (owner_kind, owner_name, owner_uid) = match p.owner {
        Owner::DaemonSet(d) => ("DaemonSet", DAEMONSETS[d].1.to_string(), uid(seed(6, d))),
        Owner::StatefulSet(j, _) => ("StatefulSet", statefulset_name(j), uid(seed(7, j))),
        Owner::Deployment(j) => (
            "ReplicaSet",
            format!("{}-{}", deployment_name(j), template_hash(j)),
            uid(seed(8, j)),
        ),
    };
    let node = p.node.map(node_name);
    let started = ts(created - TimeDelta::seconds(20));
    let running = p.trouble != Trouble::Pending;
    let status_of = |c: &str, img: &str, k: u64| {
        let mut st = json!({
            "name": c,
            "state": {"running": {"startedAt": started}},
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "image": img,
            "imageID": format!("{}@sha256:{}", img.split(':').next().unwrap(), hex(seed(9, i) ^ k, 64)),
            "containerID": format!("containerd://{}", hex(seed(10, i) ^ k, 64)),
            "started": running,
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app", "readOnly": true, "recursiveReadOnly": "Disabled"},
                {"name": sa_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true, "recursiveReadOnly": "Disabled"}
            ]
        });
        if i % 13 == 5 {
            // An old restart, long outside the window.
            st["restartCount"] = json!(1);
            st["lastState"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": ts(TimeDelta::days(9)), "finishedAt": ts(TimeDelta::days(8)),
                "containerID": format!("containerd://{}", hex(seed(11, i) ^ k, 64))}});
        }
        st
    };
    let mut statuses = vec![status_of("app", &image, 1)];
    if sidecar {
        statuses.push(status_of("envoy", "docker.io/envoyproxy/envoy:v1.31.2", 2));
    }
    let main = &mut statuses[0];
    match p.trouble {
        Trouble::None => {}
        Trouble::CrashLoop => {
            main["ready"] = json!(false);
            main["restartCount"] = json!(20 + i % 40);
            main["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                "message": format!("back-off 5m0s restarting failed container=app pod={name}_{ns}({})", uid(seed(12, i)))}});
            main["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": ts(TimeDelta::minutes(4)), "finishedAt": ts(TimeDelta::minutes(3)),
                "containerID": format!("containerd://{}", hex(seed(11, i), 64))}});
        }
        Trouble::OomKilled => {
            main["restartCount"] = json!(1);
            main["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
                "startedAt": ts(TimeDelta::hours(30)), "finishedAt": ts(TimeDelta::hours(2)),
                "containerID": format!("containerd://{}", hex(seed(11, i), 64))}});
        }
        Trouble::ImagePull => {
            main["ready"] = json!(false);
            main["started"] = json!(false);
            main["state"] = json!({"waiting": {"reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}-rc1\"")}});
        }
        Trouble::Pending => {}
    }
    let ready = if running && p.trouble == Trouble::None {
        "True"
    } else {
        "False"
    };
    let mut conditions = vec![
        json!({"type": "PodReadyToStartContainers", "status": if running { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "Ready", "status": ready, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "ContainersReady", "status": ready, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(created)}),
    ];
    let host_ip = p.node.map(|n| format!("10.0.{}.{}", n / 200, n % 200 + 20));
    let pod_ip = format!("10.1.{}.{}", i / 250, i % 250 + 2);
    let mut status = json!({
        "phase": if running { "Running" } else { "Pending" },
        "conditions": [],
        "qosClass": "Burstable",
        "startTime": ts(created),
    });
    if running {
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = json!([{"ip": pod_ip}]);
        status["containerStatuses"] = json!(statuses);
        if init {
            status["initContainerStatuses"] = json!([{
                "name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": ts(created), "finishedAt": started,
                    "containerID": format!("containerd://{}", hex(seed(13, i), 64))}},
                "lastState": {}, "ready": true, "restartCount": 0, "image": image,
                "imageID": format!("registry.example.com/{app}@sha256:{}", hex(seed(9, i) ^ 1, 64)),
                "containerID": format!("containerd://{}", hex(seed(13, i), 64)), "started": false
            }]);
        }
    } else {
        conditions = vec![
            json!({"type": "PodScheduled", "status": "False", "lastProbeTime": null,
            "lastTransitionTime": ts(created), "reason": "Unschedulable",
            "message": format!("0/{n} nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory, {m} node(s) didn't match Pod's node affinity/selector. preemption: 0/{n} nodes are available: 2 No preemption victims found for incoming pod, {m} Preemption is not helpful for scheduling.", n = s.nodes, m = s.nodes - 3)}),
        ];
    }
    status["conditions"] = json!(conditions);
    let mut spec = json!({
        "volumes": [
            {"name": "config", "configMap": {"name": format!("{app}-config"), "defaultMode": 420}},
            {"name": sa_volume, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ], "defaultMode": 420}}
        ],
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": app,
        "serviceAccount": app,
        "securityContext": {"runAsUser": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ],
        "priority": 0,
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
    });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    if init {
        spec["initContainers"] = json!([slim_container(
            "migrate", &image, "100m", "128Mi", &sa_volume
        )]);
    }
    let mut labels = json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{ns}"),
        "app.kubernetes.io/part-of": ns.split('-').next().unwrap(),
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": "Helm",
    });
    if let Owner::Deployment(j) = p.owner {
        labels["pod-template-hash"] = json!(template_hash(j));
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": format!("{owner_name}-"),
            "namespace": ns,
            "uid": uid(seed(14, i)),
            "resourceVersion": rv(seed(14, i)),
            "creationTimestamp": ts(created),
            "labels": labels,
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": ts(created + TimeDelta::minutes(1)),
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090"
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name, "uid": owner_uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": spec,
        "status": status
    })
}

fn node_json(s: Size, n: usize) -> Value {
    let name = node_name(n);
    let ready = n != NOT_READY_NODE;
    let hb = ts(TimeDelta::seconds(30 + (n % 40) as i64));
    let since = ts(TimeDelta::days(12));
    let cond = |t: &str, on: bool, reason: &str, msg: &str| {
        json!({"type": t, "status": if on { "True" } else { "False" }, "lastHeartbeatTime": hb,
            "lastTransitionTime": since, "reason": reason, "message": msg})
    };
    let mut conditions = vec![
        cond(
            "MemoryPressure",
            n == PRESSURE_NODE,
            if n == PRESSURE_NODE {
                "KubeletHasInsufficientMemory"
            } else {
                "KubeletHasSufficientMemory"
            },
            "kubelet has sufficient memory available",
        ),
        cond(
            "DiskPressure",
            false,
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        cond(
            "PIDPressure",
            false,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        cond(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    if !ready {
        conditions[3] = json!({"type": "Ready", "status": "Unknown", "lastHeartbeatTime": ts(TimeDelta::hours(2)),
            "lastTransitionTime": ts(TimeDelta::minutes(115)), "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status."});
    }
    let images: Vec<Value> = (0..25)
        .map(|k| {
            let app = deployment_name((n * 25 + k) % s.deployments());
            json!({"names": [
                format!("registry.example.com/{app}@sha256:{}", hex(seed(16, n * 25 + k), 64)),
                format!("registry.example.com/{app}:v1.{}.{}", k % 17, k % 5)
            ], "sizeBytes": 20_000_000 + mix(seed(17, n * 25 + k)) % 400_000_000})
        })
        .collect();
    let ip = format!("10.0.{}.{}", n / 200, n % 200 + 20);
    let mut spec = json!({
        "podCIDR": format!("10.1.{}.0/24", n),
        "podCIDRs": [format!("10.1.{}.0/24", n)],
        "providerID": format!("aws:///eu-west-1{}/i-0{}", ["a", "b", "c"][n % 3], hex(seed(18, n), 16)),
    });
    if n == CORDONED_NODE {
        spec["unschedulable"] = json!(true);
        spec["taints"] = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": ts(TimeDelta::hours(5))}]);
    }
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": uid(seed(19, n)),
            "resourceVersion": rv(seed(19, n)),
            "creationTimestamp": ts(TimeDelta::days(40)),
            "labels": {
                "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "m6i.4xlarge",
                "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m6i.4xlarge",
                "topology.kubernetes.io/region": "eu-west-1",
                "topology.kubernetes.io/zone": format!("eu-west-1{}", ["a", "b", "c"][n % 3]),
                "eks.amazonaws.com/nodegroup": "general"
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"
            }
        },
        "spec": spec,
        "status": {
            "capacity": {"cpu": "16", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "65023512Ki", "pods": "110"},
            "allocatable": {"cpu": "15890m", "ephemeral-storage": "95551679124", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": "63461464Ki", "pods": "110"},
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name}
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hex(seed(20, n), 32), "systemUUID": uid(seed(21, n)),
                "bootID": uid(seed(22, n)), "kernelVersion": "6.1.112-124.190.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241111", "containerRuntimeVersion": "containerd://1.7.23",
                "kubeletVersion": "v1.33.1-eks-4b6d5b8", "kubeProxyVersion": "v1.33.1-eks-4b6d5b8",
                "operatingSystem": "linux", "architecture": "amd64"
            },
            "images": images
        }
    })
}

fn node_metrics_json(n: usize) -> Value {
    let mem_ki = if n == BUSY_NODE {
        63461464 * 95 / 100
    } else {
        20_000_000 + mix(seed(23, n)) % 20_000_000
    };
    json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": node_name(n), "creationTimestamp": ts(TimeDelta::zero()),
            "labels": {"kubernetes.io/hostname": node_name(n)}},
        "timestamp": ts(TimeDelta::seconds(12)),
        "window": "10.062s",
        "usage": {"cpu": format!("{}n", 1_000_000_000 + mix(seed(24, n)) % 8_000_000_000), "memory": format!("{mem_ki}Ki")}
    })
}

fn workload_json(kind: &str, ns: &str, name: &str, replicas: i32, available: i32, k: u64) -> Value {
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": format!("{name}-{ns}")});
    let template = json!({
        "metadata": {"labels": labels, "annotations": {"kubectl.kubernetes.io/restartedAt": ts(TimeDelta::days(3))}},
        "spec": {
            "containers": [container("app", &format!("registry.example.com/{name}:v1.4.2"), "250m", "256Mi", "kube-api-access")],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": name, "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "schedulerName": "default-scheduler"
        }
    });
    let meta = json!({
        "name": name, "namespace": ns, "uid": uid(k), "resourceVersion": rv(k), "generation": 7,
        "creationTimestamp": ts(TimeDelta::days(30)), "labels": labels,
        "annotations": {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns}
    });
    let t = ts(TimeDelta::hours(6));
    match kind {
        "Deployment" => json!({
            "kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": 7, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": available, "availableReplicas": available,
                "unavailableReplicas": replicas - available,
                "conditions": [
                    {"type": "Available", "status": if available == replicas { "True" } else { "False" },
                     "lastUpdateTime": t, "lastTransitionTime": t, "reason": "MinimumReplicasAvailable",
                     "message": "Deployment has minimum availability."},
                    {"type": "Progressing", "status": "True", "lastUpdateTime": t, "lastTransitionTime": t,
                     "reason": "NewReplicaSetAvailable",
                     "message": format!("ReplicaSet \"{name}\" has successfully progressed.")}
                ]}
        }),
        "StatefulSet" => json!({
            "kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template,
                "serviceName": name, "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "storageClassName": "gp3", "resources": {"requests": {"storage": "50Gi"}}, "volumeMode": "Filesystem"}}]},
            "status": {"observedGeneration": 7, "replicas": replicas, "readyReplicas": available,
                "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": available,
                "currentRevision": format!("{name}-{}", hex(k, 10)), "updateRevision": format!("{name}-{}", hex(k, 10)),
                "collisionCount": 0}
        }),
        _ => json!({
            "kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": meta,
            "spec": {"selector": {"matchLabels": labels}, "template": template,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10},
            "status": {"currentNumberScheduled": replicas, "numberMisscheduled": 0,
                "desiredNumberScheduled": replicas, "numberReady": available, "observedGeneration": 7,
                "updatedNumberScheduled": replicas, "numberAvailable": available}
        }),
    }
}

fn pvc_json(s: Size, j: usize) -> Value {
    let sts = s.statefulsets() * 3;
    let (ns, name) = if j < sts {
        let (k, o) = (j / 3, j % 3);
        (
            statefulset_ns(s, k),
            format!("data-{}-{o}", statefulset_name(k)),
        )
    } else {
        let d = (j - sts) * 10;
        (deployment_ns(s, d), format!("{}-cache", deployment_name(d)))
    };
    let pending = j % 40 == 17;
    let mut status = json!({"phase": if pending { "Pending" } else { "Bound" }});
    let mut spec = json!({"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
        "resources": {"requests": {"storage": "50Gi"}}, "volumeMode": "Filesystem"});
    if !pending {
        spec["volumeName"] = json!(format!("pvc-{}", uid(seed(25, j))));
        status["accessModes"] = json!(["ReadWriteOnce"]);
        status["capacity"] = json!({"storage": "50Gi"});
    }
    json!({
        "kind": "PersistentVolumeClaim", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": uid(seed(26, j)), "resourceVersion": rv(seed(26, j)),
            "creationTimestamp": ts(if pending { TimeDelta::hours(1) } else { TimeDelta::days(30) }),
            "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                "volume.beta.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"},
            "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": spec,
        "status": status
    })
}

fn event_json(s: Size, i: usize) -> Value {
    let g = i % s.event_groups();
    let (reason, msg, kind, ns, obj, node) = event_group(s, g);
    let ago = if event_in_window(g) {
        TimeDelta::minutes(1 + (mix(seed(27, i)) % (11 * 60)) as i64)
    } else {
        TimeDelta::hours(13 + (i % 24) as i64)
    };
    let first = ago + TimeDelta::minutes(30);
    let node = node_name(node);
    let mut involved = json!({"kind": kind, "name": obj, "uid": uid(seed(28, g)), "apiVersion": "v1",
        "resourceVersion": rv(seed(28, g))});
    if kind == "Pod" {
        involved["namespace"] = json!(ns);
        involved["fieldPath"] = json!("spec.containers{app}");
    }
    json!({
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": format!("{obj}.{}", hex(seed(29, i), 16)), "namespace": ns,
            "uid": uid(seed(29, i)), "resourceVersion": rv(seed(29, i)), "creationTimestamp": ts(first)},
        "involvedObject": involved,
        "reason": reason,
        "message": msg.replace("{obj}", &obj),
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(ago),
        "count": 1 + i % 5,
        "type": "Warning",
        "eventTime": null,
        "reportingComponent": "kubelet",
        "reportingInstance": node
    })
}

fn tls_secret_json(s: Size, j: usize) -> Value {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    json!({
        "kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/tls",
        "metadata": {"name": format!("{}-tls", deployment_name(j)), "namespace": namespace(s, j),
            "uid": uid(seed(30, j)), "resourceVersion": rv(seed(30, j)), "creationTimestamp": ts(TimeDelta::days(85))},
        "data": {"tls.crt": b64(SITE_CRT), "tls.key": b64("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")}
    })
}

// ---------------------------------------------------------------------------------------------
// The fixture server (child process).

/// One collection: its List kind and its objects, each serialized once.
struct Collection {
    list_kind: &'static str,
    api_version: &'static str,
    items: Vec<Vec<u8>>,
}

impl Collection {
    fn new(
        list_kind: &'static str,
        api_version: &'static str,
        objs: impl Iterator<Item = Value>,
    ) -> Self {
        Self {
            list_kind,
            api_version,
            items: objs.map(|o| serde_json::to_vec(&o).unwrap()).collect(),
        }
    }
    fn bytes(&self) -> usize {
        self.items.iter().map(Vec::len).sum()
    }
    /// A page from `start`, at most `limit` objects, with `continue` while more remain.
    fn page(&self, start: usize, limit: usize) -> Vec<u8> {
        let end = start.saturating_add(limit).min(self.items.len());
        let start = start.min(end);
        let rest = self.items.len() - end;
        let meta = if rest > 0 {
            json!({"resourceVersion": "123456789", "continue": end.to_string(), "remainingItemCount": rest})
        } else {
            json!({"resourceVersion": "123456789"})
        };
        let mut out = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{meta},\"items\":[",
            self.list_kind, self.api_version
        )
        .into_bytes();
        out.reserve(
            self.items[start..end]
                .iter()
                .map(|i| i.len() + 1)
                .sum::<usize>()
                + 2,
        );
        for (k, item) in self.items[start..end].iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

fn fixture(s: Size) -> HashMap<&'static str, Collection> {
    let counts = deployment_counts(s);
    let mut c = HashMap::new();
    c.insert(
        "/api/v1/nodes",
        Collection::new("NodeList", "v1", (0..s.nodes).map(|n| node_json(s, n))),
    );
    c.insert(
        "/apis/metrics.k8s.io/v1beta1/nodes",
        Collection::new(
            "NodeMetricsList",
            "metrics.k8s.io/v1beta1",
            (0..s.nodes)
                .filter(|&n| n != NOT_READY_NODE)
                .map(node_metrics_json),
        ),
    );
    c.insert(
        "/api/v1/pods",
        Collection::new("PodList", "v1", (0..s.pods).map(|i| pod_json(s, i))),
    );
    c.insert(
        "/apis/apps/v1/deployments",
        Collection::new(
            "DeploymentList",
            "apps/v1",
            counts.iter().enumerate().map(|(j, (replicas, troubled))| {
                workload_json(
                    "Deployment",
                    &deployment_ns(s, j),
                    &deployment_name(j),
                    *replicas,
                    replicas - troubled,
                    seed(31, j),
                )
            }),
        ),
    );
    c.insert(
        "/apis/apps/v1/statefulsets",
        Collection::new(
            "StatefulSetList",
            "apps/v1",
            (0..s.statefulsets()).map(|j| {
                workload_json(
                    "StatefulSet",
                    &statefulset_ns(s, j),
                    &statefulset_name(j),
                    3,
                    3,
                    seed(32, j),
                )
            }),
        ),
    );
    c.insert(
        "/apis/apps/v1/daemonsets",
        Collection::new(
            "DaemonSetList",
            "apps/v1",
            DAEMONSETS.iter().enumerate().map(|(d, (ns, name))| {
                let n = s.nodes as i32;
                workload_json("DaemonSet", ns, name, n, n, seed(6, d))
            }),
        ),
    );
    c.insert(
        "/api/v1/persistentvolumeclaims",
        Collection::new(
            "PersistentVolumeClaimList",
            "v1",
            (0..s.pvcs()).map(|j| pvc_json(s, j)),
        ),
    );
    c.insert(
        "/api/v1/events",
        Collection::new("EventList", "v1", (0..s.events).map(|i| event_json(s, i))),
    );
    c.insert(
        "/api/v1/secrets",
        Collection::new(
            "SecretList",
            "v1",
            (0..s.tls_secrets()).map(|j| tls_secret_json(s, j)),
        ),
    );
    // No cert-manager: /apis/cert-manager.io/v1/certificates answers 404 like a cluster without it.
    c
}

async fn answer(
    State(fixture): State<Arc<HashMap<&'static str, Collection>>>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let json_type = [(header::CONTENT_TYPE, "application/json")];
    let Some(c) = fixture.get(uri.path()) else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("the server could not find the requested resource ({})", uri.path()),
            "reason": "NotFound", "details": {}, "code": 404});
        return (StatusCode::NOT_FOUND, json_type, status.to_string()).into_response();
    };
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
    let page = c.page(
        num("continue").unwrap_or(0),
        num("limit").unwrap_or(usize::MAX),
    );
    (json_type, page).into_response()
}

/// Child: builds the fixture, prints `<port> <bytes of pods> <bytes in all>`, serves until its
/// stdin closes (the bench ended, however it ended).
fn serve(s: Size) {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fixture = fixture(s);
        let pods = fixture["/api/v1/pods"].bytes();
        let all: usize = fixture.values().map(Collection::bytes).sum();
        let app = Router::new().fallback(answer).with_state(Arc::new(fixture));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port} {pods} {all}").unwrap();
        out.flush().unwrap();
        drop(out);
        axum::serve(listener, app).await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// The bench (parent process).

/// The fixture server; killed when dropped, also on a panic.
struct Server {
    child: Child,
    port: u16,
    pod_bytes: usize,
    all_bytes: usize,
}

impl Server {
    fn start(s: Size) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--serve-fixture".to_string(),
                s.pods.to_string(),
                s.nodes.to_string(),
                s.events.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut server = Self {
            child,
            port: 0,
            pod_bytes: 0,
            all_bytes: 0,
        };
        let f: Vec<usize> = line
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(f.len(), 3, "fixture server said {line:?}");
        (server.port, server.pod_bytes, server.all_bytes) = (f[0] as u16, f[1], f[2]);
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn check(s: Size, r: &Report) {
    let e = expected(s);
    let text = r.render();
    let count = |subject: &str, problem: &str| {
        r.part
            .findings
            .iter()
            .filter(|f| f.subject.starts_with(subject) && f.problem.contains(problem))
            .count()
    };
    let has_fact = |fact: &str| r.part.facts.iter().any(|f| f.contains(fact));
    let mut wrong = Vec::new();
    let mut expect = |what: &str, got: usize, want: usize| {
        if got != want {
            wrong.push(format!("{what}: {got}, expected {want}"));
        }
    };
    expect(
        "crash-looping containers",
        count("pod ", "in CrashLoopBackOff"),
        e.crash,
    );
    expect(
        "OOM-killed containers",
        count("pod ", "was OOMKilled"),
        e.oom,
    );
    expect(
        "pods stuck Pending",
        count("pod ", "Pending for"),
        e.pending,
    );
    expect(
        "images that cannot be pulled",
        count("pod ", "cannot start: ImagePullBackOff"),
        e.image_pull,
    );
    expect(
        "deployments short of replicas",
        count("deployment ", " available"),
        e.short_deployments,
    );
    expect(
        "NotReady nodes",
        count(&format!("node {}", node_name(NOT_READY_NODE)), "NotReady"),
        1,
    );
    expect(
        "nodes under memory pressure",
        count(
            &format!("node {}", node_name(PRESSURE_NODE)),
            "MemoryPressure",
        ),
        1,
    );
    expect("cordoned nodes", count("node ", "cordoned"), 1);
    expect(
        "nodes using ≥ 90% memory",
        count(&format!("node {}", node_name(BUSY_NODE)), "memory use at"),
        1,
    );
    expect("pending PVCs", count("pvc ", "Pending for"), e.pending_pvcs);
    expect(
        "expiring certificates",
        count("secret ", "certificate expires"),
        e.tls,
    );
    let event_findings = r
        .part
        .findings
        .iter()
        .filter(|f| f.check == clawops::crd::cron::PatrolCheck::Events)
        .count();
    expect("warning event groups", event_findings, e.event_groups);
    for fact in [
        format!("pods: {} (", s.pods),
        format!(
            "workloads: {} of {} at full strength",
            e.workloads - e.short_deployments,
            e.workloads
        ),
        format!("in {} group(s)", e.event_groups),
        format!("nodes: {} of {} Ready", s.nodes - 1, s.nodes),
    ] {
        if !has_fact(&fact) {
            wrong.push(format!("no fact {fact:?}"));
        }
    }
    if !r.part.skipped.is_empty() {
        wrong.push(format!("reads skipped: {:?}", r.part.skipped));
    }
    assert!(
        wrong.is_empty(),
        "the patrol did not find what the fixture holds:\n  {}\n\nreport:\n{text}",
        wrong.join("\n  ")
    );
}

async fn bench(s: Size, runs: usize, server: &Server) {
    let mut config =
        kube::Config::new(format!("http://127.0.0.1:{}", server.port).parse().unwrap());
    config.default_namespace = "default".into();
    let client = kube::Client::try_from(config).unwrap();
    let spec = PatrolSpec::default();
    let now = now();

    let (base_rss, base_hwm) = (status_kib("VmRSS"), status_kib("VmHWM"));
    let mut times = Vec::new();
    let mut part = None;
    for _ in 0..runs {
        drop(part.take());
        let t = Instant::now();
        let p = cluster::collect(&client, &spec, now).await;
        times.push(t.elapsed());
        part = Some(p);
    }
    let part = part.unwrap();
    let findings = part.findings.len();
    let report = Report::new("cluster", now, &spec.thresholds.window, part);
    let text = report.render();
    let (rss, hwm) = (status_kib("VmRSS"), status_kib("VmHWM"));

    times.sort();
    let (best, median) = (times[0], times[times.len() / 2]);
    println!(
        "patrol fixture: {} pods ({:.1} KiB of JSON each on average), {} nodes, {} Warning events, \
         {} deployments, {} statefulsets, {} daemonsets, {} PVCs, {} TLS Secrets: {:.1} MiB of JSON, \
         read in pages of {}",
        s.pods,
        server.pod_bytes as f64 / s.pods as f64 / 1024.0,
        s.nodes,
        s.events,
        s.deployments(),
        s.statefulsets(),
        s.daemonsets(),
        s.pvcs(),
        s.tls_secrets(),
        server.all_bytes as f64 / 1048576.0,
        cluster::fetch::PAGE,
    );
    println!(
        "patrol collect: {} pods, {} nodes, {} events: best {:.2} s, median {:.2} s ({runs} run(s)); \
         peak RSS {:.1} MiB (+{:.1} MiB over {:.1} MiB baseline); findings {findings}; report {:.1} KiB",
        s.pods,
        s.nodes,
        s.events,
        secs(best),
        secs(median),
        mib(hwm),
        mib(hwm.saturating_sub(base_rss)),
        mib(base_rss),
        text.len() as f64 / 1024.0,
    );
    println!(
        "  (peak before the first collect {:.1} MiB; RSS after the runs {:.1} MiB)",
        mib(base_hwm),
        mib(rss)
    );
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "  targets: median ≤ {TARGET_SECS} s: {}; process peak RSS ≤ {TARGET_MIB} MiB: {}",
        met(secs(median) <= TARGET_SECS),
        met(mib(hwm) <= TARGET_MIB)
    );
    println!("  {}", report.summary());
    check(s, &report);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve-fixture") {
        let n = |k: usize| args[at + k].parse().unwrap();
        serve(Size::new(n(1), n(2), n(3)));
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let (size, runs) = if full {
        (Size::new(10_000, 100, 5_000), 5)
    } else {
        (Size::new(200, 5, 100), 1)
    };
    let server = Server::start(size);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(size, runs, &server));
    drop(server);
}
