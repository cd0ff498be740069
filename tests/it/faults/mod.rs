//! The fault matrix (README "Reliability"), against the real gateway binary and the fakes: what
//! is lost or answered twice when things break. Each test prints its counts.

mod model;
mod nodes;
mod state;
mod telegram;

use std::collections::BTreeMap;

use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::process::*;
use crate::support::{self};

const CHATS: i64 = 20;
const PER_CHAT: usize = 10;

pub(super) fn start(yaml: &std::path::Path, state: &std::path::Path, port: u16) -> Reaper {
    start_with(yaml, state, port, &[])
}

/// [`start`] with more environment variables.
pub(super) fn start_with(
    yaml: &std::path::Path,
    state: &std::path::Path,
    port: u16,
    more: &[(&str, &str)],
) -> Reaper {
    let envs: Vec<(&str, &str)> = [
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
        (
            "ZAI_API_KEY",
            "3f9a1c2b7e4d4c8a9b0e1f2a3b4c5d6e.AbCdEfGhIjKlMnOp",
        ),
        ("CLAWOPS_GATEWAY_TOKEN", crate::nodes::TOKEN),
        // The log goes to a pipe nobody reads until the end: keep it short.
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .chain(more.iter().copied())
    .collect();
    let gw = support::start_gateway(yaml, state, port, &envs);
    wait_for_http(port, "/healthz");
    gw
}

/// How often each message's text came back in a reply (the fake model echoes it).
pub(super) fn answered(tg: &FakeTelegram) -> BTreeMap<(i64, usize), usize> {
    let mut seen = BTreeMap::new();
    for chat in 0..CHATS {
        let replies = tg.sent_to(1000 + chat);
        for i in 0..PER_CHAT {
            let tag = format!("[c{chat}:m{i}]");
            seen.insert(
                (chat, i),
                replies.iter().filter(|r| r.contains(&tag)).count(),
            );
        }
    }
    seen
}
