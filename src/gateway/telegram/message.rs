//! One incoming message: whether it is addressed to the bot, what the access policy says, and
//! then a pairing request or the agent's answer, with "typing…" shown while the model works.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use teloxide::payloads::SendChatActionSetters;
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, Message};

use super::pairing::{self, Outcome, SenderMeta};
use super::policy::{self, Incoming, Verdict};
use super::progress;
use super::{Target, TelegramChannel};
use crate::gateway::assistant::turn::Origin;
use crate::gateway::prompts::Chat;
use crate::gateway::{Gateway, assistant};

impl TelegramChannel {
    pub(super) async fn handle(self: Arc<Self>, gw: Arc<Gateway>, msg: Message) {
        let Some(text) = msg.text() else { return };
        let from = msg.from.as_ref();
        let username = self.probe.lock().await.username.clone();
        let addressed = username
            .as_ref()
            // Telegram usernames are case-insensitive.
            .is_some_and(|u| {
                text.to_lowercase()
                    .contains(&format!("@{}", u.to_lowercase()))
            })
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
                            Target::reply_to(&msg),
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
                let typing = self.typing(Target::reply_to(&msg));
                let (line, progress) =
                    progress::ProgressLine::start(self.clone(), Target::reply_to(&msg));
                let origin = Origin {
                    chat: Some(Chat {
                        channel: self.name.clone(),
                        chat: msg.chat.id.0,
                    }),
                    progress: Some(progress),
                    message: Some(format!(
                        "telegram/{}/{}/{}",
                        self.name, msg.chat.id.0, msg.id.0
                    )),
                };
                let answer = gw
                    .answer(
                        &format!("telegram-{}-{}", self.name, msg.chat.id.0),
                        text,
                        origin,
                    )
                    .await;
                typing.abort();
                line.finish().await;
                let reply = answer.unwrap_or_else(|e| {
                    assistant::explain(&e, assistant::speaks_cjk(&gw.assistant.config))
                });
                gw.last_chat.note(&self, msg.chat.id);
                self.send(&gw, Target::reply_to(&msg), &reply).await;
            }
        }
    }

    /// Shows "typing…" until aborted (Telegram clears it after 5 s).
    fn typing(&self, to: Target) -> tokio::task::JoinHandle<()> {
        let bot = self.bot.clone();
        tokio::spawn(async move {
            loop {
                let mut request = bot.send_chat_action(to.chat, ChatAction::Typing);
                if let Some(thread) = to.thread {
                    request = request.message_thread_id(thread);
                }
                let _ = request.await;
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
        })
    }
}
