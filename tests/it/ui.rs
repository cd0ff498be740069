//! The Control UI in a real browser: Debian's Chromium, driven by playwright-core
//! (`tests/ui/journey.mjs`), against the real gateway binary with the fake Bot API and model
//! and the real node host on loopback. The browser signs in with a tokenized link, approves a
//! Telegram pairing and a node, runs a Cron, chats; this test checks that each reached the
//! fakes, that a wrong token and a cross-site request are refused, and that axe-core finds no
//! serious accessibility violation. Screenshots land in `target/ui-shots/`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::nodes::{TOKEN, wait_nodes};
use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::nodes::{node_host_at, real_path};
use crate::support::{self, process::*};

const STRANGER: i64 = 4242;
const OTHER: i64 = 4343;
/// The example Crons' `deliver.to`.
const CRON_CHAT: i64 = 123456789;
/// `spec.gateway.controlUi.basePath`.
const BASE: &str = "/claw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_runs_the_gateway_from_the_browser() {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new(&format!("{root}/tests/ui/node_modules/playwright-core")).exists(),
        "the browser driver is not installed: run scripts/install-ui-deps.sh (make test does)"
    );
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    // The browser's chat is the first turn: the model lists the nodes, then (after a while)
    // answers with what the tool returned.
    llm.script(
        "glm-4.7",
        [
            Answer::Tools(vec![("nodes_list", serde_json::json!({}))]),
            Answer::Slow(Duration::from_millis(1500), Box::new(Answer::QuoteTools)),
        ],
    );
    // Served under a path prefix, as behind an Ingress that routes `/claw` on a shared host:
    // the browser, the API and the node's WebSocket all go through it.
    let yaml = support::example_with(
        "ui",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "  gateway:\n",
                format!("  gateway:\n    controlUi:\n      basePath: {BASE}\n"),
            ),
        ],
    );
    let state = support::temp_dir("ui-state");
    let port = free_port();
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || {
        let gw = support::start_gateway(
            &y,
            &s,
            port,
            &[
                ("CLAWOPS_GATEWAY_TOKEN", TOKEN),
                ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
                ("ZAI_API_KEY", "test-key"),
            ],
        );
        wait_for_http(port, "/healthz");
        gw
    })
    .await
    .unwrap();
    // Two people ask to pair on Telegram; a node asks to pair.
    tg.dm(STRANGER, "stranger", "hi");
    tg.dm(OTHER, "other", "hello?");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tg.sent_to(STRANGER).is_empty() || tg.sent_to(OTHER).is_empty() {
        assert!(Instant::now() < deadline, "no pairing codes sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let node_state = support::temp_dir("ui-node");
    let ns = node_state.clone();
    let mut host = tokio::task::spawn_blocking(move || {
        node_host_at(&ns, &format!("ws://127.0.0.1:{port}{BASE}"), &[])
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || {
        wait_nodes(port, "a pending node", |v| {
            v["pending"].as_array().is_some_and(|p| !p.is_empty())
        })
    })
    .await
    .unwrap();

    let shots = format!("{root}/target/ui-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(format!("{root}/tests/ui/journey.mjs"))
            .env("URL", format!("http://127.0.0.1:{port}{BASE}"))
            .env("TOKEN", TOKEN)
            .env("ALLOW", real_path("id"))
            .env("SHOTS", &shots)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(printed.trim()).unwrap();

    // Sign-in: a wrong token is named as such; the right one leaves the address bar.
    assert!(
        seen["wrongToken"]
            .as_str()
            .unwrap()
            .contains("token in the link is wrong"),
        "{seen}"
    );
    assert_eq!(
        seen["urlAfterSignIn"],
        format!("http://127.0.0.1:{port}{BASE}/")
    );
    assert!(
        seen["overview"].as_str().unwrap().contains("@shrimp_bot"),
        "{seen}"
    );
    // The approved sender's next message is answered.
    tg.dm(STRANGER, "stranger", "am I in now?");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tg
        .sent_to(STRANGER)
        .iter()
        .any(|t| t.contains("am I in now?"))
    {
        assert!(Instant::now() < deadline, "{:?}", tg.sent_to(STRANGER));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rejected one is asked to pair again, with a new code.
    tg.dm(OTHER, "other", "and me?");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tg.sent_to(OTHER).len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", tg.sent_to(OTHER));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replies = tg.sent_to(OTHER);
    assert_ne!(replies[0], replies[1], "a new code: {replies:?}");
    assert!(
        !replies.iter().any(|t| t.contains("and me?")),
        "not answered: {replies:?}"
    );
    // The overview, asked for first but answered late, did not draw over the nodes page.
    assert_eq!(seen["afterLatePage"], "Nodes", "{seen}");
    // The node approved in the browser is connected.
    assert!(
        seen["nodes"].as_str().unwrap().contains("connected"),
        "{seen}"
    );
    tokio::task::spawn_blocking(move || {
        wait_nodes(port, "the node connected", |v| {
            v["paired"][0]["connected"] == true
        })
    })
    .await
    .unwrap();
    // Before the owner's pattern the node asked (nobody answered in a second: not run); after
    // adding it on the Nodes page the same command ran without asking, and the page shows
    // when the pattern was last used.
    assert_eq!(seen["runBefore"]["status"], 403, "{seen}");
    assert!(
        seen["runBefore"]["body"]
            .as_str()
            .unwrap()
            .contains("nobody answered"),
        "{seen}"
    );
    assert_eq!(seen["runAfter"]["status"], 200, "{seen}");
    assert_eq!(seen["runAfter"]["exitCode"], 0, "{seen}");
    let card = seen["execCard"].as_str().unwrap();
    assert!(
        card.contains(&real_path("id")) && card.contains("id -u"),
        "{card}"
    );
    assert!(
        card.contains("nodes/exec.json"),
        "kept in the state dir: {card}"
    );
    // Run now reached the Cron's chat.
    assert!(
        seen["cronRun"].as_str().unwrap().contains("-patrol: ok ✓"),
        "{seen}"
    );
    assert!(
        !tg.sent_to(CRON_CHAT).is_empty(),
        "the patrol report was delivered"
    );
    assert_eq!(
        seen["chatTools"],
        serde_json::json!(["🔧 nodes_list"]),
        "{seen}"
    );
    assert_eq!(
        seen["toolBeforeAnswer"], true,
        "the call is shown while the turn runs: {seen}"
    );
    assert!(seen["chat"].as_str().unwrap().contains("desk"), "{seen}");
    // The conversation is there when the page opens again.
    let again = seen["chatAgain"].as_str().unwrap();
    assert!(
        again.contains("which machines do I have?")
            && again.contains(seen["chat"].as_str().unwrap()),
        "{seen}"
    );
    // Alerts need the cluster: the page says why they are off here.
    assert!(
        seen["alerts"]
            .as_str()
            .unwrap()
            .contains("there is no Kubernetes client"),
        "{seen}"
    );
    // The Overview counts what happened, from /metrics: the two Telegram messages so far, the
    // two node commands, and the codes, notices and reports sent.
    assert_eq!(
        seen["nodeCounts"], "1 connected, 1 paired, 0 waiting",
        "{seen}"
    );
    // What is off and why: the cluster tools, without a Kubernetes client here.
    assert!(
        seen["disabled"].as_str().unwrap().contains("cluster"),
        "{seen}"
    );
    let counters = &seen["counters"];
    assert_eq!(counters["Messages in"], 2, "{counters}");
    assert_eq!(counters["Node commands"], 2, "{counters}");
    assert!(
        counters["Messages out"].as_u64().unwrap() >= 4,
        "{counters}"
    );
    // A cookie-signed POST without the UI's header is refused.
    assert_eq!(seen["csrfStatus"], 403);
    assert!(seen["zhNav"].as_str().unwrap().contains("节点"), "{seen}");
    // axe-core: nothing serious or critical on any page.
    for (page, violations) in seen["axe"].as_object().unwrap() {
        for v in violations.as_array().unwrap() {
            assert!(
                !matches!(v["impact"].as_str(), Some("serious" | "critical")),
                "{page}: {v}"
            );
        }
    }
    println!(
        "Control UI: first load {} bytes, interactive in {} ms",
        seen["firstLoadBytes"], seen["interactiveMs"]
    );
    host.terminate(Duration::from_secs(10));
    gw.terminate(Duration::from_secs(10));
}
