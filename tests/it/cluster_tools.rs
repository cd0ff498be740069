//! The assistant's cluster tools through `ClusterTools::call` against the fake API server holding
//! the fixture cluster (tests/fixtures/cluster-tools.yaml): what each tool answers, the requests
//! it makes, Secrets refused before any request, and the API server's refusals turned into
//! results the model can act on.

use clawops::gateway::tools::ToolError;
use clawops::gateway::tools::cluster::ClusterTools;
use serde_json::{Value, json};

use crate::support::fake_api::FakeApi;

const FIXTURE: &str = include_str!("../fixtures/cluster-tools.yaml");

pub fn fixture() -> Vec<Value> {
    serde_yaml::Deserializer::from_str(FIXTURE)
        .map(|d| serde::Deserialize::deserialize(d).expect("fixture document"))
        .collect()
}

/// The fixture cluster, with metrics-server's usage when `metrics`.
pub fn cluster(metrics: bool) -> FakeApi {
    let api = FakeApi::new();
    for o in fixture() {
        let is_metrics = o["apiVersion"] == "metrics.k8s.io/v1beta1";
        if metrics || !is_metrics {
            api.insert(&o);
        }
    }
    api.take_log();
    api
}

fn tools(api: &FakeApi, pod_logs: bool) -> ClusterTools {
    ClusterTools::new(api.client(), pod_logs)
}

async fn ok(t: &ClusterTools, name: &str, args: Value) -> String {
    let out = t
        .call(name, &args)
        .await
        .unwrap_or_else(|e| panic!("{name} {args}: {e}"));
    assert!(
        !out.contains("hunter2"),
        "{name} {args} shows a secret:\n{out}"
    );
    out
}

async fn err(t: &ClusterTools, name: &str, args: Value) -> ToolError {
    t.call(name, &args)
        .await
        .expect_err(&format!("{name} {args} should fail"))
}

/// The one request a call made: its path and query.
fn only_request(api: &FakeApi) -> (String, String) {
    let log = api.take_log();
    assert_eq!(log.len(), 1, "{log:#?}");
    (log[0].path.clone(), log[0].query.clone())
}

#[tokio::test]
async fn list_shows_one_line_per_object_across_namespaces() {
    let api = cluster(true);
    let t = tools(&api, false);
    let out = ok(&t, "k8s_list", json!({"kind": "pods"})).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "NAMESPACE/NAME  READY  STATUS  RESTARTS  AGE  NODE"
    );
    assert_eq!(lines.len(), 7, "{out}");
    assert!(
        out.contains("prod/web-7d4b9c6f8-x2x9z  1/2  CrashLoopBackOff  12  "),
        "{out}"
    );
    assert!(
        out.contains("prod/backup-28971230-h7k2d  0/1  Completed  0  "),
        "{out}"
    );
    assert!(out.contains("prod/worker-1  0/1  Pending  0  "), "{out}");
    let (path, query) = only_request(&api);
    assert_eq!(path, "/api/v1/pods");
    assert!(query.contains("limit=50"), "{query}");

    let out = ok(
        &t,
        "k8s_list",
        json!({"kind": "Deployment", "namespace": "prod"}),
    )
    .await;
    assert!(out.contains("prod/web  2/3  3  2  "), "{out}");
    assert_eq!(
        only_request(&api).0,
        "/apis/apps/v1/namespaces/prod/deployments"
    );

    // Cluster-scoped kinds ignore a namespace.
    let out = ok(
        &t,
        "k8s_list",
        json!({"kind": "nodes", "namespace": "prod"}),
    )
    .await;
    assert!(
        out.contains("n2  NotReady,SchedulingDisabled  <none>  "),
        "{out}"
    );
    assert_eq!(only_request(&api).0, "/api/v1/nodes");

    for (kind, expect) in [
        (
            "pvc",
            "prod/data-worker-1  Pending  -  -  RWO  local-path  ",
        ),
        (
            "svc",
            "kube-system/traefik  LoadBalancer  10.43.12.7  192.0.2.10  80:30080/TCP,443:30443/TCP  ",
        ),
        (
            "ingresses",
            "prod/web  traefik  shop.example.com,www.example.com  192.0.2.10  80,443  ",
        ),
        ("statefulsets", "prod/worker  1/2  "),
        ("daemonsets", "kube-system/svclb-traefik  2  2  1  2  1  "),
        ("jobs", "prod/migrate-v3  Failed  0/1  "),
        (
            "cronjobs",
            "prod/backup  30 10 * * *  Asia/Shanghai  false  0  ",
        ),
        ("namespaces", "old-team  Terminating  "),
        ("configmaps", "prod/web-config  4  "),
    ] {
        let out = ok(&t, "k8s_list", json!({"kind": kind})).await;
        assert!(out.contains(expect), "{kind}: {out}");
    }
}

