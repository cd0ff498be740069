//! The fixture's layout: which pod belongs to what, runs where and is in what trouble, and what
//! the patrol must therefore find. Shared by the server and the bench, so the measured process
//! never builds the fixture's JSON.

use super::*;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Size {
    pub(crate) pods: usize,
    pub(crate) nodes: usize,
    pub(crate) events: usize,
}

impl Size {
    pub(crate) fn new(pods: usize, nodes: usize, events: usize) -> Self {
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
    pub(crate) fn namespaces(self) -> usize {
        (self.pods / 200).clamp(5, 50)
    }
    pub(crate) fn daemonsets(self) -> usize {
        DAEMONSETS.len()
    }
    pub(crate) fn statefulsets(self) -> usize {
        (self.pods / 500).max(1)
    }
    pub(crate) fn deployments(self) -> usize {
        (self.pods * 3 / 100).max(3)
    }
    pub(crate) fn first_deployment_pod(self) -> usize {
        self.daemonsets() * self.nodes + self.statefulsets() * 3
    }
    pub(crate) fn pvcs(self) -> usize {
        self.statefulsets() * 3 + self.deployments() / 10
    }
    pub(crate) fn tls_secrets(self) -> usize {
        (self.namespaces() / 5).max(1)
    }
    pub(crate) fn event_groups(self) -> usize {
        (self.events / 25).clamp(1, 200)
    }
}

pub(crate) const DAEMONSETS: &[(&str, &str)] = &[
    ("kube-system", "kube-proxy"),
    ("kube-system", "aws-node"),
    ("kube-system", "ebs-csi-node"),
    ("monitoring", "node-exporter"),
    ("logging", "fluent-bit"),
];
pub(crate) const TEAMS: &[&str] = &[
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
pub(crate) const APPS: &[&str] = &[
    "api", "worker", "web", "cron", "gateway", "sync", "ingest", "render", "auth", "export",
];
pub(crate) const NOT_READY_NODE: usize = 3;
pub(crate) const PRESSURE_NODE: usize = 1;
pub(crate) const CORDONED_NODE: usize = 2;
pub(crate) const BUSY_NODE: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Owner {
    DaemonSet(usize),
    StatefulSet(usize, usize),
    Deployment(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Trouble {
    None,
    CrashLoop,
    OomKilled,
    Pending,
    ImagePull,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct PodPlan {
    pub(crate) owner: Owner,
    pub(crate) node: Option<usize>,
    pub(crate) trouble: Trouble,
}

pub(crate) fn plan(s: Size, i: usize) -> PodPlan {
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

pub(crate) fn namespace(s: Size, n: usize) -> String {
    let n = n % s.namespaces();
    let env = if n < TEAMS.len() { "prod" } else { "staging" };
    format!("{}-{env}", TEAMS[n % TEAMS.len()])
}

pub(crate) fn deployment_ns(s: Size, j: usize) -> String {
    namespace(s, j)
}

pub(crate) fn deployment_name(j: usize) -> String {
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

pub(crate) fn statefulset_ns(s: Size, j: usize) -> String {
    namespace(s, j * 7 + 3)
}

pub(crate) fn statefulset_name(j: usize) -> String {
    let kinds = ["postgres", "redis", "kafka", "elasticsearch", "rabbitmq"];
    format!("{}-{}", kinds[j % kinds.len()], j / kinds.len())
}

pub(crate) fn node_name(n: usize) -> String {
    format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        n / 200,
        n % 200 + 20
    )
}

/// (namespace, name, app name) of pod `i`.
pub(crate) fn pod_identity(s: Size, i: usize) -> (String, String, String) {
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

pub(crate) fn template_hash(j: usize) -> String {
    k8s_suffix(seed(3, j), 10)
}

/// Per Deployment: (replicas, pods in trouble).
pub(crate) fn deployment_counts(s: Size) -> Vec<(i32, i32)> {
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

pub(crate) const POD_REASONS: &[(&str, &str)] = &[
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
pub(crate) const NODE_REASONS: &[(&str, &str)] = &[
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
pub(crate) fn event_group(
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
pub(crate) fn event_in_window(g: usize) -> bool {
    g % 10 != 3
}

/// What the patrol must report for a fixture.
#[derive(Debug)]
pub(crate) struct Expected {
    pub(crate) crash: usize,
    pub(crate) oom: usize,
    pub(crate) pending: usize,
    pub(crate) image_pull: usize,
    pub(crate) short_deployments: usize,
    pub(crate) workloads: usize,
    pub(crate) event_groups: usize,
    pub(crate) pending_pvcs: usize,
    pub(crate) tls: usize,
}

pub(crate) fn expected(s: Size) -> Expected {
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

pub(crate) fn seed(tag: u64, i: usize) -> u64 {
    (tag << 40) ^ i as u64
}

pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn hex(seed: u64, n: usize) -> String {
    let mut s = String::with_capacity(n + 16);
    let mut x = seed;
    while s.len() < n {
        x = mix(x);
        let _ = write!(s, "{x:016x}");
    }
    s.truncate(n);
    s
}

pub(crate) fn k8s_suffix(seed: u64, n: usize) -> String {
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

pub(crate) fn uid(seed: u64) -> String {
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

pub(crate) fn ts(ago: TimeDelta) -> String {
    (now() - ago).to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn rv(seed: u64) -> String {
    (10_000_000 + mix(seed) % 90_000_000).to_string()
}
