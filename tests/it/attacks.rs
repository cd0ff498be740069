//! The attack table of the README's Security section, against the real gateway binary: every
//! `/api` route — taken from the gateway's own route list, so a new route is attacked too — with
//! every method, tried without a token, with a wrong one, with a cookie from before the token
//! was rotated, with the right token in the URL, and (for methods that change something) as a
//! cross-site request carrying a valid cookie but not the Control UI's header. Nothing may reach
//! a handler: each answer must be 401, 403, 405 or 429.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::process::*;
use crate::support::{self};

const OLD: &str = "old-gateway-token-0123456789abcdef";
const NEW: &str = "new-gateway-token-fedcba9876543210";
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A path of the route list with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{name}", "morning-patrol")
        .replace("{channel}", "telegram")
        .replace("{action}", "approve")
        .replace("{id}", "desk")
}

fn start(yaml: &std::path::Path, state: &std::path::Path, port: u16, token: &str) -> Reaper {
    let gw = support::start_gateway(
        yaml,
        state,
        port,
        &[
            ("CLAWOPS_GATEWAY_TOKEN", token),
            (
                "TELEGRAM_BOT_TOKEN",
                "123456:not-a-real-bot-token-for-attacks",
            ),
            ("ZAI_API_KEY", "not-a-real-model-key"),
        ],
    );
    wait_for_http(port, "/healthz");
    gw
}

