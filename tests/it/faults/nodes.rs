//! Fault matrix row 6: nodes. The connection to a node drops while it runs a command; the
//! gateway is killed while a node runs a command and handles the message again after its
//! restart; a node's clock is 15 minutes off. No command runs twice, a lost result is told as
//! lost, the node comes back by itself, and the clock gets a refusal that says so.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::start;
use crate::nodes::{clawops, text, wait_nodes};
use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::FakeTelegram;
use crate::support::nodes::{allow, connect_frame_at, node_host_at, open, outcome};
use crate::support::process::*;
use crate::support::{self};

/// A TCP relay to `target` whose connections can all be cut at once (a network that drops);
/// new connections go through again. Returns its port and the cutter.
async fn relay(target: u16) -> (u16, watch::Sender<u64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, cuts) = watch::channel(0u64);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut cuts = cuts.clone();
            cuts.mark_unchanged();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cuts.changed() => {}
                }
            });
        }
    });
    (port, cut)
}

/// A command that counts its runs in `count` and takes `secs` seconds.
fn counting_script(dir: &Path, secs: u32) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let count = dir.join("runs");
    let script = dir.join("work.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> {}\nsleep {secs}\necho finished\n",
            count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script.to_string_lossy().into_owned(), count)
}

fn runs(count: &Path) -> usize {
    std::fs::read_to_string(count)
        .unwrap_or_default()
        .lines()
        .count()
}

