//! The Telegram journey end to end: the real gateway binary, real teloxide and reqwest, against
//! local fakes of the Telegram Bot API and the model API.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::process::*;

const GATEWAY_TOKEN: &str = "test-gateway-token-0123456789abcdef";
const ALICE: i64 = 555_000_111;

/// The example, with the model and the Bot API pointed at the fakes.
fn config(name: &str, llm: &FakeLlm, tg: &FakeTelegram) -> PathBuf {
    support::example_at_fakes(name, llm, tg)
}

fn start(yaml: &Path, state: &Path, port: u16) -> Reaper {
    start_with(yaml, state, port, &[])
}

/// [`start`] with more environment variables.
fn start_with(yaml: &Path, state: &Path, port: u16, extra: &[(&str, &str)]) -> Reaper {
    let mut envs = vec![
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
        (
            "ZAI_API_KEY",
            "3f9a1c2b7e4d4c8a9b0e1f2a3b4c5d6e.AbCdEfGhIjKlMnOp",
        ),
        ("CLAWOPS_GATEWAY_TOKEN", GATEWAY_TOKEN),
        ("RUST_LOG", "info"),
    ];
    envs.extend_from_slice(extra);
    support::start_gateway(yaml, state, port, &envs)
}

/// The example at the fakes, open to every DM (no pairing in the way).
fn open_config(name: &str, llm: &FakeLlm, tg: &FakeTelegram) -> PathBuf {
    support::example_with(
        name,
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                "    dmPolicy: open\n    allowFrom: [\"*\"]\n".to_string(),
            ),
        ],
    )
}

