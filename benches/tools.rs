//! Tool-calling benchmark (prints figures; asserts only that every turn was answered): the
//! gateway's own overhead per tool round — from the model's tool-call answer to its next
//! request, which is parsing the answer, running the tool (`nodes_list`, in memory), auditing
//! it and building the next request; the model answers instantly and is not counted — p50/p99
//! over sequential turns of three rounds, and the size of the tools schema sent with every
//! request (tokens cost money), with the cluster tools offered (an empty fake cluster).
//!
//! `make bench` (or `cargo bench --bench tools`); under `cargo test` it runs a short smoke.

#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code)] // the bench uses only the fakes of the tests' support
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::fake_llm::{Answer, FakeLlm};
use support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use support::process::{api_chat, free_port, get};

const TOKEN: &str = "bench-gateway-token-0123456789";
const ROUNDS: usize = 3;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let turns = if full { 300 } else { 5 };
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_with(
        "bench-tools",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
        ],
    );
    // A cluster (empty) so that the cluster tools are offered and counted in the schema.
    let api = support::fake_api::FakeApi::new();
    let kubeconfig = api.serve_http(yaml.parent().unwrap()).await;
    let kubeconfig = kubeconfig.to_str().unwrap().to_string();
    let port = free_port();
    let envs = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
        (
            "ZAI_API_KEY",
            "3f9a1c2b7e4d4c8a9b0e1f2a3b4c5d6e.AbCdEfGhIjKlMnOp",
        ),
        ("CLAWOPS_GATEWAY_TOKEN", TOKEN),
        ("RUST_LOG", "warn"),
    ];
    let _gw = support::start_gateway(&yaml, &yaml.with_file_name("state"), port, &envs);
    tokio::task::spawn_blocking(move || {
        while get(port, "/readyz").is_none_or(|r| r.code != 200) {
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .unwrap();

    let mut per_round = Vec::new();
    let mut turn_times = Vec::new();
    for t in 0..turns {
        let mut script: Vec<Answer> = (0..ROUNDS)
            .map(|_| Answer::Tools(vec![("nodes_list", json!({}))]))
            .collect();
        script.push(Answer::Text(format!("done {t}")));
        llm.script("glm-4.7", script);
        let before = llm.seen().len();
        let started = Instant::now();
        let reply = tokio::task::spawn_blocking(move || {
            api_chat(port, TOKEN, &format!("bench-{t}"), "what runs?")
        })
        .await
        .unwrap();
        turn_times.push(started.elapsed());
        assert_eq!(reply.code, 200, "{}", reply.body);
        assert!(reply.body.contains(&format!("done {t}")), "{}", reply.body);
        let seen = llm.seen();
        let turn = &seen[before..];
        assert_eq!(turn.len(), ROUNDS + 1);
        for pair in turn.windows(2) {
            per_round.push(pair[1].at.duration_since(pair[0].at));
        }
    }
    per_round.sort();
    turn_times.sort();
    let first = &llm.seen()[0].body;
    let schema = first["tools"].to_string();
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    println!(
        "tool rounds: {} turns of {ROUNDS} rounds each (nodes_list), model answering at once:",
        turns
    );
    println!(
        "  gateway overhead per round (tool-call answer -> next model request): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(pct(&per_round, 0.5)),
        ms(pct(&per_round, 0.99)),
        ms(*per_round.last().unwrap())
    );
    println!(
        "  whole turn over /api/chat (4 model calls): p50 {:.3} ms  p99 {:.3} ms",
        ms(pct(&turn_times, 0.5)),
        ms(pct(&turn_times, 0.99))
    );
    println!(
        "tools schema sent with every request: {} bytes (~{} tokens at 4 bytes a token) for {} tools: {}",
        schema.len(),
        schema.len() / 4,
        names.len(),
        names.join(", ")
    );
}
