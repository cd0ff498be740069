//! `clawops gateway` as a user runs it: standalone from the example YAML, and from a
//! `gateway.json` that must be valid.

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::process::*;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("clawops-gw-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn example() -> PathBuf {
    PathBuf::from(format!(
        "{}/manifests/examples/shrimp.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// `clawops gateway ARGS` (for flags other than `--from`).
fn gateway(args: &[&str], envs: &[(&str, &str)]) -> Reaper {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawops"));
    cmd.arg("gateway")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for v in [
        "TELEGRAM_BOT_TOKEN",
        "ZAI_API_KEY",
        "CLAWOPS_GATEWAY_TOKEN",
        // What would make the listen default all interfaces, or override it.
        "KUBERNETES_SERVICE_HOST",
        "CLAWOPS_GATEWAY_LISTEN",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(envs.iter().copied());
    Reaper(cmd.spawn().unwrap())
}

#[test]
fn standalone_from_the_example_serves_health_and_a_token_protected_api() {
    let state = temp("standalone");
    let port = free_port();
    let mut gw = support::start_gateway(
        &example(),
        &state,
        port,
        &[(
            "TELEGRAM_BOT_TOKEN",
            "7012345678:AAHk2x9dRealLookingBotTokenValue0123456",
        )],
    );
    assert_eq!(wait_for_http(port, "/healthz").code, 200);
    assert_eq!(get(port, "/readyz").unwrap().code, 200);

    // What is missing is said in /health: the model key, not the bot token that is set.
    let health: serde_json::Value =
        serde_json::from_str(&get(port, "/health").unwrap().body).unwrap();
    assert_eq!(health["ok"], false);
    assert_eq!(health["model"]["problem"], "ZAI_API_KEY is not set");
    assert_eq!(health["channels"][0]["configured"], true);
    assert_eq!(health["agent"]["name"], "聪明小虾");

    // The token was generated into the state directory, private.
    let token_file = state.join("gateway-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let missing = get(port, "/api/status").unwrap();
    assert_eq!(missing.code, 401);
    assert!(
        missing.body.contains("gateway token missing") && missing.body.contains("gateway-token"),
        "{}",
        missing.body
    );
    let wrong = request(
        port,
        "GET",
        "/api/status",
        &["Authorization: Bearer not-the-token"],
        "",
    )
    .unwrap();
    assert_eq!(wrong.code, 401);
    assert!(
        wrong.body.contains("mismatch") && !wrong.body.contains(&token),
        "{}",
        wrong.body
    );
    let ok = request(
        port,
        "GET",
        "/api/status",
        &[&format!("Authorization: Bearer {token}")],
        "",
    )
    .unwrap();
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert!(ok.body.contains("morning-patrol"));
    // A token in an API URL is refused, right or not (it would land in proxy logs); the
    // sign-in link at `/` takes it once and answers with the cookie.
    let q = get(port, &format!("/api/status?token={token}")).unwrap();
    assert_eq!(q.code, 401);
    assert!(q.body.contains("token in the URL is refused"), "{}", q.body);
    assert!(!q.headers.to_lowercase().contains("set-cookie"));
    let q = get(port, &format!("/?token={token}")).unwrap();
    assert_eq!(q.code, 303);
    let cookie = q
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        request(
            port,
            "GET",
            "/api/status",
            &[&format!("Cookie: {cookie}")],
            ""
        )
        .unwrap()
        .code,
        200
    );

    let status = gw.terminate(Duration::from_secs(10));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(
        logs.contains("model zai/glm-4.7 disabled: ZAI_API_KEY is not set"),
        "{logs}"
    );
    assert!(
        !logs.contains("AAHk2x9dRealLookingBotTokenValue") && !logs.contains(&token),
        "a secret reached the log"
    );
}

#[test]
fn a_malformed_gateway_json_fails_at_start_with_the_field_path() {
    let dir = temp("badconfig");
    let config = dir.join("gateway.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "agent": {"id": "a", "name": "A", "modle": {}}, "gateway": {}}"#,
    )
    .unwrap();
    let mut gw = gateway(
        &[
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let status = gw.0.wait().unwrap();
    let err = gw.stderr();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("gateway.json: agent.modle: unknown field `modle`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_chat_answers_through_the_model_and_explains_quota_errors() {
    use support::fake_llm::{Answer, FakeLlm};
    let fake = FakeLlm::start().await;
    fake.script(
        "glm-4.7",
        [
            Answer::Text("集群一切正常 🦐".into()),
            Answer::glm(429, "1308", "Usage limit reached"),
        ],
    );
    let yaml = support::example_with("chat", &[support::model_at(&fake.base_url())]);
    let state = temp("chat-state");
    let port = free_port();
    let key = "3f9a1c2b7e4d4c8a9b0e1f2a3b4c5d6e.AbCdEfGhIjKlMnOp";
    let mut gw = support::start_gateway(
        &yaml,
        &state,
        port,
        &[
            ("ZAI_API_KEY", key),
            ("CLAWOPS_GATEWAY_TOKEN", "test-gateway-token-0123456789"),
        ],
    );
    let health = tokio::task::spawn_blocking(move || wait_for_http(port, "/health"))
        .await
        .unwrap();
    assert!(
        health.body.contains("\"configured\":true"),
        "{}",
        health.body
    );
    let call = |text: &'static str| {
        tokio::task::spawn_blocking(move || {
            let body = format!(r#"{{"chat": "owner", "text": "{text}"}}"#);
            request(
                port,
                "POST",
                "/api/chat",
                &[
                    "Authorization: Bearer test-gateway-token-0123456789",
                    "Content-Type: application/json",
                ],
                &body,
            )
            .unwrap()
        })
    };
    let ok = call("巡检一下").await.unwrap();
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert!(ok.body.contains("集群一切正常"), "{}", ok.body);
    let seen = fake.seen();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(&*format!("Bearer {key}"))
    );
    assert!(
        seen[0].body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("聪明小虾")
    );

    let quota = call("再来一次").await.unwrap();
    assert_eq!(quota.code, 502);
    assert!(
        quota.body.contains("1308") && quota.body.contains("额度"),
        "{}",
        quota.body
    );

    let status = gw.terminate(Duration::from_secs(10));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(key), "the model key reached the log");
}

#[test]
fn failed_attempts_are_limited_per_client_behind_trusted_proxies_only() {
    let hit = |port: u16, client: &str| {
        request(
            port,
            "GET",
            "/api/status",
            &[
                "Authorization: Bearer wrong-token",
                &format!("X-Forwarded-For: {client}"),
            ],
            "",
        )
        .unwrap()
        .code
    };
    // Trusting the local proxy: each forwarded client has its own limit.
    let yaml = support::example_with(
        "trusted",
        &[(
            "  gateway:\n",
            "  gateway:\n    trustedProxies: [\"127.0.0.1\"]\n".to_string(),
        )],
    );
    let port = free_port();
    let mut gw = support::start_gateway(
        &yaml,
        &yaml.with_file_name("state"),
        port,
        &[("CLAWOPS_GATEWAY_TOKEN", "the-real-gateway-token-0123456789")],
    );
    wait_for_http(port, "/healthz");
    for _ in 0..10 {
        assert_eq!(hit(port, "203.0.113.1"), 401);
    }
    assert_eq!(hit(port, "203.0.113.1"), 429, "the attacker is limited");
    assert_eq!(
        hit(port, "203.0.113.2"),
        401,
        "another client behind the same proxy is not"
    );
    assert!(gw.terminate(Duration::from_secs(10)).success());

    // Without trusted proxies the header is ignored: a forged address does not dodge the limit.
    let state = temp("untrusted");
    let port = free_port();
    let mut gw = support::start_gateway(
        &example(),
        &state,
        port,
        &[("CLAWOPS_GATEWAY_TOKEN", "the-real-gateway-token-0123456789")],
    );
    wait_for_http(port, "/healthz");
    for i in 0..10 {
        assert_eq!(hit(port, &format!("203.0.113.{i}")), 401);
    }
    assert_eq!(hit(port, "203.0.113.99"), 429);
    assert!(gw.terminate(Duration::from_secs(10)).success());
}

/// Standalone without `--listen`: loopback only, and the log says how to listen wider. (All
/// interfaces in a pod and `--listen` winning are unit tests of `gateway::listen`: a test here
/// must not bind beyond 127.0.0.1.)
#[test]
fn standalone_listens_on_loopback_by_default_and_says_how_to_widen() {
    let port = free_port();
    let yaml = support::example_with(
        "loopback",
        &[("  gateway:\n", format!("  gateway:\n    port: {port}\n"))],
    );
    let mut gw = gateway(
        &[
            "--from",
            yaml.to_str().unwrap(),
            "--state-dir",
            yaml.with_file_name("state").to_str().unwrap(),
        ],
        &[("RUST_LOG", "info"), ("CLAWOPS_SKIP_CRON", "1")],
    );
    assert_eq!(wait_for_http(port, "/healthz").code, 200);
    let status = gw.terminate(Duration::from_secs(10));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(
        logs.contains(&format!("addr=127.0.0.1:{port}"))
            && logs.contains("listening on 127.0.0.1 only")
            && logs.contains(&format!("--listen 0.0.0.0:{port}")),
        "{logs}"
    );
    assert!(!logs.contains('\x1b'), "colour codes in the log: {logs:?}");
}

/// `cron run` (a CronJob's pod: logs are not a terminal) writes no colour codes.
#[test]
fn cron_run_logs_carry_no_colour_codes_when_not_a_terminal() {
    let closed = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["cron", "run", "morning-patrol", "--wait", "2"])
        .args(["--url", &format!("http://127.0.0.1:{closed}")])
        .args(["--token", "test-gateway-token-0123456789"])
        .env("RUST_LOG", "info")
        .env_remove("CLAWOPS_LOG_FORMAT")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{err}");
    // It logged while retrying (the wording is the retry loop's business).
    assert!(err.contains(" INFO ") || err.contains(" WARN "), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in the log: {err:?}");
}