#[tokio::test]
async fn list_filters_by_label_and_says_what_it_left_out() {
    let api = cluster(true);
    let t = tools(&api, false);
    let out = ok(
        &t,
        "k8s_list",
        json!({"kind": "pods", "namespace": "prod", "labelSelector": "app in (web),pod-template-hash"}),
    )
    .await;
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines().skip(1).all(|l| l.starts_with("prod/web-")),
        "{out}"
    );
    let (_, query) = only_request(&api);
    assert!(query.contains("labelSelector="), "{query}");

    let out = ok(&t, "k8s_list", json!({"kind": "pods", "limit": 2})).await;
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.ends_with(
            "… 4 more not shown; raise limit (max 200) or narrow with namespace or labelSelector"
        ),
        "{out}"
    );
    // A filtered list is not counted by the API server.
    let out = ok(
        &t,
        "k8s_list",
        json!({"kind": "pods", "labelSelector": "app", "limit": 1}),
    )
    .await;
    assert!(
        out.ends_with(
            "… more not shown; raise limit (max 200) or narrow with namespace or labelSelector"
        ),
        "{out}"
    );
    let out = ok(
        &t,
        "k8s_list",
        json!({"kind": "pods", "namespace": "empty"}),
    )
    .await;
    assert_eq!(out, "no pods in namespace empty");
    let e = err(
        &t,
        "k8s_list",
        json!({"kind": "events", "labelSelector": "app=web"}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::BadArguments(m) if m.contains("k8s_events")),
        "{e}"
    );
    // A selector the API server cannot parse comes back as the model's to fix.
    let e = err(
        &t,
        "k8s_list",
        json!({"kind": "pods", "labelSelector": "app in web"}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::BadArguments(m) if m.contains("unable to parse requirement")),
        "{e}"
    );
}

