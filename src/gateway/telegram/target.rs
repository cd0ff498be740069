//! Where a message goes: a chat id, or a forum topic within a group; read from a `deliver.to`
//! or taken from the message being answered.

use teloxide::types::{ChatId, Message, MessageId, ThreadId};

/// Where a message goes: a chat, and in a forum supergroup the topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub chat: ChatId,
    pub thread: Option<ThreadId>,
}

impl From<ChatId> for Target {
    fn from(chat: ChatId) -> Self {
        Self { chat, thread: None }
    }
}

impl Target {
    /// A Cron's or alert's `deliver.to`: a chat id, or `<group id>:topic:<topic id>`.
    pub fn parse(to: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "deliver.to `{to}` is not a Telegram chat id (e.g. 123456789, -1001234567890 or -1001234567890:topic:42)"
            )
        };
        let (chat, topic) = match to.split_once(":topic:") {
            Some((chat, topic)) => (chat, Some(topic)),
            None => (to, None),
        };
        let chat = chat.parse::<i64>().map_err(|_| bad())?;
        let thread = match topic {
            Some(t) => Some(ThreadId(MessageId(t.parse::<i32>().map_err(|_| bad())?))),
            None => None,
        };
        Ok(Self {
            chat: ChatId(chat),
            thread,
        })
    }

    /// Where to answer `msg`: its chat, and its topic in a forum.
    pub fn reply_to(msg: &Message) -> Self {
        Self {
            chat: msg.chat.id,
            thread: msg.thread_id.filter(|_| msg.is_topic_message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_targets_name_chats_and_forum_topics() {
        assert_eq!(
            Target::parse("123456789").unwrap(),
            Target::from(ChatId(123456789))
        );
        let topic = Target::parse("-1001234567890:topic:42").unwrap();
        assert_eq!(topic.chat, ChatId(-1001234567890));
        assert_eq!(topic.thread, Some(ThreadId(MessageId(42))));
        for bad in ["@owner", "-100:topic:x", "12:topic:", ""] {
            assert!(Target::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn replies_stay_in_their_forum_topic() {
        let message = |topic: bool| -> Message {
            serde_json::from_value(serde_json::json!({
                "message_id": 9, "date": 1_763_700_000, "text": "hi",
                "chat": {"id": -1001234567890_i64, "type": "supergroup", "title": "home", "is_forum": true},
                "from": {"id": 1, "is_bot": false, "first_name": "a"},
                "message_thread_id": 42, "is_topic_message": topic,
            }))
            .unwrap()
        };
        assert_eq!(
            Target::reply_to(&message(true)).thread,
            Some(ThreadId(MessageId(42)))
        );
        // A reply chain in an ordinary group also has a thread id; answering into it would fail.
        assert_eq!(Target::reply_to(&message(false)).thread, None);
    }
}
