//! The progress line of a turn that uses tools: after a few seconds, one short message naming
//! the call under way ("🔧 node_exec docker ps …"), edited in place as calls follow, and left
//! as a one-line summary when the answer comes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;

use super::{Target, TelegramChannel};
use crate::gateway::assistant::turn::Progress;

/// Quick turns show no progress line.
pub const SHOW_AFTER: Duration = Duration::from_secs(3);
/// Edits are at most this often (Telegram limits edits too).
const EDIT_EVERY: Duration = Duration::from_secs(2);

#[derive(Default)]
struct State {
    /// The call under way, and how many calls there were.
    line: Option<String>,
    calls: u32,
    /// The line shown, and its message.
    shown: Option<String>,
    message: Option<i32>,
}

pub struct ProgressLine {
    channel: Arc<TelegramChannel>,
    to: Target,
    state: Arc<Mutex<State>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn text(line: &str) -> String {
    format!("🔧 {line} …")
}

impl ProgressLine {
    /// Starts following a turn answered in `to`; the [`Progress`] is what the tools call.
    pub fn start(channel: Arc<TelegramChannel>, to: Target) -> (Self, Progress) {
        let state = Arc::new(Mutex::new(State::default()));
        let sink = state.clone();
        let progress: Progress = Arc::new(move |line: &str| {
            let mut s = sink.lock().expect("progress lock");
            s.line = Some(line.to_string());
            s.calls += 1;
        });
        let (c, st) = (channel.clone(), state.clone());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            // A send under way finishes (and its id is kept) before the summary replaces it.
            let mut pause = SHOW_AFTER;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped.changed() => return,
                }
                pause = EDIT_EVERY;
                let due = {
                    let s = st.lock().expect("progress lock");
                    s.line.clone().filter(|l| s.shown.as_ref() != Some(l))
                };
                if let Some(line) = due {
                    let message = st.lock().expect("progress lock").message;
                    let id = match message {
                        None => c.send_line(to, &text(&line)).await,
                        Some(m) => {
                            c.edit(to.chat.0, m, &text(&line)).await;
                            Some(m)
                        }
                    };
                    let mut s = st.lock().expect("progress lock");
                    s.message = id;
                    s.shown = Some(line);
                }
            }
        });
        (
            Self {
                channel,
                to,
                state,
                stop,
                task,
            },
            progress,
        )
    }

    /// The turn is answered: the line, if shown, becomes a summary of the calls.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let (message, calls) = {
            let s = self.state.lock().expect("progress lock");
            (s.message, s.calls)
        };
        if let Some(m) = message {
            let summary = format!("🔧 {calls} tool call{}", if calls == 1 { "" } else { "s" });
            self.channel.edit(self.to.chat.0, m, &summary).await;
        }
    }
}

impl TelegramChannel {
    /// Sends one plain line to `to`; its message id when Telegram took it.
    async fn send_line(&self, to: Target, text: &str) -> Option<i32> {
        self.pacer.turn(to.chat.0).await;
        let mut request = self.bot.send_message(to.chat, text);
        if let Some(thread) = to.thread {
            request = request.message_thread_id(thread);
        }
        match request.await {
            Ok(m) => Some(m.id.0),
            Err(e) => {
                tracing::debug!(channel = %self.name, error = %e, "progress line not sent");
                None
            }
        }
    }
}
