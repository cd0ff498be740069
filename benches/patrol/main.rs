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
const SITE_CRT: &str = include_str!("../../tests/fixtures/site-tls.crt");
const TARGET_SECS: f64 = 1.0;
const TARGET_MIB: f64 = 100.0;

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

mod layout;
mod objects;
mod server;

use layout::*;
use objects::*;
use server::*;

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
        let mut history = cluster::restarts::History::default();
        let p = cluster::run(&client, &spec, &mut history, now).await;
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
