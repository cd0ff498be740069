//! Nodes end to end on loopback: the real gateway binary and the real node host binary over a
//! real WebSocket. An unknown node is told "pairing required", the owner approves it with the
//! CLI, it connects, `clawops nodes run` runs what its policy allows and not what it does not,
//! revoking disconnects it, and a gateway restart keeps the pairing. Refusals of bad connects
//! are checked frame by frame with a raw WebSocket client.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::nodes::{allow, connect_frame, node_host, node_log, open, outcome, real_path};
use crate::support::{self, process::*};

pub const TOKEN: &str = "test-gateway-token-0123456789";

pub fn clawops(port: u16, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(args)
        .env("CLAWOPS_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("CLAWOPS_GATEWAY_TOKEN", TOKEN)
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

fn gateway(state: &Path, port: u16) -> Reaper {
    let yaml = support::example_with("nodes", &[]);
    let gw = support::start_gateway(&yaml, state, port, &[("CLAWOPS_GATEWAY_TOKEN", TOKEN)]);
    wait_for_http(port, "/healthz");
    gw
}

/// Polls `clawops nodes list --json` until `test` holds.
pub fn wait_nodes(port: u16, what: &str, test: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let o = clawops(port, &["nodes", "list", "--json"]);
        if o.status.success() {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            if test(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_pairs_runs_what_its_policy_allows_and_is_revoked() {
    let gw_state = support::temp_dir("nodes-gw");
    let node_state = support::temp_dir("nodes-node");
    let port = free_port();
    let mut gw = gateway(&gw_state, port);
    let mut host = node_host(&node_state, port);

    // Unknown: it waits for the owner, and says so plainly.
    let listed = wait_nodes(port, "a pending node", |v| {
        v["pending"].as_array().is_some_and(|p| !p.is_empty())
    });
    let node_id = listed["pending"][0]["nodeId"].as_str().unwrap().to_string();
    assert_eq!(listed["pending"][0]["displayName"], "desk");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node_log(&node_state).contains("pairing required") {
        assert!(Instant::now() < deadline, "{}", node_log(&node_state));
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = node_log(&node_state);
    assert!(
        log.contains(&format!("approve node desk ({})", &node_id[..12]))
            && log.contains("clawops nodes approve"),
        "{log}"
    );
    let refused = clawops(port, &["nodes", "run", "desk", "--", "echo", "hi"]);
    assert!(
        !refused.status.success(),
        "no command runs on an unapproved node"
    );
    assert!(
        text(&refused).contains("no connected node"),
        "{}",
        text(&refused)
    );

    // Approved by the CLI (by a prefix of its id): it connects on its next try.
    let approved = clawops(port, &["nodes", "approve", &node_id[..12]]);
    assert!(approved.status.success(), "{}", text(&approved));
    assert!(text(&approved).contains("approved"), "{}", text(&approved));
    wait_nodes(port, "the node connected", |v| {
        v["paired"][0]["connected"] == true
    });
    assert!(
        node_state.join("identity/device-auth.json").exists(),
        "the device token is kept"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args([
            "node",
            "status",
            "--state-dir",
            node_state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        text(&status).contains("node: desk") && text(&status).contains(" connected since"),
        "{}",
        text(&status)
    );

    // Its own policy: nothing allowed yet, so a command needs approval, and with no owner to
    // answer (no Telegram here) it is not run.
    let asked = clawops(
        port,
        &[
            "nodes",
            "run",
            "desk",
            "--approval-timeout",
            "1",
            "--",
            "echo",
            "hi",
        ],
    );
    assert!(!asked.status.success());
    assert!(text(&asked).contains("nobody answered"), "{}", text(&asked));

    // Allowlisted on the node: it runs, output and exit code come back.
    allow(&node_state, &["echo", "false"]);
    let ran = clawops(
        port,
        &[
            "nodes",
            "run",
            &node_id[..8],
            "--",
            "echo",
            "hello",
            "from",
            "desk",
        ],
    );
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "hello from desk\n");
    let failed = clawops(port, &["nodes", "run", "desk", "--", "false"]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "the command's exit code is the CLI's"
    );
    // A chain is checked part by part; what is not allowlisted stops it.
    let chained = clawops(
        port,
        &[
            "nodes",
            "run",
            "desk",
            "--approval-timeout",
            "1",
            "--",
            "echo",
            "ok",
            "&&",
            "id",
        ],
    );
    assert!(
        text(&chained).contains("nobody answered"),
        "{}",
        text(&chained)
    );
    let redirected = clawops(
        port,
        &[
            "nodes",
            "run",
            "desk",
            "--approval-timeout",
            "1",
            "--",
            "echo",
            "x",
            ">",
            "/tmp/clawops-x",
        ],
    );
    assert!(
        text(&redirected).contains("nobody answered"),
        "{}",
        text(&redirected)
    );
    assert!(
        !Path::new("/tmp/clawops-x").exists(),
        "the redirection did not run"
    );

    // The gateway restarts: the node reconnects with its device token, no new approval.
    gw.terminate(Duration::from_secs(10));
    // The node logs the close when it reads it, which may be just after the gateway is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node_log(&node_state).contains("closed (1012): service restart")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = node_log(&node_state);
    assert!(
        log.contains("closed (1012): service restart"),
        "the node is told the gateway restarts: {log}"
    );
    let mut gw = gateway(&gw_state, port);
    wait_nodes(port, "the node reconnected", |v| {
        v["paired"][0]["connected"] == true && v["pending"].as_array().is_some_and(|p| p.is_empty())
    });
    let ran = clawops(port, &["nodes", "run", "desk", "--", "echo", "again"]);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "again\n",
        "{}",
        text(&ran)
    );

    // Revoked: disconnected at once and refused; it asks to pair again.
    let revoked = clawops(port, &["nodes", "revoke", "desk"]);
    assert!(
        revoked.status.success() && text(&revoked).contains("revoked"),
        "{}",
        text(&revoked)
    );
    let listed = wait_nodes(port, "the node asks again", |v| {
        v["paired"][0]["revoked"] == true
            && v["paired"][0]["connected"] == false
            && v["pending"].as_array().is_some_and(|p| !p.is_empty())
    });
    assert_eq!(listed["pending"][0]["nodeId"], node_id.as_str());
    let refused = clawops(port, &["nodes", "run", "desk", "--", "echo", "hi"]);
    assert!(!refused.status.success(), "{}", text(&refused));

    host.terminate(Duration::from_secs(10));
    let status = gw.terminate(Duration::from_secs(10));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(TOKEN) && !node_log(&node_state).contains(TOKEN));
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(node_state.join("identity/device-auth.json")).unwrap(),
    )
    .unwrap();
    if let Some(t) = stored["tokens"]["node"]["token"].as_str() {
        assert!(
            !logs.contains(t) && !node_log(&node_state).contains(t),
            "a device token reached a log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connects_get_their_documented_answers_and_closes() {
    let state = support::temp_dir("nodes-raw");
    let port = free_port();
    let gw = tokio::task::spawn_blocking(move || gateway(&state, port))
        .await
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);

    let (mut ws, _) = open(port).await;
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(
        outcome(&mut ws).await,
        (None, Some((1008, "invalid frame: not JSON".into())))
    );

    // A frame over the protocol's limit (512 KiB): the socket is closed, nothing is read.
    let (mut ws, _) = open(port).await;
    let big = "x".repeat(clawops::protocol::connect::MAX_PAYLOAD + 1);
    let _ = ws.send(Message::Text(big.into())).await;
    let (answer, close) = outcome(&mut ws).await;
    assert_eq!(answer, None);
    assert!(
        close.as_ref().is_none_or(|(code, _)| *code == 1009),
        "closed as too big: {close:?}"
    );

    let (mut ws, _) = open(port).await;
    ws.send(Message::Text(
        json!({"type":"req","id":"1","method":"node.event","params":{}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let (answer, close) = outcome(&mut ws).await;
    assert_eq!(
        answer.unwrap()["error"]["message"],
        "invalid handshake: first request must be connect"
    );
    assert_eq!(close.unwrap().0, 1008);

    let (mut ws, _) = open(port).await;
    ws.send(Message::Text(
        connect_frame(&key, "not-the-nonce", None).into(),
    ))
    .await
    .unwrap();
    let (answer, close) = outcome(&mut ws).await;
    assert_eq!(answer.unwrap()["error"]["message"], "device nonce mismatch");
    assert_eq!(close, Some((1008, "device nonce mismatch".into())));

    let (mut ws, nonce) = open(port).await;
    ws.send(Message::Text(
        connect_frame(&key, &nonce, Some("wrong-token")).into(),
    ))
    .await
    .unwrap();
    let (answer, close) = outcome(&mut ws).await;
    let message = answer.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("unauthorized: gateway token mismatch"),
        "{message}"
    );
    assert_eq!(close.unwrap().0, 1008);

    // A correct first connect of an unknown device: NOT_PAIRED with the request id, close 1008.
    let (mut ws, nonce) = open(port).await;
    ws.send(Message::Text(connect_frame(&key, &nonce, None).into()))
        .await
        .unwrap();
    let (answer, close) = outcome(&mut ws).await;
    let answer = answer.unwrap();
    assert_eq!(
        (
            answer["ok"].clone(),
            answer["error"]["code"].clone(),
            answer["error"]["message"].clone()
        ),
        (json!(false), json!("NOT_PAIRED"), json!("pairing required"))
    );
    assert!(answer["error"]["details"]["requestId"].is_string());
    assert!(
        answer["error"].get("retryable").is_none(),
        "absent fields are left out, not null"
    );
    assert_eq!(close, Some((1008, "pairing required".into())));

    // A frame over 512 KiB is refused as too big.
    let (mut ws, _) = open(port).await;
    let big = "x".repeat(600 * 1024);
    let _ = ws.send(Message::Text(big.into())).await;
    let (_, close) = outcome(&mut ws).await;
    assert_eq!(close.map(|c| c.0), Some(1009));
    drop(gw);
}

/// Waits for a message to `chat` with buttons whose text contains `needle`; its id and buttons.
pub async fn prompt(tg: &FakeTelegram, chat: i64, needle: &str) -> (i64, Vec<(String, String)>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = tg
            .sent()
            .into_iter()
            .rev()
            .find(|s| s.chat_id == chat && !s.buttons.is_empty() && s.text.contains(needle))
        {
            return (s.message_id, s.buttons);
        }
        assert!(
            Instant::now() < deadline,
            "no prompt with {needle:?}: {:?}",
            tg.sent().iter().map(|s| &s.text).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn data<'a>(buttons: &'a [(String, String)], label: &str) -> &'a str {
    &buttons
        .iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no {label} button in {buttons:?}"))
        .1
}

pub async fn wait_edit(tg: &FakeTelegram, message: i64, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, _, text)) = tg
            .edits()
            .into_iter()
            .find(|(_, m, t)| *m == message && t.contains(needle))
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "message {message} not edited to {needle:?}: {:?}",
            tg.edits()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn run_on_node(port: u16, args: Vec<&'static str>) -> tokio::task::JoinHandle<Output> {
    tokio::task::spawn_blocking(move || {
        let mut all = vec!["nodes", "run"];
        all.extend(args);
        clawops(port, &all)
    })
}

const OWNER: i64 = 1001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_approves_nodes_and_commands_with_telegram_buttons() {
    let tg = FakeTelegram::start().await;
    let yaml = support::example_with(
        "nodes-tg",
        &[
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                format!("    dmPolicy: pairing\n    allowFrom: [\"{OWNER}\"]\n"),
            ),
        ],
    );
    let gw_state = support::temp_dir("nodes-tg-gw");
    let node_state = support::temp_dir("nodes-tg-node");
    let port = free_port();
    let (y, s) = (yaml.clone(), gw_state.clone());
    let mut gw = tokio::task::spawn_blocking(move || {
        let gw = support::start_gateway(
            &y,
            &s,
            port,
            &[
                ("CLAWOPS_GATEWAY_TOKEN", TOKEN),
                ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
            ],
        );
        wait_for_http(port, "/healthz");
        gw
    })
    .await
    .unwrap();
    let ns = node_state.clone();
    let mut host = tokio::task::spawn_blocking(move || node_host(&ns, port))
        .await
        .unwrap();

    // The owner is asked to pair the node; a stranger's press does nothing.
    let (message, buttons) = prompt(&tg, OWNER, "asks to pair").await;
    tg.press(2002, "stranger", message, data(&buttons, "Approve"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tg
        .answers()
        .iter()
        .any(|(_, t)| t == "Only the owner can answer this.")
    {
        assert!(Instant::now() < deadline, "{:?}", tg.answers());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still = tokio::task::spawn_blocking(move || clawops(port, &["nodes", "list", "--json"]))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&still.stdout).unwrap();
    assert_eq!(
        v["paired"].as_array().map(Vec::len),
        Some(0),
        "a stranger cannot approve"
    );
    tg.press(OWNER, "owner", message, data(&buttons, "Approve"));
    let edited = wait_edit(&tg, message, "Approved by @owner").await;
    assert!(edited.starts_with("🖥 Node desk"), "{edited}");
    tokio::task::spawn_blocking(move || {
        wait_nodes(port, "the node connected", |v| {
            v["paired"][0]["connected"] == true
        })
    })
    .await
    .unwrap();

    // A command the node's policy does not allow asks the owner; "Always allow" runs it and
    // remembers it on the node.
    let call = run_on_node(port, vec!["desk", "--", "id", "-u"]);
    let (message, buttons) = prompt(&tg, OWNER, "wants to run").await;
    assert_eq!(
        buttons.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["Allow once", "Always allow", "Deny"]
    );
    tg.press(OWNER, "owner", message, data(&buttons, "Always allow"));
    let out = call.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_edit(&tg, message, "Always allowed by @owner").await;
    let again = run_on_node(port, vec!["desk", "--", "id", "-u"])
        .await
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "allowed always: no second question: {}",
        text(&again)
    );
    let approvals: Value = serde_json::from_str(
        &std::fs::read_to_string(node_state.join("exec-approvals.json")).unwrap(),
    )
    .unwrap();
    assert!(
        approvals["agents"]["main"]["allowlist"][0]["pattern"]
            .as_str()
            .unwrap()
            .ends_with("/id")
    );

    // Deny refuses; nobody answering refuses too (askFallback deny).
    let call = run_on_node(port, vec!["desk", "--", "uname", "-a"]);
    let (message, buttons) = prompt(&tg, OWNER, "uname -a").await;
    tg.press(OWNER, "owner", message, data(&buttons, "Deny"));
    let out = call.await.unwrap();
    assert!(
        !out.status.success() && text(&out).contains("denied by @owner"),
        "{}",
        text(&out)
    );
    let out = run_on_node(
        port,
        vec!["desk", "--approval-timeout", "1", "--", "hostname"],
    )
    .await
    .unwrap();
    assert!(text(&out).contains("nobody answered"), "{}", text(&out));
    let (message, _) = prompt(&tg, OWNER, "hostname").await;
    wait_edit(&tg, message, "No answer in time").await;

    // The CLI answers too, and the Telegram message says so.
    let call = run_on_node(port, vec!["desk", "--", "whoami"]);
    let (message, _) = prompt(&tg, OWNER, "whoami").await;
    let listed =
        tokio::task::spawn_blocking(move || clawops(port, &["approvals", "list", "--json"]))
            .await
            .unwrap();
    let waiting: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = waiting[0]["id"].as_str().unwrap().to_string();
    assert_eq!(waiting[0]["command"], "whoami");
    let resolved = tokio::task::spawn_blocking(move || {
        clawops(port, &["approvals", "resolve", &id, "allow-once"])
    })
    .await
    .unwrap();
    assert!(resolved.status.success(), "{}", text(&resolved));
    assert_eq!(call.await.unwrap().status.code(), Some(0));
    wait_edit(&tg, message, "Allowed once by the CLI").await;

    // Every exec is in the audit log, with its decision, never its output.
    let audit = std::fs::read_to_string(gw_state.join("exec/audit.jsonl")).unwrap();
    let decisions: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        decisions,
        ["allow-always", "ran", "denied", "timed-out", "allow-once"]
    );
    assert!(audit.contains("\"by\":\"@owner\"") && audit.contains("\"exitCode\":0"));

    let metrics = tokio::task::spawn_blocking(move || get(port, "/metrics").unwrap().body)
        .await
        .unwrap();
    assert!(
        metrics.contains("clawops_gateway_node_execs_total{decision=\"denied\"} 1"),
        "{metrics}"
    );

    host.terminate(Duration::from_secs(10));
    gw.terminate(Duration::from_secs(10));
}

#[test]
fn node_install_writes_a_user_unit_keeps_the_token_out_of_it_and_drives_systemctl() {
    use std::os::unix::fs::PermissionsExt;
    let root = support::temp_dir("node-install");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = root.join("systemctl.log");
    let script = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script("systemctl", &format!("echo \"$@\" >> {}", calls.display()));
    script("loginctl", "echo Linger=no");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let node_dir = root.join("node");
    let run = |args: &[&str], path: &str| {
        Command::new(env!("CARGO_BIN_EXE_clawops"))
            .args(args)
            .env("HOME", &root)
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("PATH", path)
            .env("USER", "tester")
            .env_remove("CLAWOPS_GATEWAY_TOKEN")
            .output()
            .unwrap()
    };
    let install = [
        "node",
        "install",
        "--gateway",
        "https://gw.example.com",
        "--token",
        "SECRET-gateway-token",
        "--display-name",
        "my desk",
        "--state-dir",
        node_dir.to_str().unwrap(),
    ];
    let out = run(&install, &path);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("enabled and started clawops-node.service"),
        "{said}"
    );
    assert!(
        said.contains("sudo loginctl enable-linger tester"),
        "{said}"
    );
    let unit_path = root.join("config/systemd/user/clawops-node.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={} node run --gateway wss://gw.example.com/ --display-name \"my desk\" --state-dir {}\n",
            env!("CARGO_BIN_EXE_clawops"),
            node_dir.display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains("Restart=always\nRestartSec=5\n")
            && unit.contains(&format!("Environment=PATH={path}\n"))
    );
    assert!(!unit.contains("SECRET"), "the token is not in the unit");
    let env_file = node_dir.join("node.env");
    assert!(unit.contains(&format!("EnvironmentFile={}\n", env_file.display())));
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "CLAWOPS_GATEWAY_TOKEN=SECRET-gateway-token\n"
    );
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let log = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        log,
        "--user daemon-reload\n--user enable --now clawops-node.service\n"
    );

    let plain_pin = run(
        &[
            "node",
            "run",
            "--gateway",
            "ws://127.0.0.1:1",
            "--tls-fingerprint",
            &"ab".repeat(32),
        ],
        &path,
    );
    assert!(
        !plain_pin.status.success() && text(&plain_pin).contains("needs a wss://"),
        "{}",
        text(&plain_pin)
    );
    let again = run(&install, &path);
    assert!(
        !again.status.success() && text(&again).contains("--force"),
        "{}",
        text(&again)
    );
    let status = run(
        &["node", "status", "--state-dir", node_dir.to_str().unwrap()],
        &path,
    );
    assert!(
        text(&status).contains("service: clawops-node.service"),
        "{}",
        text(&status)
    );
    assert!(
        text(&status).contains("node: never started"),
        "{}",
        text(&status)
    );

    let out = run(
        &[
            "node",
            "uninstall",
            "--state-dir",
            node_dir.to_str().unwrap(),
        ],
        &path,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!unit_path.exists() && !env_file.exists());
    assert!(
        std::fs::read_to_string(&calls)
            .unwrap()
            .contains("--user disable --now clawops-node.service")
    );

    // No user manager (a container, an SSH session without one): the unit is written and the
    // commands to run are said.
    script(
        "systemctl",
        "echo 'Failed to connect to bus: No medium found' >&2; exit 1",
    );
    let out = run(&install, &path);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "systemctl --user daemon-reload && systemctl --user enable --now clawops-node.service"
        ),
        "{}",
        text(&out)
    );
    assert!(unit_path.exists());
}

fn node_pairing(api: &crate::support::fake_api::FakeApi, name: &str) -> Option<Value> {
    api.get(&format!(
        "/apis/clawops.dev/v1alpha1/namespaces/default/nodepairings/{name}"
    ))
}

async fn wait_pairing(
    api: &crate::support::fake_api::FakeApi,
    name: &str,
    what: &str,
    test: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(v) = node_pairing(api, name).filter(|v| test(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "NodePairing {name}: timed out waiting for {what}: {:?}",
            node_pairing(api, name)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_the_nodepairing_decides_and_shows_the_connection() {
    use clawops::crd::NodePairing;
    let api = crate::support::fake_api::FakeApi::new();
    let yaml = support::example_with("nodes-k8s", &[]);
    let kubeconfig = api.serve_http(yaml.parent().unwrap()).await;
    let config = crate::cron::gateway_json(&yaml, false);
    let port = free_port();
    let mut gw = Reaper(
        Command::new(env!("CARGO_BIN_EXE_clawops"))
            .args([
                "gateway",
                "--config",
                config.to_str().unwrap(),
                "--state-dir",
            ])
            .arg(config.with_file_name("state"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", &kubeconfig)
            .env("CLAWOPS_GATEWAY_TOKEN", TOKEN)
            .env("CLAWOPS_SKIP_CRON", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    tokio::task::spawn_blocking(move || wait_for_http(port, "/healthz"))
        .await
        .unwrap();

    // An unknown node: the gateway creates its NodePairing, not approved.
    let a_state = support::temp_dir("nodes-k8s-a");
    let s = a_state.clone();
    let mut a = tokio::task::spawn_blocking(move || node_host(&s, port))
        .await
        .unwrap();
    let listed = tokio::task::spawn_blocking(move || {
        wait_nodes(port, "a pending node", |v| {
            v["pending"].as_array().is_some_and(|p| !p.is_empty())
        })
    })
    .await
    .unwrap();
    let a_id = listed["pending"][0]["nodeId"].as_str().unwrap().to_string();
    let a_name = format!("shrimp-{}", &a_id[..12]);
    let np = wait_pairing(&api, &a_name, "the pending NodePairing", |v| {
        v["spec"]["approved"] == false
    })
    .await;
    assert_eq!(np["spec"]["nodeId"], a_id.as_str());
    assert_eq!(np["spec"]["agentRef"], "shrimp");
    assert_eq!(np["spec"]["displayName"], "desk");
    // The waiting node tells its owner the kubectl command that approves it.
    let approve = format!(
        r#"kubectl -n default patch nodepairing {a_name} --type merge -p '{{"spec":{{"approved":true}}}}'"#
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !node_log(&a_state).contains(&approve) {
        assert!(
            Instant::now() < deadline,
            "the node does not say how to approve it: {}",
            node_log(&a_state)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // `kubectl patch nodepairing … approved: true`: it connects, and the status shows it.
    api.set(
        &format!("/apis/clawops.dev/v1alpha1/namespaces/default/nodepairings/{a_name}"),
        "/spec",
        "approved",
        json!(true),
    );
    let np = wait_pairing(&api, &a_name, "Connected", |v| {
        v["status"]["phase"] == "Connected"
    })
    .await;
    assert_eq!(np["status"]["platform"], std::env::consts::OS);
    assert!(
        np["status"]["commands"]
            .as_array()
            .unwrap()
            .contains(&json!("system.run"))
    );
    assert!(np["status"]["lastSeen"].is_string());
    assert_eq!(np["status"]["remoteAddress"], "127.0.0.1");
    assert_eq!(np["status"]["version"], env!("CARGO_PKG_VERSION"));

    // Revoked with the CLI: the NodePairing says so, and it is disconnected.
    let out = tokio::task::spawn_blocking(move || clawops(port, &["nodes", "revoke", "desk"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_pairing(&api, &a_name, "not approved and Revoked", |v| {
        v["spec"]["approved"] == false && v["status"]["phase"] == "Revoked"
    })
    .await;
    a.terminate(Duration::from_secs(10));

    // A NodePairing written beforehand (in Git) approves its key: no request, it just connects.
    let b_state = support::temp_dir("nodes-k8s-b");
    let (b_id, b_key) = crate::support::nodes::identity(&b_state);
    let mut np: NodePairing = serde_json::from_value(json!({
        "apiVersion": "clawops.dev/v1alpha1", "kind": "NodePairing",
        "metadata": {"name": "vps", "namespace": "default"},
        "spec": {"agentRef": "shrimp", "nodeId": b_id, "publicKey": b_key,
                 "displayName": "vps", "approved": true},
    }))
    .unwrap();
    np.metadata.uid = Some("uid-vps".into());
    api.insert(&np);
    let s = b_state.clone();
    let mut b = tokio::task::spawn_blocking(move || node_host(&s, port))
        .await
        .unwrap();
    wait_pairing(&api, "vps", "Connected", |v| {
        v["status"]["phase"] == "Connected"
    })
    .await;
    let listed = tokio::task::spawn_blocking(move || clawops(port, &["nodes", "list", "--json"]))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        v["pending"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["nodeId"] != b_id.as_str()),
        "a pre-approved node never waits: {v}"
    );
    assert!(
        !node_log(&b_state).contains("pairing required"),
        "{}",
        node_log(&b_state)
    );

    // "Always allow" is recorded on the NodePairing too.
    let call = run_on_node(port, vec!["desk", "--", "id", "-u"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        assert!(Instant::now() < deadline, "no approval waits");
        let listed =
            tokio::task::spawn_blocking(move || clawops(port, &["approvals", "list", "--json"]))
                .await
                .unwrap();
        let v: Value = serde_json::from_slice(&listed.stdout).unwrap_or(Value::Null);
        if let Some(id) = v[0]["id"].as_str() {
            break id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let done = tokio::task::spawn_blocking(move || {
        clawops(port, &["approvals", "resolve", &id, "allow-always"])
    })
    .await
    .unwrap();
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(call.await.unwrap().status.code(), Some(0));
    let np = wait_pairing(&api, "vps", "the allowlist entry", |v| {
        !v["spec"]["exec"]["allowlist"].is_null()
    })
    .await;
    assert_eq!(np["spec"]["exec"]["allowlist"][0], real_path("id").as_str());

    // The NodePairing's spec.exec is the gateway's policy: a pattern added with kubectl is the
    // owner's approval in advance, so the node runs what it matches without asking...
    let vps = "/apis/clawops.dev/v1alpha1/namespaces/default/nodepairings/vps";
    let uname = real_path("uname");
    api.set(
        vps,
        "/spec/exec",
        "allowlist",
        json!([real_path("id"), uname]),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run_on_node(
            port,
            vec!["desk", "--approval-timeout", "1", "--", "uname", "-s"],
        )
        .await
        .unwrap();
        if out.status.success() {
            assert!(text(&out).contains("Linux"), "{}", text(&out));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kubectl pattern never applied: {}",
            text(&out)
        );
    }
    // The owner sees when each pattern last let a command through, and edits the list with the
    // CLI (as the Control UI does): written to the NodePairing. A kubectl edit made just before
    // is not lost, even if the gateway's cache has not seen it yet (the patch names the
    // resourceVersion it was made from).
    let b_short = b_id[..16].to_string();
    let bs = b_short.clone();
    let shown = tokio::task::spawn_blocking(move || clawops(port, &["nodes", "exec", &bs]))
        .await
        .unwrap();
    assert!(shown.status.success(), "{}", text(&shown));
    let line = text(&shown)
        .lines()
        .find(|l| l.contains(uname.as_str()))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("last used") && line.contains("(uname -s)"),
        "{}",
        text(&shown)
    );
    assert!(
        text(&shown).contains("NodePairing default/vps"),
        "{}",
        text(&shown)
    );
    let df = real_path("df");
    api.set(
        vps,
        "/spec/exec",
        "allowlist",
        json!([real_path("id"), uname, df]),
    );
    let (u, bs) = (uname.clone(), b_short.clone());
    let edited = tokio::task::spawn_blocking(move || {
        clawops(
            port,
            &["nodes", "exec", &bs, "--disallow", &u, "--ask", "always"],
        )
    })
    .await
    .unwrap();
    assert!(edited.status.success(), "{}", text(&edited));
    let np = node_pairing(&api, "vps").unwrap();
    assert_eq!(
        np["spec"]["exec"]["allowlist"],
        json!([real_path("id"), df]),
        "the kubectl edit survived and the CLI's applied"
    );
    assert_eq!(np["spec"]["exec"]["ask"], "always");
    let bad = tokio::task::spawn_blocking(move || {
        clawops(port, &["nodes", "exec", &b_short, "--allow", "uname"])
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("add: `uname` has no `/`"),
        "{}",
        text(&bad)
    );

    // ... and `security: deny` there stops everything, whatever the node's own file allows.
    api.set(vps, "/spec/exec", "security", json!("deny"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run_on_node(port, vec!["desk", "--", "id", "-u"])
            .await
            .unwrap();
        if !out.status.success() {
            assert!(text(&out).contains("security=deny"), "{}", text(&out));
            break;
        }
        assert!(Instant::now() < deadline, "security: deny never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Revoked with kubectl while connected: the node is disconnected at once and asks again.
    api.set(vps, "/spec", "approved", json!(false));
    wait_pairing(&api, "vps", "Revoked", |v| {
        v["status"]["phase"] == "Revoked"
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node_log(&b_state).contains("pairing required") {
        assert!(
            Instant::now() < deadline,
            "the revoked node was not told: {}",
            node_log(&b_state)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = run_on_node(port, vec!["desk", "--", "true"]).await.unwrap();
    assert!(
        !out.status.success(),
        "a revoked node runs nothing: {}",
        text(&out)
    );

    // A request the owner rejects: the NodePairing the gateway made for it goes too.
    let c_state = support::temp_dir("nodes-k8s-c");
    let s = c_state.clone();
    let mut c = tokio::task::spawn_blocking(move || node_host(&s, port))
        .await
        .unwrap();
    let known = [a_id.clone(), b_id.clone()];
    let is_c = move |p: &Value| !known.iter().any(|k| p["nodeId"] == k.as_str());
    let c_pending = is_c.clone();
    let listed = tokio::task::spawn_blocking(move || {
        wait_nodes(port, "node c pending", |v| {
            v["pending"]
                .as_array()
                .is_some_and(|p| p.iter().any(&c_pending))
        })
    })
    .await
    .unwrap();
    let c_id = listed["pending"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| is_c(p))
        .unwrap()["nodeId"]
        .as_str()
        .unwrap()
        .to_string();
    let c_name = format!("shrimp-{}", &c_id[..12]);
    wait_pairing(&api, &c_name, "c's pending NodePairing", |v| {
        v["metadata"]["labels"]["clawops.dev/requested-by"] == "gateway"
    })
    .await;
    c.terminate(Duration::from_secs(10));
    let prefix = c_id[..16].to_string();
    let out = tokio::task::spawn_blocking(move || clawops(port, &["nodes", "reject", &prefix]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        node_pairing(&api, &c_name),
        None,
        "deleted with the request"
    );

    // The gateway stayed within its Role, and the Role grants no NodePairing verb it never used.
    let agent = clawops::manifests::Manifests::from_files(
        &[yaml.to_string_lossy().into_owned()],
        "default",
    )
    .unwrap()
    .agents
    .remove(0);
    let role = clawops::plan::build::rbac::role(&agent, &agent.spec.gateway.exposure());
    let rules = role.rules.clone().unwrap();
    let allowed = support::rbac::allowed(&rules);
    let used: std::collections::BTreeSet<_> =
        api.take_log().iter().map(support::rbac::access).collect();
    for access in &used {
        assert!(allowed.contains(access), "{access:?} not in {rules:?}");
    }
    for access in allowed.iter().filter(|a| a.1.starts_with("nodepairings")) {
        assert!(
            used.contains(access),
            "{access:?} is granted but never used"
        );
    }

    b.terminate(Duration::from_secs(10));
    gw.terminate(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_wss_a_pinned_certificate_is_trusted_and_no_other() {
    use crate::support::nodes::{TLS_FINGERPRINT, node_host_at, tls_front};
    let state = support::temp_dir("nodes-tls-gw");
    let port = free_port();
    let mut gw = tokio::task::spawn_blocking({
        let state = state.clone();
        move || gateway(&state, port)
    })
    .await
    .unwrap();
    let front = tls_front(port).await;
    let url = format!("wss://127.0.0.1:{front}");

    // No pin: the self-signed certificate is not trusted, and the node says so.
    let none = support::temp_dir("nodes-tls-none");
    let mut n = node_host_at(&none, &url, &[]);
    // A wrong pin: refused before anything is sent.
    let wrong = support::temp_dir("nodes-tls-wrong");
    let other = format!("sha256:{}", "00".repeat(32));
    let mut w = node_host_at(&wrong, &url, &["--tls-fingerprint", &other]);
    // The right pin: the handshake goes through to the gateway, which asks for pairing.
    let pinned = support::temp_dir("nodes-tls-pinned");
    let mut p = node_host_at(&pinned, &url, &["--tls-fingerprint", TLS_FINGERPRINT]);

    let deadline = Instant::now() + Duration::from_secs(30);
    while !(node_log(&pinned).contains("pairing required")
        && node_log(&none).contains("cannot reach the gateway")
        && node_log(&wrong).contains("cannot reach the gateway"))
    {
        assert!(
            Instant::now() < deadline,
            "pinned: {}\nnone: {}\nwrong: {}",
            node_log(&pinned),
            node_log(&none),
            node_log(&wrong)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        node_log(&none).contains("invalid peer certificate")
            && node_log(&none).contains("pin it with --tls-fingerprint"),
        "{}",
        node_log(&none)
    );
    assert!(
        node_log(&wrong).contains("not the one --tls-fingerprint names"),
        "{}",
        node_log(&wrong)
    );
    // Only the pinned node reached the gateway: one request waits, and it is the pinned one's.
    let listed = tokio::task::spawn_blocking(move || {
        wait_nodes(port, "the pinned node's request", |v| {
            v["pending"].as_array().is_some_and(|p| p.len() == 1)
        })
    })
    .await
    .unwrap();
    let id = listed["pending"][0]["nodeId"].as_str().unwrap().to_string();
    assert!(node_log(&pinned).contains(&id[..12]));

    // Approved, it connects over wss and runs a command through the proxy.
    let out = tokio::task::spawn_blocking(move || clawops(port, &["nodes", "approve", &id[..12]]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    tokio::task::spawn_blocking(move || {
        wait_nodes(port, "the pinned node connected", |v| {
            v["paired"][0]["connected"] == true
        })
    })
    .await
    .unwrap();
    let out = run_on_node(
        port,
        vec!["desk", "--approval-timeout", "1", "--", "tr", "a", "b"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for child in [&mut n, &mut w, &mut p, &mut gw] {
        child.terminate(Duration::from_secs(10));
    }
}
