//! The scale benchmark's smoke run (benches/operator) on 20 Agents: the real operator process
//! against the fake API server converges with one write per generated object and one status
//! write per CR, and then makes no write and lists nothing again.

// Also the fault tests' (operator_faults) harness.
#[path = "../../benches/operator/scale.rs"]
pub mod scale;

use crate::support::{fake_api, process};

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_agents_converge_with_one_write_per_object_then_stay_quiet() {
    let o = scale::Options {
        agents: 20,
        per_namespace: 10,
        write_latency: Duration::from_millis(2),
        concurrency: 4,
        steady: Duration::from_secs(3),
        binary: env!("CARGO_BIN_EXE_clawops").into(),
        timeout: Duration::from_secs(60),
    };
    let f = scale::run(&o).await.unwrap();
    f.print();
    for (what, per) in f.per_object() {
        assert!(per <= 1.0, "{what}: {per:.2} writes per object");
        assert!(per > 0.0, "{what}: never written");
    }
    assert_eq!(
        f.writes.get("agents").copied(),
        Some(20),
        "one finalizer write per Agent"
    );
    assert!(
        f.steady_writes.is_empty(),
        "writes in steady state: {:?}",
        f.steady_writes
    );
    assert!(
        f.steady_lists.is_empty(),
        "lists in steady state: {:?}",
        f.steady_lists
    );
    assert!(f.rss_peak_kib > 0, "the operator's RSS was read");
}
