//! The cluster patrol against a fake API serving a fixture cluster: every finding and its
//! suggested action, the all-clear of a healthy cluster, and reads the gateway may not make.

use crate::support::cluster::{self as fixture, now};
use crate::support::fake_api::FakeApi;
use clawops::crd::cron::{PatrolCheck, PatrolSpec};
use clawops::patrol::{Finding, Report, Severity, cluster};

async fn patrol(api: &FakeApi, spec: &PatrolSpec) -> Report {
    // A first patrol, as the gateway runs it: no earlier restart counts.
    let mut history = cluster::restarts::History::default();
    let part = cluster::run(&api.client(), spec, &mut history, now()).await;
    Report::new("cluster", now(), &spec.thresholds.window, part)
}

fn find<'a>(r: &'a Report, subject: &str, problem: &str) -> &'a Finding {
    r.part
        .findings
        .iter()
        .find(|f| f.subject == subject && f.problem.contains(problem))
        .unwrap_or_else(|| panic!("no finding {subject}: {problem} in\n{}", r.render()))
}

#[tokio::test]
async fn a_troubled_cluster_gives_every_finding_with_its_action() {
    let api = FakeApi::new();
    fixture::troubled(&api);
    let r = patrol(&api, &PatrolSpec::default()).await;

    let n3 = find(
        &r,
        "node n3",
        "NotReady (NodeStatusUnknown) since 2027-02-14 06:29 UTC",
    );
    assert_eq!(n3.severity, Severity::Critical);
    assert!(n3.action.starts_with("kubectl describe node n3"), "{n3:?}");
    let pressure = find(&r, "node n3", "MemoryPressure");
    assert_eq!(pressure.severity, Severity::Warning);

    let crash = find(
        &r,
        "pod web/api-7d9f",
        "container main in CrashLoopBackOff (12 restarts, last exit Error)",
    );
    assert_eq!(crash.severity, Severity::Critical);
    assert_eq!(
        crash.action,
        "kubectl -n web logs api-7d9f -c main --previous"
    );
    // A crash loop is not reported a second time as "restarted too often".
    assert!(
        !r.part
            .findings
            .iter()
            .any(|f| f.subject == "pod web/api-7d9f" && f.problem.contains("restarted"))
    );

    let oom = find(&r, "pod media/jellyfin-0", "OOMKilled 3h ago");
    assert!(
        oom.action
            .contains("raise resources.limits.memory of container main"),
        "{oom:?}"
    );

    let pull = find(
        &r,
        "pod web/frontend-5c",
        "cannot start: ImagePullBackOff (Back-off pulling image \"ghcr.io/me/frontend:v9\")",
    );
    assert_eq!(pull.severity, Severity::Critical);
    assert!(
        pull.action
            .contains("kubectl -n web describe pod frontend-5c")
    );

    let stuck = find(
        &r,
        "pod batch/report-x1",
        "Pending for 3d: 0/3 nodes are available: 3 Insufficient memory.",
    );
    assert!(
        stuck
            .action
            .contains("kubectl -n batch describe pod report-x1")
    );

    let deploy = find(&r, "deployment web/api", "0 of 2 available");
    assert_eq!(deploy.severity, Severity::Critical);
    assert_eq!(deploy.action, "kubectl -n web describe deployment api");

    let pvc = find(&r, "pvc data/postgres", "Pending for 1h");
    assert!(
        pvc.action
            .starts_with("kubectl -n data describe pvc postgres")
    );

    let tls = find(&r, "secret web/site-tls", "expires in 5 days");
    assert!(
        tls.action.contains("kubectl -n web get secret site-tls"),
        "{tls:?}"
    );
    assert!(tls.action.contains("openssl x509 -noout -enddate"));

    // Events: grouped by reason and object within the window, busiest first; the old one is out.
    let backoff = find(&r, "pod web/api-7d9f", "BackOff ×42");
    assert!(
        backoff
            .action
            .contains("--field-selector involvedObject.name=api-7d9f")
    );
    find(&r, "pod batch/report-x1", "FailedScheduling ×7");
    assert!(!r.render().contains("Evicted"), "{}", r.render());

    // The healthy objects make no finding.
    for quiet in [
        "node n1",
        "node n2",
        "pod web/site-1",
        "deployment web/site",
        "pvc web/site-data",
    ] {
        assert!(
            !r.part.findings.iter().any(|f| f.subject == quiet),
            "{quiet} reported:\n{}",
            r.render()
        );
    }
    let text = r.render();
    assert!(text.contains("nodes: 2 of 3 Ready"), "{text}");
    assert!(text.contains("PVCs: 1 of 2 Bound"), "{text}");
    assert!(text.contains("warning events in the last 12h: 49 in 2 group(s); top reasons: BackOff 42, FailedScheduling 7"), "{text}");
    assert!(
        text.contains("usage unknown (metrics-server not installed)"),
        "{text}"
    );
    // Critical findings come first.
    let first_warning = text.find("[warning]").unwrap();
    assert!(text.rfind("[critical]").unwrap() < first_warning, "{text}");
    // Nothing of the TLS key leaks into the report.
    assert!(!text.contains("PRIVATE KEY") && !text.contains("not-a-real-key"));
}

