//! A Telegram channel: long polling with the update offset persisted after each batch is
//! handled (a restart neither loses nor repeats a message), access policy and pairing, a
//! typing indicator while the model works, and paced sends retried on 429.

pub mod bot_api;
pub mod pace;
pub mod policy;
pub mod text;

use bot_api::{BotApiError, lenient_username};
pub use bot_api::{POLL_TIMEOUT, Polling};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::payloads::{SendChatActionSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    AllowedUpdate, ChatAction, ChatId, Message, MessageId, ThreadId, Update, UpdateKind,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{Mutex, watch};

use super::Gateway;
use super::pairing::{self, Outcome, PairingStore, SenderMeta};
use super::state::{StateDir, StateError};
use crate::plan::gateway_config::ChannelConfig;
use policy::{Incoming, Verdict};

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

    #[test]
    fn the_offset_covers_only_the_handled_prefix() {
        let mut p = Progress {
            pending: [5, 6, 7].into_iter().collect(),
            last: 7,
            saved: None,
        };
        p.pending.remove(&7);
        assert_eq!(
            p.offset(),
            5,
            "7 is done but 5 is not: nothing is confirmed"
        );
        p.pending.remove(&5);
        assert_eq!(p.offset(), 6);
        p.pending.remove(&6);
        assert_eq!(p.offset(), 8, "all done: past the batch");
    }
}

/// `work`, unless `stop` turns true first (then None, at once).
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    work: impl std::future::IntoFuture<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        // An error means the sender is gone: nobody can ask to keep going either.
        _ = stop.wait_for(|stopping| *stopping) => None,
        out = work.into_future() => Some(out),
    }
}

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

/// The result of the last getMe, for `/health`.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub username: Option<String>,
    pub error: Option<String>,
}

/// Which updates of a batch are still being handled, and the offset last saved.
struct Progress {
    pending: BTreeSet<u32>,
    /// The batch's highest update id.
    last: u32,
    saved: Option<i32>,
}

