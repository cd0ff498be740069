//! Fault matrix row 3: the model failing — a 429 (1302) storm, the quota (1308) hit in the
//! middle of a turn, a hung connection, an answer cut off mid-body. Every message gets exactly
//! one reply, an answer or a plain notice, and no more model calls run at once than
//! `maxConcurrent`.

use std::time::{Duration, Instant};

use super::start;
use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::FakeTelegram;
use crate::support::process::*;
use crate::support::{self};

/// GLM's "too many at once", taking as long as a real refusal does (so calls overlap).
fn busy() -> Answer {
    Answer::Slow(
        Duration::from_millis(150),
        Box::new(Answer::glm(
            429,
            "1302",
            "High concurrency usage of this API, please reduce concurrency or contact customer service to increase limits",
        )),
    )
}

/// A gateway on the fakes, with `max_concurrent` model calls and a 5 s time limit per model
/// request (so a hang costs seconds, not minutes).
async fn gateway(
    name: &str,
    llm: &FakeLlm,
    tg: &FakeTelegram,
    max_concurrent: u32,
) -> (Reaper, u16) {
    let yaml = support::example_with(
        name,
        &[
            (
                "    primary: zai/glm-4.7\n",
                format!(
                    "    primary: zai/glm-4.7\n    baseUrl: {}\n    timeoutSeconds: 5\n",
                    llm.base_url()
                ),
            ),
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                "    dmPolicy: open\n    allowFrom: [\"*\"]\n".to_string(),
            ),
            (
                "  maxConcurrent: 1\n",
                format!("  maxConcurrent: {max_concurrent}\n"),
            ),
        ],
    );
    let state = support::temp_dir(&format!("{name}-state"));
    let port = free_port();
    let gw = tokio::task::spawn_blocking(move || start(&yaml, &state, port))
        .await
        .unwrap();
    (gw, port)
}

/// What a chat was sent back, progress lines ("🔧 …", edited in place) left out.
fn replies(tg: &FakeTelegram, chat: i64) -> Vec<String> {
    tg.sent_to(chat)
        .into_iter()
        .filter(|t| !t.starts_with("🔧"))
        .collect()
}

/// What one message got back: its answer (the fake echoes the text), a notice, or nothing.
#[derive(Clone, Debug, PartialEq)]
enum Got {
    Answer,
    Notice(String),
}

/// Waits until `chat` has `n` replies (or `within` passes), then reads each as the answer to
/// `tags[i]` or a notice. Extra replies (a message answered twice) are returned too.
async fn outcome(tg: &FakeTelegram, chat: i64, tags: &[String], within: Duration) -> Vec<Got> {
    let deadline = Instant::now() + within;
    while replies(tg, chat).len() < tags.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A second reply to the same message would come at once: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = replies(tg, chat);
    got.iter()
        .enumerate()
        .map(|(i, text)| match tags.get(i) {
            Some(tag) if text.contains(tag.as_str()) => Got::Answer,
            _ => Got::Notice(text.clone()),
        })
        .collect()
}

/// A notice is plain: the warning sign, words, and nothing a user should not see.
fn assert_plain(notice: &str, about: &str) {
    assert!(notice.starts_with("⚠️"), "{about}: not a notice: {notice}");
    for inner in ["{", "<html", "chatcmpl", "AbCdEfGh", "reqwest", "hyper"] {
        assert!(!notice.contains(inner), "{about}: {inner} in {notice}");
    }
}

/// A 1302 storm: 20 chats write at its start and in its middle (told "busy"), and again as it
/// ends (answered).
async fn storm(lasting: Duration) {
    const CHATS: i64 = 20;
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let (mut gw, _) = gateway(&format!("faults-storm-{}", lasting.as_secs()), &llm, &tg, 2).await;
    // Answers take a moment too, so calls overlap when the limit lets them.
    llm.script(
        "glm-4.7",
        (0..CHATS * 3).map(|_| Answer::Slow(Duration::from_millis(300), Box::new(Answer::Echo))),
    );
    let started = Instant::now();
    llm.storm(lasting, busy());
    let wave = |n: usize| {
        for chat in 0..CHATS {
            tg.dm(
                2000 + chat,
                &format!("user{chat}"),
                &format!("question [s{chat}:w{n}]"),
            );
        }
    };
    wave(0);
    tokio::time::sleep(lasting / 2).await;
    wave(1);
    tokio::time::sleep(lasting.saturating_sub(started.elapsed())).await;
    wave(2);
    let (mut answers, mut notices, mut silent, mut twice, mut answered_after) = (0, 0, 0, 0, 0);
    for chat in 0..CHATS {
        let tags: Vec<String> = (0..3).map(|w| format!("[s{chat}:w{w}]")).collect();
        let got = outcome(&tg, 2000 + chat, &tags, Duration::from_secs(90)).await;
        silent += tags.len().saturating_sub(got.len());
        twice += got.len().saturating_sub(tags.len());
        for (w, g) in got.iter().enumerate().take(tags.len()) {
            match g {
                Got::Answer => {
                    answers += 1;
                    answered_after += usize::from(w == 2);
                }
                Got::Notice(text) => {
                    notices += 1;
                    assert_plain(text, "storm");
                    assert!(text.contains("1302"), "the notice says why: {text}");
                }
            }
        }
    }
    let peak = llm.peak();
    println!(
        "fault model 429 (1302) storm of {} s, maxConcurrent 2: {} messages from {CHATS} chats, {answers} answered ({answered_after} of the {CHATS} sent as it ended), {notices} told the model is busy, {silent} without a reply, {twice} replied twice; model calls at once at most {peak}; {:.1} s in all",
        lasting.as_secs(),
        CHATS * 3,
        started.elapsed().as_secs_f64()
    );
    assert_eq!((silent, twice), (0, 0));
    assert_eq!(
        answered_after, CHATS as usize,
        "after the storm all are answered"
    );
    // Messages wait for a slot, so how many reach the model during the storm depends on its
    // length; some always do.
    assert!(notices > 0, "the storm was felt");
    assert_eq!(peak, 2, "model calls at once (maxConcurrent 2, and used)");
    gw.terminate(Duration::from_secs(15));
    let log = gw.stderr();
    assert!(
        !log.contains("AbCdEfGhIjKlMnOp"),
        "the model key in the log"
    );
}

