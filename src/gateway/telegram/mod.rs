//! A Telegram channel: long polling with the update offset persisted after each batch is
//! handled (a restart neither loses nor repeats a message), access policy and pairing, a
//! typing indicator while the model works, and paced sends retried on 429.

pub mod bot_api;
pub mod buttons;
mod message;
pub mod pace;
pub mod pairing;
pub mod policy;
mod poll;
mod progress;
mod target;
pub mod text;

pub use bot_api::{POLL_TIMEOUT, Polling};
pub use target::Target;

use std::time::Duration;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::Requester;
use teloxide::{Bot, RequestError};
use tokio::sync::Mutex;

use super::Gateway;
use crate::plan::gateway_config::ChannelConfig;
use crate::util::state_dir::{StateDir, StateError};
use pairing::PairingStore;

/// The result of the last getMe, for `/health`.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub username: Option<String>,
    pub error: Option<String>,
}

pub struct TelegramChannel {
    pub name: String,
    pub config: ChannelConfig,
    bot: Bot,
    polling: Polling,
    pacer: pace::Pacer,
    pub pairing: PairingStore,
    state: StateDir,
    pub probe: Mutex<Probe>,
}

impl TelegramChannel {
    pub fn new(
        config: ChannelConfig,
        token: &str,
        state: StateDir,
        polling: Polling,
    ) -> Result<Self, StateError> {
        let mut bot = Bot::with_client(token, polling.client());
        if let Some(url) = config
            .telegram
            .api_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
        {
            bot = bot.set_api_url(url);
        }
        Ok(Self {
            name: config.name.clone(),
            pairing: PairingStore::open(state.clone(), &config.name)?,
            bot,
            polling,
            pacer: pace::Pacer::default(),
            config,
            state,
            probe: Mutex::default(),
        })
    }

    /// Sends `text` in chunks that fit. A 429 is waited out; network trouble and Telegram
    /// server errors are retried with backoff. Returns whether every chunk was delivered.
    pub async fn send(&self, gw: &Gateway, to: impl Into<Target>, text: &str) -> bool {
        let Target { chat, thread } = to.into();
        for chunk in text::split(text, text::LIMIT) {
            let mut tries = 0;
            loop {
                self.pacer.turn(chat.0).await;
                tries += 1;
                let mut request = self.bot.send_message(chat, chunk.clone());
                if let Some(thread) = thread {
                    request = request.message_thread_id(thread);
                }
                let wait = match request.await {
                    Ok(_) => {
                        gw.metrics.messages_out.inc();
                        break;
                    }
                    Err(RequestError::RetryAfter(s)) if tries <= 5 => {
                        tracing::info!(chat = chat.0, wait = ?s.duration(), "Telegram asked to slow down (429)");
                        s.duration()
                    }
                    Err(
                        e @ (RequestError::Network(_)
                        | RequestError::Io(_)
                        | RequestError::InvalidJson { .. }),
                    ) if tries <= 3 => {
                        tracing::warn!(channel = %self.name, chat = chat.0, error = %e, "send failed; retrying");
                        Duration::from_secs(1 << tries)
                    }
                    Err(e) => {
                        tracing::error!(channel = %self.name, chat = chat.0, error = %e, "reply not delivered");
                        return false;
                    }
                };
                tokio::time::sleep(wait).await;
            }
        }
        true
    }
}