impl Progress {
    /// The offset that confirms exactly the handled prefix of the batch.
    fn offset(&self) -> i32 {
        self.pending
            .first()
            .map_or(self.last as i32 + 1, |first| *first as i32)
    }
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

fn offset_file(name: &str) -> String {
    format!("telegram/{name}-offset.json")
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

    /// Polls until `stop` turns true. A poll that ends empty is a success; every wait (a poll's
    /// hold, getMe, a backoff) ends at once when `stop` turns true.
    pub async fn run(self: Arc<Self>, gw: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
        let mut offset: i32 = self
            .state
            .read(&offset_file(&self.name))
            .ok()
            .flatten()
            .unwrap_or(0);
        let mut backoff = Duration::from_secs(1);
        let mut known = false;
        loop {
            if !known {
                let Some(identified) = unless_stopped(&mut stop, self.identify()).await else {
                    break;
                };
                known = identified;
            }
            let poll = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(self.polling.hold.as_secs() as u32)
                .allowed_updates(vec![AllowedUpdate::Message]);
            let Some(updates) = unless_stopped(&mut stop, poll).await else {
                break;
            };
            let pause = match updates {
                Ok(updates) => {
                    backoff = Duration::from_secs(1);
                    // A poll that works clears an earlier failure, for /health and patrols.
                    let mut probe = self.probe.lock().await;
                    if probe.error.is_some() {
                        probe.error = None;
                    }
                    drop(probe);
                    if let Some(next) = self.clone().handle_batch(&gw, updates).await {
                        offset = next;
                    }
                    continue;
                }
                Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                    tracing::error!(channel = %self.name, "another process polls this bot token (409 Conflict); only one gateway may run per bot");
                    self.probe.lock().await.error = Some(
                        "another process polls this bot token (409 Conflict): only one gateway may run per bot".into(),
                    );
                    Duration::from_secs(5)
                }
                Err(e) => {
                    // Telegram's own flood wait, when it names one, is the least to wait.
                    let wait = match &e {
                        RequestError::RetryAfter(s) => s.duration().max(backoff),
                        _ => backoff,
                    };
                    let e = BotApiError::from_request(
                        &e,
                        self.bot.api_url().as_str(),
                        &self.config.telegram.bot_token_env,
                    );
                    tracing::warn!(channel = %self.name, error = %e, retry_in = ?wait, "getUpdates failed");
                    self.probe.lock().await.error = Some(e.to_string());
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            if unless_stopped(&mut stop, tokio::time::sleep(pause))
                .await
                .is_none()
            {
                break;
            }
        }
    }

    /// Handles a batch: chats concurrently, each chat's messages in order (so a reply sees the
    /// one before it). The offset moves past a message only once it and every earlier one were
    /// handled (answered or explicitly refused), and is saved each time, so a restart neither
    /// repeats nor loses one. Returns the new offset.
    async fn handle_batch(self: Arc<Self>, gw: &Arc<Gateway>, updates: Vec<Update>) -> Option<i32> {
        let ids: Vec<u32> = updates.iter().map(|u| u.id.0).collect();
        let last = *ids.last()?;
        let progress = Arc::new(Mutex::new(Progress {
            pending: ids.into_iter().collect(),
            last,
            saved: None,
        }));
        let mut by_chat: BTreeMap<i64, Vec<(u32, Message)>> = BTreeMap::new();
        for u in updates {
            match u.kind {
                UpdateKind::Message(m) => by_chat.entry(m.chat.id.0).or_default().push((u.id.0, m)),
                _ => self.done(&progress, u.id.0).await,
            }
        }
        let chats = by_chat.into_values().map(|messages| {
            let (me, gw, progress) = (self.clone(), gw.clone(), progress.clone());
            tokio::spawn(async move {
                for (id, m) in messages {
                    // A panic in one message must not stop the ones after it.
                    if let Err(e) = tokio::spawn(me.clone().handle(gw.clone(), m)).await {
                        tracing::error!(channel = %me.name, update = id, error = %e, "message handler failed");
                    }
                    me.done(&progress, id).await;
                }
            })
        });
        futures::future::join_all(chats).await;
        Some(last as i32 + 1)
    }

    /// Marks update `id` handled and saves the offset when it moved.
    async fn done(&self, progress: &Mutex<Progress>, id: u32) {
        let mut p = progress.lock().await;
        p.pending.remove(&id);
        let next = p.offset();
        if p.saved.is_some_and(|s| s >= next) {
            return;
        }
        p.saved = Some(next);
        let (state, file) = (self.state.clone(), offset_file(&self.name));
        match tokio::task::spawn_blocking(move || state.write(&file, &next))
            .await
            .expect("offset write")
        {
            Ok(()) => {}
            Err(e) => tracing::error!(channel = %self.name, error = %e, "update offset not saved"),
        }
    }

    /// getMe: the bot's username, for `/health` and mentions.
    async fn identify(&self) -> bool {
        let server = self.bot.api_url().to_string();
        let username = match self.bot.get_me().await {
            Ok(me) => me.user.username.clone().ok_or(BotApiError::NoUsername {
                server: server.clone(),
                detail: "Telegram bots always have one".into(),
            }),
            Err(RequestError::InvalidJson { raw, .. }) => lenient_username(&raw, &server)
                .map(|(username, missing)| {
                    tracing::info!(channel = %self.name, %server, detail = %missing, "the Bot API server answers getMe like an older version; reading the username alone");
                    username
                }),
            Err(e) => Err(BotApiError::from_request(
                &e,
                &server,
                &self.config.telegram.bot_token_env,
            )),
        };
        match username {
            Ok(username) => {
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
                let answer = gw
                    .agent
                    .reply(&format!("telegram-{}-{}", self.name, msg.chat.id.0), text)
                    .await;
                typing.abort();
                let reply = answer.unwrap_or_else(|e| {
                    super::agent::explain(&e, super::agent::speaks_cjk(&gw.agent.config))
                });
                gw.note_chat(&self, msg.chat.id);
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