async fn until(what: &str, within: Duration, test: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !test() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// The result the model was given for its tool call in the turn answering `tag`, last first.
fn tool_results(llm: &FakeLlm, tag: &str) -> Vec<String> {
    llm.seen()
        .iter()
        .rev()
        .filter(|s| s.body.to_string().contains(tag))
        .flat_map(|s| {
            s.body["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m["role"] == "tool")
                .filter_map(|m| m["content"].as_str().map(String::from))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_or_a_gateway_crash_never_runs_a_command_twice() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_with(
        "faults-nodes",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                "    dmPolicy: open\n    allowFrom: [\"*\"]\n".to_string(),
            ),
        ],
    );
    let (gw_state, node_state) = (
        support::temp_dir("faults-nodes-gw"),
        support::temp_dir("faults-nodes-node"),
    );
    let work = support::temp_dir("faults-nodes-work");
    let (script, count) = counting_script(&work, 3);
    let port = free_port();
    let start_gw = {
        let (y, s) = (yaml.clone(), gw_state.clone());
        move || {
            let (y, s) = (y.clone(), s.clone());
            tokio::task::spawn_blocking(move || start(&y, &s, port))
        }
    };
    let mut gw = start_gw().await.unwrap();
    let (relay_port, cut) = relay(port).await;
    let node_state2 = node_state.clone();
    let _host = tokio::task::spawn_blocking(move || {
        node_host_at(&node_state2, &format!("ws://127.0.0.1:{relay_port}"), &[])
    })
    .await
    .unwrap();
    let pending = tokio::task::spawn_blocking(move || {
        wait_nodes(port, "the node asking", |v| {
            v["pending"].as_array().is_some_and(|p| !p.is_empty())
        })
    })
    .await
    .unwrap();
    let node_id = pending["pending"][0]["nodeId"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = clawops(port, &["nodes", "approve", &node_id[..12]]);
    assert!(approved.status.success(), "{}", text(&approved));
    let connected = move || {
        tokio::task::spawn_blocking(move || {
            wait_nodes(port, "the node connected", |v| {
                v["paired"][0]["connected"] == true
            })
        })
    };
    connected().await.unwrap();
    allow(&node_state, &[&script]);
    let exec = json!({"node": "desk", "command": script});

    // 1. The connection drops while the command runs.
    llm.script_when(
        "[cut]",
        [
            Answer::Tools(vec![("node_exec", exec.clone())]),
            Answer::Text("reported [cut]".into()),
        ],
    );
    tg.dm(5000, "owner", "run it [cut]");
    until("the command started", Duration::from_secs(20), || {
        runs(&count) == 1
    })
    .await;
    cut.send_modify(|n| *n += 1);
    until("the reply", Duration::from_secs(20), || {
        tg.sent_to(5000)
            .iter()
            .any(|r| r.contains("reported [cut]"))
    })
    .await;
    let told = tool_results(&llm, "[cut]");
    assert!(
        told.iter().any(|t| t.contains("result is lost")
            && t.contains("may have run")
            && t.contains("do not run it again")),
        "the model is told the result is lost: {told:?}"
    );
    let reconnected = {
        let started = Instant::now();
        connected().await.unwrap();
        started.elapsed()
    };
    // The command went on on the node and ended; it ran once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs(&count), 1);
    let audit = clawops(port, &["audit", "--json"]);
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap_or_default();
    let lost = audit["execs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["decision"] == "lost")
        .count();
    assert_eq!(lost, 1, "the audit says lost: {audit}");

    // 2. The gateway is killed while the node runs; after the restart Telegram hands the message
    // out again and the model asks for the same command: the node answers with the first run.
    llm.script_when(
        "[crash]",
        [
            Answer::Tools(vec![("node_exec", exec.clone())]),
            // Slow: the node is back before the second call goes out.
            Answer::Slow(
                Duration::from_secs(4),
                Box::new(Answer::Tools(vec![("node_exec", exec.clone())])),
            ),
            Answer::Text("done [crash]".into()),
        ],
    );
    tg.dm(5000, "owner", "run it [crash]");
    until("the command started", Duration::from_secs(20), || {
        runs(&count) == 2
    })
    .await;
    gw.0.kill().unwrap();
    gw.0.wait().unwrap();
    let restarted = Instant::now();
    let mut gw = start_gw().await.unwrap();
    connected().await.unwrap();
    let back = restarted.elapsed();
    until("the reply", Duration::from_secs(30), || {
        tg.sent_to(5000).iter().any(|r| r.contains("done [crash]"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        runs(&count),
        2,
        "the command asked again after the crash ran once"
    );
    let told = tool_results(&llm, "[crash]");
    assert!(
        told.first()
            .is_some_and(|t| t.contains("exit code 0") && t.contains("finished")),
        "the second ask got the first run's result: {told:?}"
    );
    let replies = tg
        .sent_to(5000)
        .iter()
        .filter(|r| r.contains("done [crash]"))
        .count();
    assert_eq!(replies, 1, "one reply");

    // 3. A node whose clock is 15 minutes off, either way: refused, and told why.
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let mut refusals = Vec::new();
    for off_min in [15i64, -15] {
        let (mut ws, nonce) = open(port).await;
        let at = chrono::Utc::now().timestamp_millis() + off_min * 60_000;
        use futures::SinkExt;
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            connect_frame_at(&key, &nonce, Some(crate::nodes::TOKEN), at).into(),
        ))
        .await
        .unwrap();
        let (answer, closed) = outcome(&mut ws).await;
        let message = answer.as_ref().map_or(String::new(), |a| {
            a["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        // 900 s, give or take the second the connect took.
        let secs: i64 = message
            .split("signedAt is ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        assert!(
            (898..=902).contains(&secs)
                && message.contains("s from the gateway's clock")
                && message.contains("check the node's clock"),
            "{off_min} min: {answer:?} {closed:?}"
        );
        assert_eq!(
            closed.map(|c| c.0),
            Some(1008),
            "closed as a policy refusal"
        );
        refusals.push(message);
    }
    println!(
        "fault nodes: connection cut mid-run → the model told the result is lost, audit `lost`, ran 1 time, node back in {:.1} s; gateway kill -9 mid-run → node back {:.1} s after the restart, the message handled again, the same command answered from the first run (ran 1 time, 1 reply); clock ±15 min → refused: {:?}",
        reconnected.as_secs_f64(),
        back.as_secs_f64(),
        refusals[0]
    );
    gw.terminate(Duration::from_secs(15));
}