/// The gateway's /health as JSON.
async fn health(port: u16) -> serde_json::Value {
    let body = tokio::task::spawn_blocking(move || get(port, "/health").unwrap().body)
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn ready(port: u16) {
    tokio::task::spawn_blocking(move || {
        wait_for_http(port, "/readyz");
        // Connected: getMe answered.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !get(port, "/health").is_some_and(|r| r.body.contains("@shrimp_bot")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the bot never connected"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    })
    .await
    .unwrap();
}

async fn cli(args: &[&str], port: u16) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawops"));
    cmd.args(args).args([
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        GATEWAY_TOKEN,
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_chat_limits_and_restart() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = config("journey", &llm, &tg);
    let state = yaml.with_file_name("state");
    let port = free_port();
    let mut gw = start(&yaml, &state, port);
    ready(port).await;

    // An unknown sender gets one code, with their id and the command.
    tg.dm(ALICE, "alice", "你好");
    eventually("a pairing reply", || tg.sent_to(ALICE).len() == 1).await;
    let reply = &tg.sent_to(ALICE)[0];
    assert!(
        reply.contains(&format!("Your Telegram user id: {ALICE}")),
        "{reply}"
    );
    let code = reply.split("Pairing code: ").nth(1).unwrap()[..8].to_string();
    assert!(
        reply.ends_with(&format!("clawops pairing approve telegram {code}")),
        "{reply}"
    );
    tg.dm(ALICE, "alice", "还在吗？");
    eventually("the second message confirmed", || tg.unconfirmed() == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        tg.sent_to(ALICE).len(),
        1,
        "no new code while one is pending"
    );
    assert!(
        llm.seen().is_empty(),
        "nothing reaches the model before approval"
    );

    // The owner lists and approves it.
    let (ok, out, err) = cli(&["pairing", "list", "telegram"], port).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&code) && out.contains(&ALICE.to_string()) && out.contains("@alice"),
        "{out}"
    );
    let (ok, out, err) = cli(
        &[
            "pairing",
            "approve",
            "telegram",
            &code.to_lowercase(),
            "--notify",
        ],
        port,
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "Approved Telegram user {ALICE} (@alice) on channel telegram"
        )),
        "{out}"
    );
    eventually("the approval notice", || {
        tg.sent_to(ALICE)
            .last()
            .is_some_and(|m| m.contains("access approved"))
    })
    .await;
    let (ok, _, err) = cli(&["pairing", "approve", "telegram", "ZZZZZZZZ"], port).await;
    assert!(
        !ok && err.contains("no pending pairing request found for code ZZZZZZZZ"),
        "{err}"
    );
    let (ok, _, err) = cli(&["pairing", "reject", "telegram", "ZZZZZZZZ"], port).await;
    assert!(
        !ok && err.contains("no pending pairing request found for code ZZZZZZZZ"),
        "{err}"
    );
    let (ok, _, err) = cli(&["pairing", "revoke", "telegram", "777"], port).await;
    assert!(
        !ok && err.contains("777 is not an approved sender"),
        "{err}"
    );

    // Now they chat, and the answer carries the persona.
    tg.dm(ALICE, "alice", "集群怎么样？");
    eventually("an answer", || tg.sent_to(ALICE).len() == 3).await;
    let answer = tg.sent_to(ALICE)[2].clone();
    assert!(
        answer.contains("聪明小虾") && answer.contains("集群怎么样？"),
        "{answer}"
    );
    assert!(
        tg.typing_sent_to(ALICE),
        "a typing indicator while the model works"
    );

    // Groups are disabled in the example: a mention in a group is ignored.
    tg.group(-100_123, ALICE, "alice", "@shrimp_bot 在吗");
    eventually("the group message confirmed", || tg.unconfirmed() == 0).await;

    // A reply longer than 4096 characters arrives in pieces.
    llm.script(
        "glm-4.7",
        [Answer::Text(format!(
            "{}\n\n{}",
            "甲".repeat(3000),
            "乙".repeat(3000)
        ))],
    );
    tg.dm(ALICE, "alice", "写长一点");
    eventually("two chunks", || tg.sent_to(ALICE).len() == 5).await;
    let sent = tg.sent_to(ALICE);
    assert_eq!(
        (sent[3].chars().count(), sent[4].chars().count()),
        (3000, 3000)
    );

    // Telegram says 429: the reply waits and still arrives.
    tg.throttle_sends(1, 1);
    tg.dm(ALICE, "alice", "慢一点");
    eventually("the reply after a 429", || tg.sent_to(ALICE).len() == 6).await;

    // A quota error is told plainly, in the persona's language.
    llm.script(
        "glm-4.7",
        [Answer::glm(429, "1308", "Usage limit reached for 5 hour")],
    );
    tg.dm(ALICE, "alice", "再巡检一次");
    eventually("the quota notice", || tg.sent_to(ALICE).len() == 7).await;
    assert!(
        tg.sent_to(ALICE)[6].contains("1308") && tg.sent_to(ALICE)[6].contains("额度"),
        "{}",
        tg.sent_to(ALICE)[6]
    );
    assert!(tg.sent_to(-100_123).is_empty(), "the group got nothing");

    // Restart: approvals and the offset survive; nothing is answered twice.
    let model_calls = llm.seen().len();
    let status = gw.terminate(Duration::from_secs(15));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(BOT_TOKEN), "the bot token reached the log");
    let mut gw = start(&yaml, &state, port);
    ready(port).await;
    tg.dm(ALICE, "alice", "重启后还记得我吗？");
    eventually("an answer after the restart", || {
        tg.sent_to(ALICE).len() == 8
    })
    .await;
    assert!(
        tg.sent_to(ALICE)[7].contains("重启后还记得我吗"),
        "answered, not asked to pair again"
    );
    assert_eq!(
        llm.seen().len(),
        model_calls + 1,
        "only the new message reached the model"
    );
    let history = llm.seen().last().unwrap().body["messages"].clone();
    assert!(
        history.as_array().unwrap().len() > 2,
        "the conversation history survived the restart"
    );
    // Revoked, Alice is asked to pair again.
    let (ok, out, err) = cli(&["pairing", "revoke", "telegram", &ALICE.to_string()], port).await;
    assert!(ok && out.contains("must pair again"), "{out}{err}");
    tg.dm(ALICE, "alice", "还在吗？");
    eventually("a new pairing reply", || tg.sent_to(ALICE).len() == 9).await;
    assert!(
        tg.sent_to(ALICE)[8].contains("clawops pairing approve telegram"),
        "{:?}",
        tg.sent_to(ALICE)
    );
    assert!(gw.terminate(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_run_is_delivered_to_its_chat_and_recorded() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = config("cron", &llm, &tg);
    let state = yaml.with_file_name("state");
    let port = free_port();
    let mut gw = start(&yaml, &state, port);
    ready(port).await;
    let owner = 123_456_789; // deliver.to in the example
    let run = |name: &'static str| {
        tokio::task::spawn_blocking(move || {
            request(
                port,
                "POST",
                &format!("/api/cron/{name}/run"),
                &[&format!("Authorization: Bearer {GATEWAY_TOKEN}")],
                "",
            )
            .unwrap()
        })
    };
    let ok = run("morning-patrol").await.unwrap();
    assert_eq!(ok.code, 200, "{}", ok.body);
    assert!(ok.body.contains("\"delivered\":true"), "{}", ok.body);
    assert_eq!(tg.sent_to(owner).len(), 1);
    assert!(
        tg.sent_to(owner)[0].contains("巡检"),
        "the Cron's message drove the turn: {:?}",
        tg.sent_to(owner)
    );

    // Standalone, the patrol looks at the host; the model got the facts.
    let prompt = llm.seen().last().unwrap().body.to_string();
    assert!(prompt.contains("Patrol of the host"), "{prompt}");
    assert!(prompt.contains("cluster: no Kubernetes client"), "{prompt}");

    // The model fails: the raw patrol report goes out instead, saying so.
    llm.script("glm-4.7", [Answer::glm(429, "1308", "Usage limit reached")]);
    let fallback = run("morning-patrol").await.unwrap();
    assert_eq!(fallback.code, 200, "{}", fallback.body);
    assert!(
        fallback.body.contains("\"status\":\"fallback\""),
        "{}",
        fallback.body
    );
    let raw = &tg.sent_to(owner)[1];
    assert!(
        raw.contains("1308")
            && raw.contains("以下是未经模型整理的巡检原始报告")
            && raw.contains("Patrol of the host"),
        "{raw}"
    );
    let unknown = run("noon-patrol").await.unwrap();
    assert_eq!(unknown.code, 404);
    assert!(
        unknown.body.contains("no Cron named noon-patrol"),
        "{}",
        unknown.body
    );

    let log = std::fs::read_to_string(state.join("cron/runs/morning-patrol.jsonl")).unwrap();
    let runs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["status"].as_str(), runs[1]["status"].as_str()),
        (Some("ok"), Some("fallback"))
    );
    assert!(gw.terminate(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bot_api_is_reported_without_the_bot_token() {
    let closed = free_port();
    let yaml = support::example_with(
        "unreachable",
        &[support::telegram_at(&format!("http://127.0.0.1:{closed}/"))],
    );
    let port = free_port();
    let mut gw = start(&yaml, &yaml.with_file_name("state"), port);
    let health = tokio::task::spawn_blocking(move || {
        wait_for_http(port, "/readyz");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let h = get(port, "/health").unwrap();
            if h.body.contains("\"problem\":\"") && h.body.contains("telegram") {
                return h.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no probe failure reported: {}",
                h.body
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(health.contains("\"ok\":false"), "{health}");
    assert!(
        health.contains(&format!(
            "cannot reach the Bot API server at http://127.0.0.1:{closed}/"
        )) && health.contains("Connection refused"),
        "the problem names the server and the cause: {health}"
    );
    assert!(
        !health.contains(BOT_TOKEN) && !health.contains("AAHk2x9d"),
        "the token leaked into /health: {health}"
    );
    let status = gw.terminate(Duration::from_secs(15));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("getMe failed"), "{logs}");
    assert!(
        !logs.contains("AAHk2x9d"),
        "the token leaked into the log:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chats_messages_are_answered_in_order_each_seeing_the_last() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = open_config("order", &llm, &tg);
    let port = free_port();
    let mut gw = start(&yaml, &yaml.with_file_name("state"), port);
    ready(port).await;
    llm.script(
        "glm-4.7",
        [Answer::Slow(
            Duration::from_millis(300),
            Box::new(Answer::Echo),
        )],
    );
    tg.dm(ALICE, "alice", "第一条");
    tg.dm(ALICE, "alice", "第二条");
    eventually("both answers", || tg.sent_to(ALICE).len() == 2).await;
    let sent = tg.sent_to(ALICE);
    assert!(
        sent[0].ends_with("第一条") && sent[1].ends_with("第二条"),
        "{sent:?}"
    );
    let second = llm
        .seen()
        .into_iter()
        .find(|s| s.body["messages"].as_array().unwrap().last().unwrap()["content"] == "第二条")
        .unwrap();
    assert!(
        second.body["messages"].to_string().contains("第一条"),
        "the second turn saw the first"
    );
    assert!(gw.terminate(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_delivers_into_a_forum_topic() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_with(
        "cron-topic",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "to: \"123456789\" # your Telegram user id (the pairing reply shows it)",
                "to: \"-1001234567890:topic:42\"".to_string(),
            ),
        ],
    );
    let state = yaml.with_file_name("state");
    let port = free_port();
    let mut gw = start(&yaml, &state, port);
    ready(port).await;
    let ok = tokio::task::spawn_blocking(move || {
        request(
            port,
            "POST",
            "/api/cron/morning-patrol/run",
            &[&format!("Authorization: Bearer {GATEWAY_TOKEN}")],
            "",
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(ok.code, 200, "{}", ok.body);
    let sent = tg.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].chat_id, sent[0].thread),
        (-1001234567890, Some(42))
    );
    assert!(gw.terminate(Duration::from_secs(15)).success());
}

/// The fake is as strict as Telegram: a poll is held for the timeout the client asks, and a
/// client that gives up earlier is counted (what the quiet-gateway test relies on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_holds_polls_for_the_asked_timeout_and_counts_cut_offs() {
    let tg = FakeTelegram::start().await;
    let url = format!("{}bot{BOT_TOKEN}/getUpdates", tg.api_url());
    let poll = |client_timeout: u64, hold: u64| {
        let url = url.clone();
        async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(client_timeout))
                .build()
                .unwrap();
            let started = std::time::Instant::now();
            let answer = client
                .post(&url)
                .json(&serde_json::json!({"offset": 0, "timeout": hold}))
                .send()
                .await;
            (answer.is_ok(), started.elapsed())
        }
    };
    let (answered, took) = poll(10, 2).await;
    assert!(answered && took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(tg.aborted_polls(), 0);
    let (answered, _) = poll(1, 3).await;
    assert!(!answered, "the client gave up first");
    eventually("the cut-off poll counted", || tg.aborted_polls() == 1).await;
    // An update ends the hold at once.
    let early = tokio::spawn(poll(10, 20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    tg.dm(ALICE, "alice", "hi");
    let (answered, took) = early.await.unwrap();
    assert!(answered && took < Duration::from_secs(2), "{took:?}");
}

/// Quiet for several polls, then a DM: answered at once, and no poll in between failed or was
/// cut off by the client (a quiet gateway is always listening).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_gateway_keeps_listening_and_answers_at_once() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = open_config("quiet", &llm, &tg);
    let port = free_port();
    let hold = 2;
    let mut gw = start_with(
        &yaml,
        &yaml.with_file_name("state"),
        port,
        &[("CLAWOPS_TELEGRAM_POLL_TIMEOUT", &hold.to_string())],
    );
    ready(port).await;
    let before = tg.get_updates_calls();
    tokio::time::sleep(Duration::from_secs(3 * hold + 1)).await;
    let quiet_polls = tg.get_updates_calls() - before;
    assert!(
        (2..=5).contains(&quiet_polls),
        "{quiet_polls} polls in {}s of quiet: each should be held {hold}s",
        3 * hold + 1
    );
    let asked = std::time::Instant::now();
    tg.dm(ALICE, "alice", "醒着吗？");
    eventually("the answer", || tg.sent_to(ALICE).len() == 1).await;
    let took = tg.sent()[0].at - asked;
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    assert_eq!(tg.aborted_polls(), 0, "a poll was cut off by the client");
    let channel = health(port).await["channels"][0].clone();
    assert_eq!(
        (&channel["ok"], &channel["problem"]),
        (&serde_json::json!(true), &serde_json::Value::Null),
        "{channel}"
    );
    let status = gw.terminate(Duration::from_secs(5));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains("getUpdates failed"), "{logs}");
    assert!(
        logs.contains("telegram connected") && !logs.contains('\x1b'),
        "colour codes in a log that is not a terminal:\n{logs:?}"
    );
}

/// A 5xx from the Bot API: teloxide waits 10 s before it reads the answer, and the poller's
/// backoff counts that wait instead of adding its own (it added a second, then 2, 4, … after
/// each fault before the fault matrix found it): the next poll goes out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_for_a_5xx_answer_counts_as_the_backoff() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    tg.fail_polls(1, 502, "Bad Gateway");
    let yaml = config("five-hundred", &llm, &tg);
    let port = free_port();
    let mut gw = start(&yaml, &yaml.with_file_name("state"), port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tg.get_updates_calls() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no poll after the 502"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.terminate(Duration::from_secs(5));
    let logs = gw.stderr();
    let failed = logs
        .lines()
        .find(|l| l.contains("getUpdates failed"))
        .unwrap_or_else(|| panic!("the 502 is logged:\n{logs}"));
    assert!(
        failed.contains("Bad Gateway") && failed.contains("retry_in=0ns"),
        "{failed}"
    );
}

/// SIGTERM while the poller backs off after failures ends the process at once, not when the
/// backoff (8 s by the fourth failure) runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_backoff_exits_at_once() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    tg.fail_polls(10, 401, "Unauthorized");
    let yaml = config("backoff", &llm, &tg);
    let port = free_port();
    let mut gw = start(&yaml, &yaml.with_file_name("state"), port);
    // Failures at about 0, 1, 3 and 7 s; then an 8 s backoff.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tg.get_updates_calls() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "the poller stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let problem = health(port).await["channels"][0]["problem"].clone();
    assert!(
        problem.as_str().is_some_and(|p| p.contains(&format!(
            "the Bot API server at {} refused the bot token in TELEGRAM_BOT_TOKEN",
            tg.api_url()
        ))),
        "the failure shows in /health: {problem}"
    );
    let asked = std::time::Instant::now();
    let status = gw.terminate(Duration::from_secs(3));
    let took = asked.elapsed();
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    // The wait is counted from when the failed poll was made: a little under 8 s.
    assert!(
        logs.contains("retry_in=7.9") || logs.contains("retry_in=8s"),
        "not in the 8 s backoff:\n{logs}"
    );
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");
    assert_eq!(tg.get_updates_calls(), 4, "no poll after SIGTERM");
}

/// An older self-hosted Bot API server answers getMe without the fields newer ones send
/// (has_main_web_app…): the gateway still learns the bot's @username.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_bot_api_server_still_names_the_bot() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    tg.answer_get_me_like_an_old_server();
    let yaml = config("old-server", &llm, &tg);
    let port = free_port();
    let mut gw = start(&yaml, &yaml.with_file_name("state"), port);
    ready(port).await;
    let channel = health(port).await["channels"][0].clone();
    assert_eq!(channel["bot"], "@shrimp_bot", "{channel}");
    assert_eq!(channel["ok"], true, "{channel}");
    let status = gw.terminate(Duration::from_secs(5));
    let logs = gw.stderr();
    assert!(status.success(), "{logs}");
    assert!(
        logs.contains("answers getMe like an older version") && logs.contains("has_main_web_app"),
        "{logs}"
    );
}