#[tokio::test]
async fn a_healthy_cluster_is_all_clear() {
    let api = FakeApi::new();
    fixture::healthy(&api);
    let r = patrol(&api, &PatrolSpec::default()).await;
    assert!(r.all_clear(), "{}", r.render());
    assert!(r.render().contains("All clear: no findings."));
    assert!(r.render().contains("nodes: 2 of 2 Ready"));
}

#[tokio::test]
async fn checks_and_thresholds_select_and_limit() {
    let api = FakeApi::new();
    fixture::troubled(&api);
    let spec = PatrolSpec {
        checks: vec![PatrolCheck::Storage, PatrolCheck::Certificates],
        thresholds: clawops::crd::cron::PatrolThresholds {
            cert_expiry_days: 3,
            ..Default::default()
        },
    };
    let r = patrol(&api, &spec).await;
    // Only storage: the certificate is 5 days from expiry, beyond 3.
    let subjects: Vec<&str> = r.part.findings.iter().map(|f| f.subject.as_str()).collect();
    assert_eq!(subjects, ["pvc data/postgres"], "{}", r.render());
    // Only what the checks need was read.
    let paths: Vec<String> = api.take_log().iter().map(|r| r.path.clone()).collect();
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("/pods") || p.contains("/nodes") || p.contains("/events")),
        "{paths:?}"
    );

    // A restart threshold of 1 turns the OOM-killed pod's single restart into a finding too.
    let spec = PatrolSpec {
        checks: vec![PatrolCheck::Workloads],
        thresholds: clawops::crd::cron::PatrolThresholds {
            restarts: 1,
            window: "4h".into(),
            ..Default::default()
        },
    };
    let r = patrol(&api, &spec).await;
    find(
        &r,
        "pod media/jellyfin-0",
        "restarted 1 times, the last 3h ago",
    );
    // With a 2h window, the 3h-old OOM kill is no longer news.
    let spec = PatrolSpec {
        checks: vec![PatrolCheck::Workloads],
        thresholds: clawops::crd::cron::PatrolThresholds {
            window: "2h".into(),
            ..Default::default()
        },
    };
    let r = patrol(&api, &spec).await;
    assert!(
        !r.part
            .findings
            .iter()
            .any(|f| f.subject == "pod media/jellyfin-0"),
        "{}",
        r.render()
    );
}

#[tokio::test]
async fn reads_the_gateway_may_not_make_are_named_not_fatal() {
    let api = FakeApi::new();
    fixture::troubled(&api);
    api.reject("GET", "/api/v1/secrets", 403, "secrets is forbidden");
    api.reject(
        "GET",
        "/apis/cert-manager.io/v1/certificates",
        404,
        "the server could not find the requested resource",
    );
    api.reject(
        "GET",
        "/api/v1/persistentvolumeclaims",
        403,
        "persistentvolumeclaims is forbidden",
    );
    let r = patrol(&api, &PatrolSpec::default()).await;
    let text = r.render();
    assert!(text.contains("Not checked:"), "{text}");
    assert!(
        text.contains("TLS Secrets: not readable — the read-only role grants no Secrets"),
        "{text}"
    );
    assert!(
        text.contains(
            "persistentvolumeclaims: not permitted — the gateway needs clusterAccess: read"
        ),
        "{text}"
    );
    // cert-manager missing is not news; the rest of the patrol still ran.
    assert!(!text.contains("- cert-manager Certificates"), "{text}");
    find(&r, "node n3", "NotReady");
}