#[tokio::test]
async fn get_describes_one_object() {
    let api = cluster(true);
    let t = tools(&api, false);
    let out = ok(
        &t,
        "k8s_get",
        json!({"kind": "pod", "name": "web-7d4b9c6f8-x2x9z", "namespace": "prod"}),
    )
    .await;
    assert!(out.starts_with("pod prod/web-7d4b9c6f8-x2x9z\n"), "{out}");
    for part in [
        "owner: ReplicaSet web-7d4b9c6f8",
        "status: CrashLoopBackOff (phase Running)  ready: 1/2  restarts: 12",
        "node: n1  ip: 10.42.0.17",
        "container app: image ghcr.io/example/shop:2.4.1  ready false  restarts 12",
        "  state: waiting CrashLoopBackOff",
        "  last: terminated Error exit 1 ",
        "conditions not True: ContainersReady False",
    ] {
        assert!(out.contains(part), "{part}: {out}");
    }
    assert!(
        !out.contains("STRIPE_KEY") && !out.contains("--token"),
        "{out}"
    );
    assert_eq!(
        only_request(&api).0,
        "/api/v1/namespaces/prod/pods/web-7d4b9c6f8-x2x9z"
    );

    // Without a namespace, found by name in all of them.
    let out = ok(&t, "k8s_get", json!({"kind": "deploy", "name": "web"})).await;
    assert!(
        out.contains("replicas: 3 desired, 3 updated, 2 ready, 2 available"),
        "{out}"
    );
    let (path, query) = only_request(&api);
    assert_eq!(path, "/apis/apps/v1/deployments");
    assert!(
        query.contains("fieldSelector=metadata.name%3Dweb"),
        "{query}"
    );
    let out = ok(&t, "k8s_get", json!({"kind": "services", "name": "web"})).await;
    assert!(out.starts_with("service prod/web\n"), "{out}");
    api.take_log();

    let out = ok(&t, "k8s_get", json!({"kind": "node", "name": "n2"})).await;
    assert!(
        out.contains("taints: node.kubernetes.io/unreachable:NoSchedule"),
        "{out}"
    );
    let out = ok(
        &t,
        "k8s_get",
        json!({"kind": "configmap", "name": "web-config", "namespace": "prod"}),
    )
    .await;
    assert!(
        out.contains("keys (4, values not shown):\n  DATABASE_URL: 41B"),
        "{out}"
    );

    assert_eq!(
        err(
            &t,
            "k8s_get",
            json!({"kind": "pod", "name": "nope", "namespace": "prod"})
        )
        .await,
        ToolError::Failed("no pod nope in namespace prod".into())
    );
    assert_eq!(
        err(&t, "k8s_get", json!({"kind": "pod", "name": "nope"})).await,
        ToolError::Failed("no pod nope in any namespace".into())
    );
}

#[tokio::test]
async fn a_name_in_two_namespaces_needs_one() {
    let api = cluster(false);
    let mut other = fixture()
        .into_iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == "web")
        .unwrap();
    other["metadata"]["namespace"] = json!("staging");
    api.insert(&other);
    let t = tools(&api, false);
    assert_eq!(
        err(&t, "k8s_get", json!({"kind": "services", "name": "web"})).await,
        ToolError::BadArguments(
            "service web exists in namespaces prod, staging; give `namespace`".into()
        )
    );
    let out = ok(
        &t,
        "k8s_get",
        json!({"kind": "services", "name": "web", "namespace": "staging"}),
    )
    .await;
    assert!(out.starts_with("service staging/web\n"), "{out}");
}

#[tokio::test]
async fn events_newest_first_of_an_object_a_namespace_or_all() {
    let api = cluster(false);
    let t = tools(&api, false);
    let out = ok(
        &t,
        "k8s_events",
        json!({"namespace": "prod", "kind": "pods", "name": "web-7d4b9c6f8-x2x9z"}),
    )
    .await;
    assert!(out.starts_with("events of pod web-7d4b9c6f8-x2x9z in namespace prod, newest first:\nLAST-SEEN  TYPE  REASON"), "{out}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.contains("  Warning  BackOff  prod/pod/web-7d4b9c6f8-x2x9z  287  Back-off restarting"),
        "{out}"
    );
    let (path, query) = only_request(&api);
    assert_eq!(path, "/api/v1/namespaces/prod/events");
    assert!(
        query.contains(
            "fieldSelector=involvedObject.kind%3DPod%2CinvolvedObject.name%3Dweb-7d4b9c6f8-x2x9z"
        ),
        "{query}"
    );

    let out = ok(&t, "k8s_events", json!({})).await;
    let rows: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(rows.len(), 5, "{out}");
    let reasons: Vec<&str> = rows.iter().map(|r| r.split("  ").nth(2).unwrap()).collect();
    assert_eq!(
        reasons,
        [
            "BackOff",
            "FailedScheduling",
            "NodeNotReady",
            "OOMKilling",
            "Completed"
        ],
        "{out}"
    );
    let out = ok(&t, "k8s_events", json!({"limit": 1})).await;
    assert!(
        out.ends_with("… 4 older not shown; raise limit (max 200) or ask for one object's events"),
        "{out}"
    );
    // k8s_list of events is the same, newest first.
    let out = ok(
        &t,
        "k8s_list",
        json!({"kind": "events", "namespace": "prod", "limit": 1}),
    )
    .await;
    assert!(
        out.contains("BackOff") && out.contains("3 older not shown"),
        "{out}"
    );
    let out = ok(&t, "k8s_events", json!({"kind": "Node", "name": "n2"})).await;
    assert!(
        out.contains("Normal  NodeNotReady  node/n2  1  Node n2 status is now: NodeNotReady"),
        "{out}"
    );
    let out = ok(
        &t,
        "k8s_events",
        json!({"kind": "ReplicaSet", "name": "web-7d4b9c6f8", "namespace": "prod"}),
    )
    .await;
    assert_eq!(
        out,
        "no events of replicaset web-7d4b9c6f8 in namespace prod (the API server keeps events about an hour)"
    );
}

