//! The attack table's secrets row, gateway side: a whole journey with planted secret values (the
//! bot token, the model key, the gateway token), debug logging on, in JSON and in text, and a
//! model that echoes the key in its error messages — then every place a user, a chat member or
//! the model provider can see is searched for them: 0 occurrences. (The operator side, objects
//! and events, is `reconcile::planted_secrets_appear_in_no_object_but_their_own_secrets`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::process::*;
use crate::support::{self, ZAI_KEY};

const GATEWAY_TOKEN: &str = "planted-gateway-token-5a1f0c9e7d3b";

/// The values, and the parts of them that are secret on their own (the bot token after its
/// id, the key after its id).
fn planted() -> Vec<&'static str> {
    let bot_secret = BOT_TOKEN.split_once(':').unwrap().1;
    let key_secret = ZAI_KEY.split_once('.').unwrap().1;
    vec![BOT_TOKEN, bot_secret, ZAI_KEY, key_secret, GATEWAY_TOKEN]
}

/// Where each planted value was found, by place.
fn found(place: &str, text: &str, hits: &mut Vec<String>) {
    for secret in planted() {
        if text.contains(secret) {
            hits.push(format!("{place}: {}…", &secret[..8]));
        }
    }
}

fn start(yaml: &Path, state: &Path, port: u16, format: &str, log: &Path) -> Reaper {
    let child = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["gateway", "--from"])
        .arg(yaml)
        .arg("--state-dir")
        .arg(state)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .env("ZAI_API_KEY", ZAI_KEY)
        .env("CLAWOPS_GATEWAY_TOKEN", GATEWAY_TOKEN)
        .env("CLAWOPS_LOG_FORMAT", format)
        // What a user turns on to see why: everything, dependencies included.
        .env("RUST_LOG", "debug")
        .env("CLAWOPS_SKIP_CRON", "1")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_for_http(port, "/healthz");
    Reaper(child)
}

fn api(port: u16, method: &str, path: &str, body: &str) -> Reply {
    request(
        port,
        method,
        path,
        &[
            &format!("Authorization: Bearer {GATEWAY_TOKEN}"),
            "Content-Type: application/json",
        ],
        body,
    )
    .unwrap()
}

async fn until(what: &str, test: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !test() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One journey under `format` logging; returns where planted values were found.
async fn journey(format: &str) -> Vec<String> {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_with(
        &format!("secret-scan-{format}"),
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
        ],
    );
    let state = support::temp_dir(&format!("secret-scan-{format}-state"));
    let log = state.with_extension("log");
    let port = free_port();
    let (y, s, l, f) = (yaml.clone(), state.clone(), log.clone(), format.to_string());
    let mut gw = tokio::task::spawn_blocking(move || start(&y, &s, port, &f, &l))
        .await
        .unwrap();

    // A stranger asks and gets a code; the owner approves it through the API.
    tg.dm(6000, "stranger", "hello");
    let code = tg.pairing_code(6000).await;
    let body = serde_json::json!({ "code": code, "notify": true }).to_string();
    let approved = tokio::task::spawn_blocking(move || {
        api(port, "POST", "/api/pairing/telegram/approve", &body)
    })
    .await
    .unwrap();
    assert_eq!(approved.code, 200, "{}", approved.body);
    // A tool call, then providers that echo the key in their errors: a refusal of the key,
    // a bad request, and the quota.
    let echo = |status: u16, code: &'static str| {
        Answer::glm(
            status,
            code,
            // What a careless proxy says: the key it was given.
            Box::leak(format!("invalid api key: {ZAI_KEY}").into_boxed_str()),
        )
    };
    llm.script(
        "glm-4.7",
        [
            Answer::Tools(vec![("nodes_list", serde_json::json!({}))]),
            Answer::Text("the nodes: none".into()),
            echo(401, "1000"),
            echo(400, "1210"),
            echo(429, "1308"),
        ],
    );
    for (i, text) in ["which nodes?", "one", "two", "three"].iter().enumerate() {
        tg.dm(6000, "stranger", text);
        // The approval notice, then one reply per message.
        until("the reply", || tg.sent_to(6000).len() >= 3 + i).await;
    }
    let mut hits = Vec::new();
    // What the chat saw.
    for t in tg.sent_to(6000) {
        found("a Telegram message", &t, &mut hits);
    }
    // What the model provider saw (the key goes in the Authorization header, nowhere else).
    for s in llm.seen() {
        found("a model request body", &s.body.to_string(), &mut hits);
    }
    // What the API and the pages show.
    let mut paths: Vec<String> = clawops::gateway::api::http::api_paths()
        .into_iter()
        .filter(|p| !p.contains('{') || p.starts_with("/api/pairing/{channel}"))
        // The backup is binary: searched file by file below.
        .filter(|p| *p != "/api/backup")
        .map(|p| p.replace("{channel}", "telegram"))
        .collect();
    paths.extend(
        [
            "/health",
            "/metrics",
            "/readyz",
            "/",
            "/ui/app.js",
            "/ui/app.css",
        ]
        .iter()
        .map(|p| p.to_string()),
    );
    for path in paths {
        let r = tokio::task::spawn_blocking({
            let path = path.clone();
            move || api(port, "GET", &path, "")
        })
        .await
        .unwrap();
        found(&format!("GET {path}"), &r.body, &mut hits);
    }
    // The sign-in link answers with a cookie; its page and address must not carry the token.
    let signin = tokio::task::spawn_blocking(move || {
        get(port, &format!("/?token={GATEWAY_TOKEN}")).unwrap()
    })
    .await
    .unwrap();
    found("the sign-in page", &signin.body, &mut hits);
    let location: String = signin
        .headers
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("location"))
        .collect();
    found("the sign-in redirect", &location, &mut hits);
    // A backup taken through the API (without secrets, as by default), file by file.
    let archive = state.with_extension("tar.zst");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["backup", "create", "--to", archive.to_str().unwrap()])
        .env("CLAWOPS_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("CLAWOPS_GATEWAY_TOKEN", GATEWAY_TOKEN)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (_, files) = clawops::backup::read(&std::fs::read(&archive).unwrap(), "backup").unwrap();
    assert!(files.len() >= 3, "the backup holds the state");
    for (path, bytes) in files {
        found(
            &format!("the backup's {path}"),
            &String::from_utf8_lossy(&bytes),
            &mut hits,
        );
    }
    // The audit records and the saved conversation.
    for file in ["tools/audit.jsonl", "exec/audit.jsonl"] {
        let text = std::fs::read_to_string(state.join(file)).unwrap_or_default();
        found(file, &text, &mut hits);
    }
    for e in std::fs::read_dir(state.join("history")).unwrap().flatten() {
        found(
            "a saved conversation",
            &std::fs::read_to_string(e.path()).unwrap(),
            &mut hits,
        );
    }
    gw.terminate(Duration::from_secs(15));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.lines().count() > 50,
        "debug logging was on: {} lines",
        logged.lines().count()
    );
    found(&format!("the {format} log"), &logged, &mut hits);
    assert!(
        tool_audited(&state),
        "the journey made a tool call (so the audit was searched)"
    );
    hits
}

fn tool_audited(state: &Path) -> bool {
    std::fs::read_to_string(state.join("tools/audit.jsonl")).is_ok_and(|t| t.contains("nodes_list"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_are_nowhere_a_user_or_the_model_can_see() {
    let mut hits = journey("text").await;
    hits.extend(journey("json").await);
    println!(
        "secret scan (text and JSON logs at debug): {} found: {hits:?}",
        hits.len()
    );
    assert_eq!(hits, Vec::<String>::new());
}