/// The storm in `make test`: 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_429_storm_gives_every_message_one_reply() {
    storm(Duration::from_secs(10)).await;
}

/// The storm the issue asks for: 2 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "2.5 min; make reliability runs it"]
async fn a_two_minute_429_storm_gives_every_message_one_reply() {
    storm(Duration::from_secs(120)).await;
}

/// At once, in separate chats: the quota hit between a tool call and the answer, a hung
/// connection (once, then always), an answer cut mid-body (once, then always), and a chat
/// that only asks. Three model calls at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_hangs_and_cut_answers_end_in_an_answer_or_a_plain_notice() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let quota = Answer::glm(
        429,
        "1308",
        "Usage limit reached for 5 hour. Your limit will reset at 2026-11-29 18:00:00",
    );
    llm.script_when(
        "[quota]",
        [
            Answer::Tools(vec![("nodes_list", serde_json::json!({}))]),
            quota,
        ],
    );
    llm.script_when("[hang-once]", [Answer::Hang]);
    llm.script_when("[hang-always]", [Answer::Hang, Answer::Hang, Answer::Hang]);
    llm.script_when("[cut-once]", [Answer::Cut]);
    llm.script_when("[cut-always]", [Answer::Cut, Answer::Cut, Answer::Cut]);
    let (mut gw, _) = gateway("faults-model", &llm, &tg, 3).await;
    let started = Instant::now();
    let cases = [
        "quota",
        "hang-once",
        "hang-always",
        "cut-once",
        "cut-always",
    ];
    for (i, case) in cases.iter().enumerate() {
        tg.dm(3000 + i as i64, case, &format!("question [{case}]"));
    }
    // Meanwhile a plain chat asks three times.
    let plain: Vec<String> = (0..3).map(|n| format!("[plain:{n}]")).collect();
    for tag in &plain {
        tg.dm(3100, "plain", &format!("question {tag}"));
    }
    let mut got = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let tags = [format!("[{case}]")];
        got.push(outcome(&tg, 3000 + i as i64, &tags, Duration::from_secs(60)).await);
    }
    let plain_got = outcome(&tg, 3100, &plain, Duration::from_secs(60)).await;
    println!(
        "fault model (quota mid-turn, hang once/always, cut once/always, 5 s per request, maxConcurrent 3): {:?}; a plain chat meanwhile: {plain_got:?}; model calls at once at most {}; {:.1} s",
        cases.iter().zip(&got).collect::<Vec<_>>(),
        llm.peak(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        plain_got,
        vec![Got::Answer; 3],
        "the plain chat is answered"
    );
    for (case, got) in cases.iter().zip(&got) {
        assert_eq!(got.len(), 1, "{case}: one reply: {got:?}");
        match (*case, &got[0]) {
            ("hang-once" | "cut-once", Got::Answer) => {}
            ("quota", Got::Notice(n)) => {
                assert_plain(n, case);
                assert!(n.contains("1308") && n.contains("18:00"), "says when: {n}");
            }
            ("hang-always" | "cut-always", Got::Notice(n)) => {
                assert_plain(n, case);
                // The example's persona speaks Chinese: the notice does too.
                assert!(
                    n.contains("连不上") || n.contains("cannot be reached"),
                    "{n}"
                );
            }
            (case, g) => panic!("{case}: {g:?}"),
        }
    }
    assert!(llm.peak() <= 3, "{} model calls at once", llm.peak());
    // The conversation cut by the quota goes on: the model gets a history it accepts (a call
    // left without its result would be refused with 1214) and answers.
    tg.dm(3000, "quota", "question [quota-after]");
    let after = outcome(
        &tg,
        3000,
        &["[quota]".into(), "[quota-after]".into()],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        after.get(1),
        Some(&Got::Answer),
        "after the quota: {after:?}"
    );
    gw.terminate(Duration::from_secs(15));
    let log = gw.stderr();
    assert!(
        !log.contains("AbCdEfGhIjKlMnOp"),
        "the model key in the log"
    );
}