#[tokio::test]
async fn pod_logs_when_opted_in_bounded_in_lines_and_bytes() {
    let api = cluster(false);
    let log: String = (1..=300).map(|i| format!("line {i}\n")).collect();
    api.set_log("prod", "web-7d4b9c6f8-x2x9z", "app", false, &log);
    api.set_log(
        "prod",
        "web-7d4b9c6f8-x2x9z",
        "app",
        true,
        "panic: connection refused\n",
    );
    api.set_log(
        "prod",
        "api-5f6d8-qwert",
        "api",
        false,
        &"x".repeat(100_000),
    );

    let off = tools(&api, false);
    assert!(!off.definitions().iter().any(|d| d.name == "pod_logs"));
    assert_eq!(
        err(
            &off,
            "pod_logs",
            json!({"name": "web-7d4b9c6f8-x2x9z", "namespace": "prod"})
        )
        .await,
        ToolError::Refused("pod_logs is not enabled for this agent (spec.tools.podLogs)".into())
    );
    assert!(api.take_log().is_empty(), "refused before any request");

    let t = tools(&api, true);
    assert!(t.definitions().iter().any(|d| d.name == "pod_logs"));
    let out = ok(
        &t,
        "pod_logs",
        json!({"name": "web-7d4b9c6f8-x2x9z", "namespace": "prod", "container": "app", "tailLines": 3}),
    )
    .await;
    assert_eq!(
        out,
        "log of pod prod/web-7d4b9c6f8-x2x9z container app, last 3 lines at most:\nline 298\nline 299\nline 300"
    );
    let (path, query) = only_request(&api);
    assert_eq!(path, "/api/v1/namespaces/prod/pods/web-7d4b9c6f8-x2x9z/log");
    assert!(
        query.contains("limitBytes=16384") && query.contains("tailLines=3"),
        "{query}"
    );

    let out = ok(
        &t,
        "pod_logs",
        json!({"name": "web-7d4b9c6f8-x2x9z", "namespace": "prod", "container": "app", "previous": true}),
    )
    .await;
    assert!(
        out.ends_with("(previous run), last 50 lines at most:\npanic: connection refused"),
        "{out}"
    );
    api.take_log();
    // tailLines is capped at 200 whatever the model asks.
    ok(&t, "pod_logs", json!({"name": "web-7d4b9c6f8-x2x9z", "namespace": "prod", "container": "app", "tailLines": 5000})).await;
    assert!(only_request(&api).1.contains("tailLines=200"));

    let out = ok(
        &t,
        "pod_logs",
        json!({"name": "api-5f6d8-qwert", "namespace": "prod"}),
    )
    .await;
    assert!(out.len() < 16_600, "{}", out.len());
    assert!(out.ends_with("(cut at 16 KiB; ask for fewer tailLines to see whole lines)"));

    // The API server's refusals, for the model to fix.
    let e = err(
        &t,
        "pod_logs",
        json!({"name": "web-7d4b9c6f8-x2x9z", "namespace": "prod"}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::BadArguments(m) if m.contains("choose one of: [app envoy]")),
        "{e}"
    );
    let e = err(
        &t,
        "pod_logs",
        json!({"name": "worker-0", "namespace": "prod", "previous": true}),
    )
    .await;
    assert!(
        matches!(&e, ToolError::BadArguments(m) if m.contains("previous terminated container")),
        "{e}"
    );
    assert_eq!(
        err(&t, "pod_logs", json!({"name": "gone", "namespace": "prod"})).await,
        ToolError::Failed("no pod gone in namespace prod".into())
    );
    assert!(matches!(
        err(&t, "pod_logs", json!({"name": "web"})).await,
        ToolError::BadArguments(m) if m == "pod_logs needs `namespace`"
    ));
}

