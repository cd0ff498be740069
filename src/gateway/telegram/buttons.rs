//! Prompts with inline buttons on Telegram: sent to the channel's owners (the numeric ids in
//! `allowFrom`), a press answered and the message edited to the outcome. Only owners' presses
//! count; anyone else is told so and nothing happens.

use std::sync::Arc;

use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId,
};

use super::TelegramChannel;
use super::policy;
use crate::gateway::Gateway;
use crate::gateway::prompts::{self, Answered, Sent};

impl TelegramChannel {
    /// The owners' private chats: the numeric user ids in `allowFrom`.
    pub fn owner_chats(&self) -> Vec<i64> {
        self.config
            .telegram
            .allow_from
            .iter()
            .filter_map(|a| a.trim().parse::<i64>().ok())
            .filter(|id| *id > 0)
            .collect()
    }

    async fn send_prompt(&self, gw: &Gateway, chat: i64, id: &str) -> Option<i32> {
        let (text, choices) = gw.prompts.get(id)?;
        let row: Vec<InlineKeyboardButton> = choices
            .iter()
            .map(|c| InlineKeyboardButton::callback(c.label, prompts::callback_data(id, c.key)))
            .collect();
        self.pacer.turn(chat).await;
        match self
            .bot
            .send_message(ChatId(chat), text)
            .reply_markup(InlineKeyboardMarkup::new(vec![row]))
            .await
        {
            Ok(m) => {
                gw.metrics.messages_out.inc();
                Some(m.id.0)
            }
            Err(e) => {
                tracing::warn!(channel = %self.name, chat, error = %e, "prompt not delivered");
                None
            }
        }
    }

    /// Replaces a prompt's message with its outcome (which drops its buttons).
    pub async fn edit(&self, chat: i64, message: i32, text: &str) {
        self.pacer.turn(chat).await;
        if let Err(e) = self
            .bot
            .edit_message_text(ChatId(chat), MessageId(message), text)
            .await
        {
            tracing::warn!(channel = %self.name, chat, error = %e, "prompt not updated");
        }
    }

    /// A button press.
    pub(super) async fn on_callback(self: Arc<Self>, gw: Arc<Gateway>, q: CallbackQuery) {
        let owner = policy::listed(
            &self.config.telegram.allow_from,
            Some(q.from.id.0),
            q.from.username.as_deref(),
        );
        let reply = if !owner {
            tracing::warn!(channel = %self.name, from = q.from.id.0, "a button press from someone who is not an owner was ignored");
            "Only the owner can answer this."
        } else {
            let by = q
                .from
                .username
                .as_ref()
                .map(|u| format!("@{u}"))
                .unwrap_or_else(|| q.from.first_name.clone());
            match gw
                .prompts
                .answer(q.data.as_deref().unwrap_or_default(), by)
                .await
            {
                Some(answered) => {
                    show(&gw, &answered).await;
                    "Done."
                }
                None => "This question was answered already or has expired.",
            }
        };
        if let Err(e) = self.bot.answer_callback_query(q.id).text(reply).await {
            tracing::debug!(channel = %self.name, error = %e, "answerCallbackQuery failed");
        }
    }
}

/// Sends prompt `id` to every owner of every channel; returns how many got it.
pub async fn ask_owners(gw: &Gateway, id: &str) -> usize {
    let mut delivered = 0;
    for channel in &gw.channels {
        for chat in channel.owner_chats() {
            if let Some(message) = channel.send_prompt(gw, chat, id).await {
                gw.prompts.sent(
                    id,
                    Sent {
                        channel: channel.name.clone(),
                        chat,
                        message,
                    },
                );
                delivered += 1;
            }
        }
    }
    delivered
}

/// Sends prompt `id` to the chat a question came from — a group, or an owner's private chat;
/// only owners' presses count there too. To the owners' private chats when the question came
/// from someone else's private chat (who could not answer it), from no chat, or the chat
/// cannot be reached.
pub async fn ask_in(gw: &Gateway, id: &str, chat: Option<&prompts::Chat>) -> usize {
    let channel = chat.and_then(|c| gw.channels.iter().find(|ch| ch.name == c.channel));
    if let (Some(channel), Some(chat)) = (channel, chat)
        && (chat.chat < 0 || channel.owner_chats().contains(&chat.chat))
        && let Some(message) = channel.send_prompt(gw, chat.chat, id).await
    {
        gw.prompts.sent(
            id,
            Sent {
                channel: channel.name.clone(),
                chat: chat.chat,
                message,
            },
        );
        return 1;
    }
    ask_owners(gw, id).await
}

/// Shows an answered (or closed) prompt's outcome where it was sent.
pub async fn show(gw: &Gateway, answered: &Answered) {
    for s in &answered.sent {
        if let Some(c) = gw.channels.iter().find(|c| c.name == s.channel) {
            c.edit(s.chat, s.message, &answered.text).await;
        }
    }
}
