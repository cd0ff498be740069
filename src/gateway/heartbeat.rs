//! Heartbeat: a periodic agent turn (`heartbeat.every`, `0m` = off). An answer that is only
//! an acknowledgement (`HEARTBEAT_OK`, with at most 300 other characters) is not delivered;
//! anything else goes to the chat the agent last answered, which the heartbeat keeps here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use teloxide::types::ChatId;
use tokio::task::JoinHandle;

use super::Gateway;
use super::assistant::model::ModelError;
use super::telegram::TelegramChannel;

pub const PROMPT: &str = "Heartbeat check. Look at what you know and whether anything needs the user's attention now. \
Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply HEARTBEAT_OK.";
pub const ACK: &str = "HEARTBEAT_OK";
/// Characters besides the acknowledgement that still count as "nothing to say".
pub const ACK_MAX_CHARS: usize = 300;

/// The chat the agent last answered, on whichever channel: where heartbeat news goes.
#[derive(Default)]
pub struct LastChat(Mutex<Option<(Arc<TelegramChannel>, ChatId)>>);

impl LastChat {
    /// Notes `chat` on `channel` as the chat last answered.
    pub fn note(&self, channel: &Arc<TelegramChannel>, chat: ChatId) {
        *self.0.lock().expect("last chat lock") = Some((channel.clone(), chat));
    }

    /// The chat last answered, if any chat has talked to the agent yet.
    pub fn get(&self) -> Option<(Arc<TelegramChannel>, ChatId)> {
        self.0.lock().expect("last chat lock").clone()
    }
}

/// What of a heartbeat answer to deliver, if anything.
pub fn deliverable(answer: &str) -> Option<String> {
    let trimmed = answer.trim();
    let stripped = trimmed
        .strip_prefix(ACK)
        .or_else(|| trimmed.strip_suffix(ACK));
    match stripped {
        Some(rest) if rest.trim().chars().count() <= ACK_MAX_CHARS => None,
        Some(rest) => Some(rest.trim().to_string()),
        None => Some(trimmed.to_string()),
    }
}

/// One heartbeat turn; it waits for a model slot like any chat.
pub async fn beat(gw: &Gateway) -> Result<Option<String>, ModelError> {
    Ok(deliverable(&gw.assistant.one_off(PROMPT).await?))
}

/// Starts the heartbeat, unless `heartbeat.every` is 0 (or unreadable).
pub fn start(gw: &Arc<Gateway>) -> Option<JoinHandle<()>> {
    let every = crate::crd::common::parse_duration(&gw.config.agent.heartbeat.every).unwrap_or(0);
    (every > 0).then(|| tokio::spawn(run(gw.clone(), Duration::from_secs(every))))
}

/// Beats every `every` until the process ends.
pub async fn run(gw: Arc<Gateway>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        match beat(&gw).await {
            Ok(None) => tracing::debug!("heartbeat: nothing to report"),
            Ok(Some(text)) => match gw.last_chat.get() {
                Some((channel, chat)) => {
                    channel.send(&gw, chat, &text).await;
                }
                None => tracing::info!(
                    "heartbeat has something to say but no chat has talked to the agent yet"
                ),
            },
            Err(e) => tracing::warn!(error = %e, "heartbeat turn failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_not_delivered() {
        assert_eq!(deliverable("HEARTBEAT_OK"), None);
        assert_eq!(deliverable("  HEARTBEAT_OK  "), None);
        assert_eq!(deliverable("All quiet. HEARTBEAT_OK"), None);
        assert_eq!(
            deliverable(&format!("HEARTBEAT_OK {}", "x".repeat(300))),
            None
        );
    }

    #[test]
    fn real_news_is_delivered() {
        assert_eq!(
            deliverable("Disk /var is 95% full."),
            Some("Disk /var is 95% full.".into())
        );
        let long = format!("HEARTBEAT_OK\n{}", "y".repeat(301));
        assert_eq!(deliverable(&long), Some("y".repeat(301)));
    }
}