#[tokio::test]
async fn cert_manager_certificates_are_checked_and_their_secrets_not_twice() {
    let api = FakeApi::new();
    fixture::healthy(&api);
    api.insert(&fixture::tls_secret("web", "site-tls", fixture::SITE_CRT));
    api.insert(&serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "site", "namespace": "web"},
        "spec": {"secretName": "site-tls", "dnsNames": ["site.example.com"]},
        "status": {"notAfter": "2027-02-19T08:29:07Z", "conditions": [{"type": "Ready", "status": "True"}]},
    }));
    api.insert(&serde_json::json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "blog", "namespace": "web"},
        "spec": {"secretName": "blog-tls"},
        "status": {"conditions": [{"type": "Ready", "status": "False", "message": "Issuing certificate as Secret does not exist"}]},
    }));
    let r = patrol(&api, &PatrolSpec::default()).await;
    let site = find(&r, "certificate web/site", "expires in 5 days");
    assert_eq!(site.action, "kubectl -n web describe certificate site");
    assert!(
        !r.part
            .findings
            .iter()
            .any(|f| f.subject == "secret web/site-tls"),
        "{}",
        r.render()
    );
    find(
        &r,
        "certificate web/blog",
        "Issuing certificate as Secret does not exist",
    );
}

#[tokio::test]
async fn node_usage_comes_from_metrics_server_when_installed() {
    let api = FakeApi::new();
    fixture::healthy(&api);
    for (node, memory) in [("n1", "7900Mi"), ("n2", "1Gi")] {
        api.insert(&serde_json::json!({
            "apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
            "metadata": {"name": node}, "timestamp": "2027-02-14T08:29:00Z", "window": "30s",
            "usage": {"cpu": "2000000000n", "memory": memory},
        }));
    }
    let r = patrol(&api, &PatrolSpec::default()).await;
    // 2 + 2 of 8 cores; (7900 + 1024) MiB of 16 GiB.
    assert!(
        r.render().contains("usage CPU 50%, memory 54%"),
        "{}",
        r.render()
    );
    let tight = find(&r, "node n1", "memory use at 96% of allocatable");
    assert_eq!(tight.action, "kubectl top pods -A --sort-by=memory");
    assert!(!r.part.findings.iter().any(|f| f.subject == "node n2"));
}

#[tokio::test]
async fn restarts_count_since_an_earlier_patrol_within_the_window() {
    use clawops::patrol::cluster::restarts::Counts;
    let api = FakeApi::new();
    fixture::healthy(&api);
    // 7 restarts in all, the last an hour ago.
    api.insert(&fixture::pod(
        "media",
        "sonarr-0",
        "Running",
        serde_json::json!({"restartCount": 7, "lastState": {"terminated": {"reason": "Error", "finishedAt": fixture::ts(chrono::Duration::hours(1))}}}),
    ));
    let spec = PatrolSpec::default();
    let mut snap = cluster::fetch(&api.client(), &spec).await;
    let at = |h| now() - chrono::Duration::hours(h);
    let analyze = |snap: &cluster::Snapshot| {
        Report::new(
            "cluster",
            now(),
            "12h",
            cluster::analyze(snap, &spec, now()),
        )
    };
    // Without an earlier patrol: the total and the last exit.
    find(
        &analyze(&snap),
        "pod media/sonarr-0",
        "restarted 7 times, the last 1h ago",
    );

    // Six hours ago it had restarted 3 times: 4 since then.
    snap.baseline = Some(Counts {
        at: at(6),
        counts: [("media/sonarr-0/main".to_string(), 3)].into(),
    });
    find(
        &analyze(&snap),
        "pod media/sonarr-0",
        "restarted 4 times in the last 6h (7 in total)",
    );

    // It had already restarted 6 times: 1 since then is under the limit of 3.
    snap.baseline = Some(Counts {
        at: at(6),
        counts: [("media/sonarr-0/main".to_string(), 6)].into(),
    });
    let r = analyze(&snap);
    assert!(
        !r.part
            .findings
            .iter()
            .any(|f| f.subject == "pod media/sonarr-0"),
        "{}",
        r.render()
    );
}

#[tokio::test]
async fn a_job_pod_killed_for_memory_is_reported() {
    let api = FakeApi::new();
    fixture::healthy(&api);
    // restartPolicy Never: the kill stays in `state`, not `lastState`.
    api.insert(&fixture::pod(
        "backup",
        "nightly-29000000-x7k2p",
        "Failed",
        serde_json::json!({"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": fixture::ts(chrono::Duration::hours(2))}}}),
    ));
    let r = patrol(&api, &PatrolSpec::default()).await;
    find(
        &r,
        "pod backup/nightly-29000000-x7k2p",
        "container main was OOMKilled 2h ago",
    );
}