#[tokio::test]
async fn usage_from_metrics_server_or_a_plain_answer_without_it() {
    let api = cluster(true);
    let t = tools(&api, false);
    let out = ok(&t, "k8s_usage", json!({"kind": "nodes"})).await;
    assert_eq!(
        out,
        "NAME  CPU(m)  CPU%  MEMORY(MiB)  MEMORY%\nn1  1234  30%  6144  77%\nn2  45  2%  2900  94%"
    );
    // Each node's share needs its allocatable, from the Nodes.
    let paths: Vec<String> = api.take_log().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/apis/metrics.k8s.io/v1beta1/nodes", "/api/v1/nodes"]
    );
    let out = ok(
        &t,
        "k8s_usage",
        json!({"kind": "pods", "namespace": "prod", "limit": 2}),
    )
    .await;
    assert_eq!(
        out,
        "NAMESPACE/NAME  CPU(m)  MEMORY(MiB)\nprod/worker-0  870  1536\nprod/api-5f6d8-qwert  312  498\n\
         … 1 smaller not shown; raise limit (max 200) or give a namespace\n\
         total of 3 pods: cpu 1207m, memory 2160MiB"
    );
    assert_eq!(
        only_request(&api).0,
        "/apis/metrics.k8s.io/v1beta1/namespaces/prod/pods"
    );

    let bare = cluster(false);
    let t = tools(&bare, false);
    for kind in ["nodes", "pods"] {
        assert_eq!(
            ok(&t, "k8s_usage", json!({"kind": kind})).await,
            "metrics-server is not installed (metrics.k8s.io not served); usage is unavailable"
        );
    }
    // Installed but down: the aggregator answers 503.
    api.reject(
        "GET",
        "/apis/metrics.k8s.io/v1beta1/nodes",
        503,
        "service unavailable",
    );
    let out = ok(&tools(&api, false), "k8s_usage", json!({"kind": "nodes"})).await;
    assert_eq!(
        out,
        "metrics-server is not answering (metrics.k8s.io: 503 service unavailable); usage is unavailable"
    );
    assert!(matches!(
        err(&t, "k8s_usage", json!({"kind": "disks"})).await,
        ToolError::BadArguments(m) if m.contains("nodes or pods")
    ));
}

#[tokio::test]
async fn secrets_are_refused_before_any_request() {
    let api = cluster(true);
    let t = tools(&api, true);
    let refused = ToolError::Refused("secrets are never readable by the assistant".into());
    for kind in ["secrets", "secret", "Secret", "SECRETS"] {
        assert_eq!(err(&t, "k8s_list", json!({"kind": kind})).await, refused);
        assert_eq!(
            err(
                &t,
                "k8s_get",
                json!({"kind": kind, "name": "db", "namespace": "prod"})
            )
            .await,
            refused
        );
        assert_eq!(
            err(&t, "k8s_events", json!({"kind": kind, "name": "db"})).await,
            refused
        );
    }
    let e = err(&t, "k8s_list", json!({"kind": "serviceaccounts"})).await;
    assert!(
        matches!(&e, ToolError::BadArguments(m) if m.contains("use one of: pods, deployments")),
        "{e}"
    );
    assert!(api.take_log().is_empty(), "no request was made");
}

