//! `cargo bench --bench operator [-- --agents 250,500,1000 --latency-ms 5 --concurrency 4
//! --steady-secs 60 --per-namespace 100 --binary PATH]`: the operator at scale against a fake API
//! server; prints convergence, writes, steady-state requests and RSS for each size, and RSS
//! growth per Agent between the smallest and largest. Under `cargo test` (no `--bench`) it runs
//! 20 Agents with a 3 s window as a smoke test.

#[path = "../../tests/it/support/fake_api.rs"]
#[allow(dead_code)]
mod fake_api;
#[path = "../../tests/it/support/process.rs"]
#[allow(dead_code)]
mod process;
mod scale;
#[path = "../../tests/it/support/selectors.rs"]
mod selectors;

use std::time::Duration;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} {v}: not a number"))
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = arg("--agents")
        .unwrap_or_else(|| if full { "250,500,1000" } else { "20" }.into())
        .split(',')
        .map(|s| s.parse().expect("--agents: numbers separated by commas"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rss = Vec::new();
    for agents in sizes {
        let o = scale::Options {
            agents,
            per_namespace: num("--per-namespace", 100),
            write_latency: Duration::from_millis(num("--latency-ms", 5)),
            concurrency: num("--concurrency", clawops::operator::DEFAULT_CONCURRENCY),
            steady: Duration::from_secs(num("--steady-secs", if full { 60 } else { 3 })),
            binary: arg("--binary").unwrap_or_else(|| env!("CARGO_BIN_EXE_clawops").into()),
            timeout: Duration::from_secs(num("--timeout-secs", 900)),
        };
        println!(
            "-- write latency {:?}, concurrency {}, {} Agents per namespace, steady window {:?}",
            o.write_latency, o.concurrency, o.per_namespace, o.steady
        );
        match rt.block_on(scale::run(&o)) {
            Ok(f) => {
                f.print();
                rss.push((f.agents, f.rss_steady_kib));
            }
            Err(e) => println!("== {agents} Agents: {e}"),
        }
    }
    if let (Some(first), Some(last)) = (rss.first(), rss.last())
        && last.0 > first.0
    {
        println!(
            "RSS growth per Agent ({} → {}): {:.1} KiB",
            first.0,
            last.0,
            (last.1 as f64 - first.1 as f64) / (last.0 - first.0) as f64
        );
    }
}