/// The session cookie the sign-in link sets for `token`.
fn sign_in(port: u16, token: &str) -> String {
    let r = get(port, &format!("/?token={token}")).unwrap();
    assert_eq!(r.code, 303, "{}", r.body);
    r.headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn no_api_route_lets_an_attack_through() {
    // Behind a trusted proxy each attempt comes from its own client address, so the failure
    // limit (which would answer 429 to everything after ten) does not hide the answer itself.
    let yaml = support::example_with(
        "attacks",
        &[(
            "  gateway:\n",
            "  gateway:\n    trustedProxies: [\"127.0.0.1\"]\n".into(),
        )],
    );
    let state = support::temp_dir("attacks-state");
    let port = free_port();
    // A cookie from before the token was rotated.
    let mut gw = start(&yaml, &state, port, OLD);
    let stale = sign_in(port, OLD);
    gw.terminate(Duration::from_secs(10));
    let mut gw = start(&yaml, &state, port, NEW);
    let valid = sign_in(port, NEW);

    let paths = clawops::gateway::api::http::api_paths();
    assert!(
        paths.len() >= 16 && paths.contains(&"/api/nodes/{id}/exec"),
        "the route list: {paths:?}"
    );
    let mut client = 0u32;
    let mut tried: BTreeMap<&str, (usize, Vec<String>)> = BTreeMap::new();
    for path in &paths {
        let path = concrete(path);
        for method in METHODS {
            let changes = *method != "GET";
            let rows: Vec<(&str, String, Vec<String>)> = [
                ("no token", path.clone(), vec![]),
                (
                    "wrong token",
                    path.clone(),
                    vec![format!("Authorization: Bearer {OLD}")],
                ),
                (
                    "expired cookie",
                    path.clone(),
                    vec![format!("Cookie: {stale}")],
                ),
                ("token in the URL", format!("{path}?token={NEW}"), vec![]),
            ]
            .into_iter()
            .chain(changes.then(|| {
                (
                    "cross-site request",
                    path.clone(),
                    vec![
                        format!("Cookie: {valid}"),
                        "Origin: https://evil.example".to_string(),
                    ],
                )
            }))
            .collect();
            for (row, target, mut headers) in rows {
                client += 1;
                headers.push(format!(
                    "X-Forwarded-For: 10.9.{}.{}",
                    client / 250,
                    client % 250 + 1
                ));
                headers.push("Content-Type: application/json".into());
                let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
                let r = request(port, method, &target, &refs, "{}").expect("an answer");
                let entry = tried.entry(row).or_default();
                entry.0 += 1;
                if !matches!(r.code, 401 | 403 | 405 | 429) {
                    entry
                        .1
                        .push(format!("{method} {target}: {} {}", r.code, r.body));
                }
            }
        }
    }
    // The table the README reports.
    for (row, (n, passed)) in &tried {
        println!("attack {row:<20} {n:>4} attempts, {} passed", passed.len());
    }
    let passed: Vec<&String> = tried.values().flat_map(|(_, p)| p).collect();
    assert!(passed.is_empty(), "{passed:#?}");
    assert_eq!(tried.len(), 5);

    // The attacks were refused for being attacks: the same routes answer the owner.
    let ok = request(
        port,
        "GET",
        "/api/status",
        &[&format!("Authorization: Bearer {NEW}")],
        "",
    )
    .unwrap();
    assert_eq!(ok.code, 200, "{}", ok.body);
    let ui = request(
        port,
        "POST",
        "/api/pairing/telegram/reject",
        &[
            &format!("Cookie: {valid}"),
            "X-Clawops-Csrf: 1",
            "Content-Type: application/json",
        ],
        r#"{"code":"NOPE1234"}"#,
    )
    .unwrap();
    assert_eq!(ui.code, 404, "reached the handler: {}", ui.body);
    // Guessing the token at the sign-in form: after ten misses that client is held off (even
    // with the right token); another client is not. (A spoofed X-Forwarded-For from an untrusted
    // address is ignored: gateway_binary::failed_attempts_are_limited_per_client_behind_…)
    let sign = |xff: &str, token: &str| {
        request(
            port,
            "POST",
            "/ui/session",
            &[
                &format!("X-Forwarded-For: {xff}"),
                "Content-Type: application/json",
                "X-Clawops-Csrf: 1",
            ],
            &format!(r#"{{"token":"{token}"}}"#),
        )
        .unwrap()
        .code
    };
    let guesses: Vec<u16> = (0..12)
        .map(|i| sign("10.99.0.1", &format!("guess-{i:032}")))
        .collect();
    assert!(guesses[..10].iter().all(|c| *c == 401), "{guesses:?}");
    assert!(guesses[10..].iter().all(|c| *c == 429), "{guesses:?}");
    assert_eq!(
        sign("10.99.0.1", NEW),
        429,
        "held off even with the right token"
    );
    assert_eq!(sign("10.99.0.2", NEW), 204, "another client signs in");
    // Oversized input from the owner's own side: refused plainly, the gateway unmoved.
    let auth = format!("Authorization: Bearer {NEW}");
    let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(3 << 20));
    let r = request(
        port,
        "POST",
        "/api/chat",
        &[&auth, "Content-Type: application/json"],
        &huge,
    )
    .unwrap();
    assert_eq!(r.code, 413, "a 3 MB chat message: {}", r.body);
    assert_eq!(get(port, "/healthz").unwrap().code, 200);
    let logs = {
        gw.terminate(Duration::from_secs(10));
        gw.stderr()
    };
    assert!(
        !logs.contains(NEW) && !logs.contains(OLD),
        "a token in the logs"
    );
}

/// Oversized messages: a 10 MB Telegram message (only a self-hosted Bot API server could send
/// one; Telegram stops at 4,096 characters) and a 40,000-character API message are refused
/// plainly before the model; the gateway's memory stays small and it goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_before_the_model() {
    use crate::support::fake_llm::FakeLlm;
    use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_with(
        "attacks-oversized",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                "    dmPolicy: open\n    allowFrom: [\"*\"]\n".to_string(),
            ),
        ],
    );
    let state = support::temp_dir("attacks-oversized-state");
    let port = free_port();
    let mut gw = tokio::task::spawn_blocking(move || {
        let gw = support::start_gateway(
            &yaml,
            &state,
            port,
            &[
                ("CLAWOPS_GATEWAY_TOKEN", NEW),
                ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
                ("ZAI_API_KEY", support::ZAI_KEY),
            ],
        );
        wait_for_http(port, "/healthz");
        gw
    })
    .await
    .unwrap();
    let wait_reply = |n: usize| {
        let tg = tg.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while tg.sent_to(7000).len() < n {
                assert!(Instant::now() < deadline, "no reply");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tg.sent_to(7000)[n - 1].clone()
        }
    };
    tg.dm(7000, "big", &"x".repeat(10 << 20));
    let told = wait_reply(1).await;
    assert!(
        told.starts_with("⚠️") && told.contains("10485760") && told.contains("32768"),
        "{told}"
    );
    assert!(llm.seen().is_empty(), "the model was not asked");
    let auth = format!("Authorization: Bearer {NEW}");
    let body = serde_json::json!({"text": "y".repeat(40_000)}).to_string();
    let r = tokio::task::spawn_blocking(move || {
        request(
            port,
            "POST",
            "/api/chat",
            &[&auth, "Content-Type: application/json"],
            &body,
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(r.code, 413, "{}", r.body);
    assert!(r.body.contains("40000 characters"), "{}", r.body);
    assert!(llm.seen().is_empty(), "the model was not asked");
    // Still answering, and the history did not keep the huge message.
    tg.dm(7000, "big", "small question");
    let answer = wait_reply(2).await;
    assert!(answer.contains("small question"), "{answer}");
    let sent = llm.seen()[0].body.to_string();
    assert!(
        sent.len() < 10_000,
        "the model request is {} bytes",
        sent.len()
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.0.id())).unwrap();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap()
        .to_string();
    println!(
        "oversized: a 10 MB Telegram message and a 40,000-character API message refused before the model; gateway peak memory {peak}"
    );
    gw.terminate(Duration::from_secs(10));
}