#[tokio::test]
async fn no_render_shows_a_value_the_fixture_hides() {
    // "hunter2" sits in env values, commands, args, annotations and ConfigMap values; `ok`
    // fails on any output holding it.
    let api = cluster(true);
    let t = tools(&api, false);
    for o in fixture() {
        let kind = o["kind"].as_str().unwrap();
        if o["apiVersion"] == "metrics.k8s.io/v1beta1" {
            continue;
        }
        let mut args = json!({"kind": kind, "name": o["metadata"]["name"]});
        if let Some(ns) = o["metadata"]["namespace"].as_str() {
            args["namespace"] = json!(ns);
        }
        ok(&t, "k8s_get", args).await;
        ok(&t, "k8s_list", json!({"kind": kind})).await;
    }
}

#[tokio::test]
async fn arguments_are_checked_before_any_request() {
    let api = cluster(false);
    let t = tools(&api, true);
    for (tool, args, field) in [
        ("k8s_list", json!({}), "`kind`"),
        (
            "k8s_list",
            json!({"kind": "pods", "namespace": "../kube-system"}),
            "`namespace`",
        ),
        (
            "k8s_list",
            json!({"kind": "pods", "limit": "all"}),
            "`limit`",
        ),
        (
            "k8s_list",
            json!({"kind": "pods", "verb": "delete"}),
            "`verb`",
        ),
        (
            "k8s_get",
            json!({"kind": "pods", "name": "a/b", "namespace": "prod"}),
            "`name`",
        ),
        ("k8s_get", json!({"kind": "pods"}), "`name`"),
        (
            "pod_logs",
            json!({"name": "x", "namespace": "prod", "previous": "yes"}),
            "`previous`",
        ),
        (
            "pod_logs",
            json!({"name": "x", "namespace": "prod", "container": "A B"}),
            "`container`",
        ),
        ("k8s_events", json!({"name": 7}), "`name`"),
    ] {
        match t.call(tool, &args).await {
            Err(ToolError::BadArguments(m)) => assert!(m.contains(field), "{tool} {args}: {m}"),
            other => panic!("{tool} {args}: {other:?}"),
        }
    }
    assert_eq!(
        t.call("k8s_delete", &json!({})).await,
        Err(ToolError::Unknown("k8s_delete".into()))
    );
    assert!(api.take_log().is_empty(), "no request was made");
}

#[tokio::test]
async fn rbac_refusals_name_what_the_gateway_may_not_do() {
    let api = cluster(false);
    api.reject(
        "GET",
        "/api/v1/namespaces/prod/pods",
        403,
        "pods is forbidden: User \"system:serviceaccount:claw:shrimp-gateway\" cannot list resource \"pods\" in API group \"\" in the namespace \"prod\"",
    );
    api.reject(
        "GET",
        "/api/v1/namespaces/prod/pods/web-7d4b9c6f8-x2x9z/log",
        403,
        "pods \"web-7d4b9c6f8-x2x9z\" is forbidden: cannot get resource \"pods/log\"",
    );
    api.reject("GET", "/api/v1/nodes", 500, "etcdserver: request timed out");
    let t = tools(&api, true);
    let ToolError::Failed(m) =
        err(&t, "k8s_list", json!({"kind": "pods", "namespace": "prod"})).await
    else {
        panic!()
    };
    assert!(
        m.starts_with("the gateway's ServiceAccount may not list pods in namespace prod (RBAC: pods is forbidden: User"),
        "{m}"
    );
    assert!(
        m.ends_with("the read-only view is the clawops-cluster-reader ClusterRole)"),
        "{m}"
    );
    let ToolError::Failed(m) = err(
        &t,
        "pod_logs",
        json!({"name": "web-7d4b9c6f8-x2x9z", "namespace": "prod", "container": "app"}),
    )
    .await
    else {
        panic!()
    };
    assert!(
        m.starts_with("the gateway's ServiceAccount may not get pods/log in namespace prod"),
        "{m}"
    );
    assert_eq!(
        err(&t, "k8s_list", json!({"kind": "nodes"})).await,
        ToolError::Failed("the API server answered 500: etcdserver: request timed out".into())
    );
}
