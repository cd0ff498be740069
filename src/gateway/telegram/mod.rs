//! A Telegram channel: long polling with the update offset persisted after each batch is
//! handled (a restart neither loses nor repeats a message), access policy and pairing, a
//! typing indicator while the model works, and paced sends retried on 429.

pub mod pace;
pub mod policy;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, ChatAction, ChatId, Message, UpdateKind};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{Mutex, watch};

use super::Gateway;
use super::pairing::{self, Outcome, PairingStore, SenderMeta};
use super::state::{StateDir, StateError};
use crate::config::ChannelConfig;
use policy::{Incoming, Verdict};

/// Seconds a getUpdates call waits for news.
pub const POLL_TIMEOUT: u32 = 25;

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
    pacer: pace::Pacer,
    pub pairing: PairingStore,
    state: StateDir,
    pub probe: Mutex<Probe>,
}

fn offset_file(name: &str) -> String {
    format!("telegram/{name}-offset.json")
}

impl TelegramChannel {
    pub fn new(config: ChannelConfig, token: &str, state: StateDir) -> Result<Self, StateError> {
        let mut bot = Bot::new(token);
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
            pacer: pace::Pacer::default(),
            config,
            state,
            probe: Mutex::default(),
        })
    }

    /// Polls until `stop` turns true.
    pub async fn run(self: Arc<Self>, gw: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
        let mut offset: i32 = self
            .state
            .read(&offset_file(&self.name))
            .ok()
            .flatten()
            .unwrap_or(0);
        let mut backoff = Duration::from_secs(1);
        let mut known = false;
        while !*stop.borrow() {
            if !known {
                known = self.identify().await;
            }
            let poll = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(POLL_TIMEOUT)
                .allowed_updates(vec![AllowedUpdate::Message]);
            let updates = tokio::select! {
                _ = stop.changed() => break,
                r = poll => r,
            };
            match updates {
                Ok(updates) => {
                    backoff = Duration::from_secs(1);
                    let Some(last) = updates.last().map(|u| u.id.0) else {
                        continue;
                    };
                    // A batch is handled (answered or explicitly refused) before it is confirmed.
                    let work = updates.into_iter().filter_map(|u| match u.kind {
                        UpdateKind::Message(m) => Some(self.clone().handle(gw.clone(), m)),
                        _ => None,
                    });
                    futures::future::join_all(work.map(tokio::spawn)).await;
                    offset = last as i32 + 1;
                    if let Err(e) = self.state.write(&offset_file(&self.name), &offset) {
                        tracing::error!(channel = %self.name, error = %e, "update offset not saved");
                    }
                }
                Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                    tracing::error!(channel = %self.name, "another process polls this bot token (409 Conflict); only one gateway may run per bot");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Err(e) => {
                    tracing::warn!(channel = %self.name, error = %e, retry_in = ?backoff, "getUpdates failed");
                    self.probe.lock().await.error = Some(e.to_string());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// getMe: the bot's username, for `/health` and mentions.
    async fn identify(&self) -> bool {
        match self.bot.get_me().await {
            Ok(me) => {
                let username = me.username().to_string();
                tracing::info!(channel = %self.name, bot = %format!("@{username}"), "telegram connected");
                *self.probe.lock().await = Probe {
                    username: Some(username),
                    error: None,
                };
                true
            }
            Err(e) => {
                tracing::warn!(channel = %self.name, error = %e, "getMe failed");
                *self.probe.lock().await = Probe {
                    username: None,
                    error: Some(e.to_string()),
                };
                false
            }
        }
    }

    async fn handle(self: Arc<Self>, gw: Arc<Gateway>, msg: Message) {
        let Some(text) = msg.text() else { return };
        let from = msg.from.as_ref();
        let username = self.probe.lock().await.username.clone();
        let addressed = username
            .as_ref()
            .is_some_and(|u| text.contains(&format!("@{u}")))
            || msg
                .reply_to_message()
                .and_then(|r| r.from.as_ref())
                .is_some_and(|u| u.is_bot && username.as_deref() == u.username.as_deref());
        let incoming = Incoming {
            chat_id: msg.chat.id.0,
            private: msg.chat.is_private(),
            sender_id: from.map(|u| u.id.0),
            sender_username: from.and_then(|u| u.username.as_deref()),
            addressed,
        };
        let sender = from.map(|u| u.id.0.to_string()).unwrap_or_default();
        let paired = self.pairing.is_allowed(&sender).await;
        gw.metrics.messages_in.inc();
        match policy::decide(&self.config.telegram, &incoming, paired) {
            Verdict::Ignore(why) => {
                tracing::debug!(channel = %self.name, chat = msg.chat.id.0, why, "message ignored")
            }
            Verdict::Pair => {
                let meta = SenderMeta {
                    username: from.and_then(|u| u.username.clone()),
                    first_name: from.map(|u| u.first_name.clone()),
                    last_name: from.and_then(|u| u.last_name.clone()),
                };
                match self.pairing.request(&sender, meta, Utc::now()).await {
                    Ok(Outcome::Created(code)) => {
                        gw.metrics.pairing_requests.inc();
                        tracing::info!(channel = %self.name, sender, "pairing requested; approve with: clawops pairing approve {} {code}", self.name);
                        self.send(
                            &gw,
                            msg.chat.id,
                            &pairing::pairing_reply(&sender, &code, &self.name),
                        )
                        .await;
                    }
                    Ok(Outcome::Pending | Outcome::Full) => {}
                    Err(e) => {
                        tracing::error!(channel = %self.name, error = %e, "pairing request not saved")
                    }
                }
            }
            Verdict::Answer => {
                let typing = self.typing(msg.chat.id);
                let answer = gw
                    .agent
                    .reply(&format!("telegram-{}-{}", self.name, msg.chat.id.0), text)
                    .await;
                typing.abort();
                let reply = answer.unwrap_or_else(|e| {
                    super::agent::explain(&e, super::agent::speaks_cjk(&gw.agent.config))
                });
                gw.note_chat(&self, msg.chat.id);
                self.send(&gw, msg.chat.id, &reply).await;
            }
        }
    }

    /// Shows "typing…" until aborted (Telegram clears it after 5 s).
    fn typing(&self, chat: ChatId) -> tokio::task::JoinHandle<()> {
        let bot = self.bot.clone();
        tokio::spawn(async move {
            loop {
                let _ = bot.send_chat_action(chat, ChatAction::Typing).await;
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
        })
    }

    /// Sends `text` in chunks that fit, waiting out 429s.
    pub async fn send(&self, gw: &Gateway, chat: ChatId, text: &str) {
        for chunk in text::split(text, text::LIMIT) {
            let mut tries = 0;
            loop {
                self.pacer.turn(chat.0).await;
                match self.bot.send_message(chat, chunk.clone()).await {
                    Ok(_) => {
                        gw.metrics.messages_out.inc();
                        break;
                    }
                    Err(RequestError::RetryAfter(s)) if tries < 5 => {
                        tries += 1;
                        tracing::info!(chat = chat.0, wait = ?s.duration(), "Telegram asked to slow down (429)");
                        tokio::time::sleep(s.duration()).await;
                    }
                    Err(e) => {
                        tracing::error!(channel = %self.name, chat = chat.0, error = %e, "reply not delivered");
                        return;
                    }
                }
            }
        }
    }
}
