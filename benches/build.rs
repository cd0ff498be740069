//! Benchmark (prints figures, asserts nothing about speed): the time to resolve, plan and
//! build every object for one Agent with 1 Channel and 2 Crons, and for 1,000 such Agents.
//!
//! Run with `make bench` (or `cargo bench --bench build`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawops::crd::{Agent, Channel, Cron};
use clawops::manifests::Manifests;
use clawops::plan::build::build_all;
use clawops::plan::{self, RunsIn, resolve};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

fn fixture() -> (Agent, Vec<Channel>, Vec<Cron>, Secret) {
    let path = format!(
        "{}/manifests/examples/shrimp.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut m = Manifests::from_files(&[path], "bench").expect("example parses");
    for v in m.secrets[0].string_data.as_mut().unwrap().values_mut() {
        *v = "a-real-looking-secret-value-0123456789".into();
    }
    m.agents[0].metadata.uid = Some("bench-uid".into());
    assert_eq!((m.channels.len(), m.crons.len()), (1, 2));
    (m.agents.remove(0), m.channels, m.crons, m.secrets.remove(0))
}

/// The whole pure part of a reconcile: assemble, plan, build.
fn build_one(agent: &Arc<Agent>, channels: &[Channel], crons: &[Cron], secret: &Secret) -> usize {
    let resolved = resolve::assemble(agent.clone(), channels.to_vec(), crons.to_vec(), |n| {
        (n == secret.name_any()).then(|| secret.clone())
    });
    let plan = plan::plan(&resolved, RunsIn::Cluster).expect("valid fixture");
    let objects = build_all(&plan, "ghcr.io/clawops/clawops:bench");
    objects.to_values().len()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test` this runs as a quick smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let (single_runs, agent_count) = if full { (2000, 1000) } else { (20, 10) };
    let (agent, channels, crons, secret) = fixture();
    let one = Arc::new(agent.clone());
    // Warm up.
    for _ in 0..50 {
        black_box(build_one(&one, &channels, &crons, &secret));
    }

    let mut samples: Vec<Duration> = (0..single_runs)
        .map(|_| {
            let t = Instant::now();
            black_box(build_one(&one, &channels, &crons, &secret));
            t.elapsed()
        })
        .collect();
    samples.sort();
    let objects = build_one(&one, &channels, &crons, &secret);
    println!("one Agent (1 Channel, 2 Crons) -> {objects} objects, {single_runs} runs:");
    println!(
        "  p50 {:?}  p99 {:?}  max {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().unwrap()
    );

    // 1,000 distinct Agents, each with its own Channel and Crons.
    let agents: Vec<(Arc<Agent>, Vec<Channel>, Vec<Cron>)> = (0..agent_count)
        .map(|i| {
            let mut a = agent.clone();
            let name = format!("agent-{i:04}");
            a.metadata.name = Some(name.clone());
            let ch: Vec<Channel> = channels
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.spec.agent_ref = name.clone();
                    c
                })
                .collect();
            let cr: Vec<Cron> = crons
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.spec.agent_ref = name.clone();
                    c
                })
                .collect();
            (Arc::new(a), ch, cr)
        })
        .collect();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut total = 0;
        for (a, ch, cr) in &agents {
            total += build_one(a, ch, cr, &secret);
        }
        black_box(total);
        runs.push(t.elapsed());
        assert_eq!(
            total,
            objects * agent_count,
            "every agent builds all its objects ({})",
            agents[0].0.name_any()
        );
    }
    runs.sort();
    println!(
        "{agent_count} Agents -> {} objects, 5 runs:",
        objects * agent_count
    );
    println!(
        "  best {:?}  median {:?}  worst {:?}",
        runs[0], runs[2], runs[4]
    );
}
