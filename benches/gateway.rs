//! Gateway benchmark (prints figures; asserts only that every message was answered): idle RSS,
//! time from start to `/readyz` OK, and per-message overhead against instant fakes — update
//! handed out by getUpdates → model request sent, and model answer → sendMessage — p50/p99
//! with 100 concurrent chats, plus messages per second.
//!
//! `make bench` (or `cargo bench --bench gateway`); under `cargo test` it runs a short smoke.

#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code)] // the bench uses only the fakes of the tests' support
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::fake_llm::FakeLlm;
use support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use support::process::{Reaper, free_port, get};

fn config(llm: &FakeLlm, tg: &FakeTelegram) -> PathBuf {
    support::example_with(
        "bench",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                "    dmPolicy: open\n    allowFrom: [\"*\"]\n".to_string(),
            ),
            ("maxConcurrent: 1\n", "maxConcurrent: 64\n".to_string()),
        ],
    )
}

fn start(yaml: &std::path::Path, port: u16) -> Reaper {
    let envs = [
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
        (
            "ZAI_API_KEY",
            "3f9a1c2b7e4d4c8a9b0e1f2a3b4c5d6e.AbCdEfGhIjKlMnOp",
        ),
        ("CLAWOPS_GATEWAY_TOKEN", "bench-gateway-token-0123456789"),
        ("RUST_LOG", "warn"),
    ];
    support::start_gateway(yaml, &yaml.with_file_name("state"), port, &envs)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (starts, rounds, chats) = if full { (5, 10, 100) } else { (1, 1, 10) };
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = config(&llm, &tg);

    // Start to /readyz.
    let mut start_times = Vec::new();
    let mut gw = None;
    for _ in 0..starts {
        drop(gw.take());
        let port = free_port();
        let t = Instant::now();
        let g = start(&yaml, port);
        let took = tokio::task::spawn_blocking(move || {
            while get(port, "/readyz").is_none_or(|r| r.code != 200) {
                std::thread::sleep(Duration::from_micros(200));
            }
            t.elapsed()
        })
        .await
        .unwrap();
        start_times.push(took);
        gw = Some((g, port));
    }
    start_times.sort();
    let (g, port) = gw.unwrap();
    tokio::task::spawn_blocking(move || {
        while !get(port, "/health").is_some_and(|r| r.body.contains("@shrimp_bot")) {
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(g.0.id());

    // Per-message overhead, `chats` chats at once, `rounds` times.
    let (mut inbound, mut outbound) = (Vec::new(), Vec::new());
    let wall = Instant::now();
    for r in 0..rounds {
        let texts: Vec<String> = (0..chats).map(|i| format!("bench-{r}-{i}")).collect();
        for (i, t) in texts.iter().enumerate() {
            tg.dm(1_000_000 + i as i64, &format!("user{i}"), t);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while tg
            .sent()
            .iter()
            .filter(|s| s.text.contains(&format!("bench-{r}-")))
            .count()
            < chats
        {
            assert!(
                Instant::now() < deadline,
                "round {r}: not every message was answered"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let seen = llm.seen();
        let sent = tg.sent();
        for t in &texts {
            let asked = seen
                .iter()
                .find(|s| s.body["messages"].as_array().unwrap().last().unwrap()["content"] == *t)
                .unwrap()
                .at;
            let answered = sent
                .iter()
                .find(|s| s.text.ends_with(&format!(" {t}")))
                .unwrap()
                .at;
            inbound.push(asked.duration_since(tg.delivered_at(t).unwrap()));
            outbound.push(answered.duration_since(asked));
        }
    }
    let elapsed = wall.elapsed();
    inbound.sort();
    outbound.sort();
    let total = rounds * chats;
    println!(
        "gateway start to /readyz OK ({starts} starts): best {:?}, median {:?}",
        start_times[0],
        start_times[start_times.len() / 2]
    );
    println!("idle RSS after connecting: {:.1} MiB", idle as f64 / 1024.0);
    println!("{total} messages in {rounds} rounds of {chats} concurrent chats, instant fakes:");
    println!(
        "  update handed out -> model request sent: p50 {:?}  p99 {:?}",
        pct(&inbound, 0.5),
        pct(&inbound, 0.99)
    );
    println!(
        "  model answer -> sendMessage received:    p50 {:?}  p99 {:?}",
        pct(&outbound, 0.5),
        pct(&outbound, 0.99)
    );
    println!(
        "  throughput: {:.0} messages/s",
        total as f64 / elapsed.as_secs_f64()
    );

    // The same, one message at a time and paced under Telegram's 30 messages/s, so neither
    // the model slots nor the send throttle queue anything: the gateway's own overhead.
    let (mut seq_in, mut seq_out) = (Vec::new(), Vec::new());
    for i in 0..(if full { 100 } else { 5 }) {
        let t = format!("solo-{i}");
        tg.dm(2_000_000 + i, &format!("solo{i}"), &t);
        let deadline = Instant::now() + Duration::from_secs(10);
        let sent = loop {
            if let Some(s) = tg
                .sent()
                .into_iter()
                .find(|s| s.text.ends_with(&format!(" {t}")))
            {
                break s;
            }
            assert!(Instant::now() < deadline, "{t} was not answered");
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        let asked = llm
            .seen()
            .into_iter()
            .find(|s| s.body["messages"].as_array().unwrap().last().unwrap()["content"] == *t)
            .unwrap()
            .at;
        seq_in.push(asked.duration_since(tg.delivered_at(&t).unwrap()));
        seq_out.push(sent.at.duration_since(asked));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    seq_in.sort();
    seq_out.sort();
    println!("{} messages one at a time (no queueing):", seq_in.len());
    println!(
        "  update handed out -> model request sent: p50 {:?}  p99 {:?}",
        pct(&seq_in, 0.5),
        pct(&seq_in, 0.99)
    );
    println!(
        "  model answer -> sendMessage received:    p50 {:?}  p99 {:?}",
        pct(&seq_out, 0.5),
        pct(&seq_out, 0.99)
    );
    let busy = rss_kib(g.0.id());
    println!("RSS after the run: {:.1} MiB", busy as f64 / 1024.0);
}
