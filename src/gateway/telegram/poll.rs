//! Long polling: getUpdates with the offset (and the updates handled beyond it) saved as messages
//! are handled, getMe for the bot's name, backoff on failure, and a prompt stop.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::{ApiError, RequestError};
use tokio::sync::{Mutex, Notify, watch};

use super::bot_api::{BotApiError, lenient_username};
use super::{Probe, TelegramChannel};
use crate::gateway::Gateway;

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

/// What the poller keeps in the state dir: the offset that confirms the handled prefix, and the
/// updates handled beyond it (messages of different chats finish out of order). After a crash
/// Telegram hands out everything from the offset again; those handled already are skipped, so
/// no one is answered twice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    offset: i32,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    handled: BTreeSet<u32>,
}

/// The file as this and older gateways wrote it (a bare offset).
#[derive(Deserialize)]
#[serde(untagged)]
enum SavedFile {
    Offset(i32),
    Saved(Saved),
}

/// Which fetched updates are still being handled, which are handled beyond the offset, and what
/// was saved last.
struct Progress {
    pending: BTreeSet<u32>,
    /// Handled, at or above the offset.
    handled: BTreeSet<u32>,
    /// One past the highest update id handed out (or skipped).
    next: i32,
    saved: Saved,
}

impl Progress {
    /// The offset that confirms exactly the handled prefix of what was fetched.
    fn offset(&self) -> i32 {
        self.pending
            .first()
            .map_or(self.next, |first| *first as i32)
    }

    /// Marks `id` handled; what should be saved now, if it changed.
    fn finish(&mut self, id: u32) -> Option<Saved> {
        self.pending.remove(&id);
        let offset = self.offset();
        self.handled.insert(id);
        self.handled.retain(|h| *h as i32 >= offset);
        let now = Saved {
            offset,
            handled: self.handled.clone(),
        };
        (now != self.saved).then(|| {
            self.saved = now.clone();
            now
        })
    }
}

/// The updates in hand, shared by the poller and the handlers.
struct InHand {
    progress: Mutex<Progress>,
    /// Told when a handler finishes.
    finished: Notify,
}

/// While updates are in hand, the poller asks at most this often for new ones (a button press
/// must reach a turn waiting for it).
const BUSY_POLL: Duration = Duration::from_secs(1);

fn offset_file(name: &str) -> String {
    format!("telegram/{name}-offset.json")
}

impl TelegramChannel {
    /// Polls until `stop` turns true, then waits for the updates in hand. A poll that ends empty
    /// is a success; every wait (a poll's hold, getMe, a backoff) ends at once when `stop` turns
    /// true. The poller never waits for a turn: each chat's messages are handled in order, one
    /// after the other, button presses at once, while the poller keeps fetching — without confirming
    /// to Telegram any update not yet handled, so a restart neither repeats nor loses one.
    pub async fn run(self: Arc<Self>, gw: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
        let saved = match self.state.read::<SavedFile>(&offset_file(&self.name)) {
            Ok(Some(SavedFile::Saved(s))) => s,
            Ok(Some(SavedFile::Offset(offset))) => Saved {
                offset,
                handled: BTreeSet::new(),
            },
            Ok(None) => Saved::default(),
            Err(e) => {
                tracing::error!(channel = %self.name, error = %e, "update offset unreadable; starting from what Telegram still holds");
                Saved::default()
            }
        };
        let hand = Arc::new(InHand {
            progress: Mutex::new(Progress {
                pending: BTreeSet::new(),
                handled: saved.handled.clone(),
                next: saved.offset,
                saved,
            }),
            finished: Notify::new(),
        });
        let mut chats: HashMap<i64, watch::Receiver<bool>> = HashMap::new();
        let mut backoff = Duration::from_secs(1);
        let mut known = false;
        loop {
            if !known {
                let Some(identified) = unless_stopped(&mut stop, self.identify()).await else {
                    break;
                };
                known = identified;
            }
            let (offset, busy) = {
                let p = hand.progress.lock().await;
                (p.offset(), !p.pending.is_empty())
            };
            // With updates in hand Telegram answers at once (they are not confirmed yet): ask
            // without holding, and not more often than BUSY_POLL.
            let hold = if busy {
                0
            } else {
                self.polling.hold.as_secs() as u32
            };
            let poll = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(hold)
                .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
            let asked = tokio::time::Instant::now();
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
                    self.clone().dispatch(&gw, &hand, &mut chats, updates).await;
                    if hand.progress.lock().await.pending.is_empty() {
                        continue;
                    }
                    let finished = hand.finished.notified();
                    if unless_stopped(&mut stop, tokio::time::timeout(BUSY_POLL, finished))
                        .await
                        .is_none()
                    {
                        break;
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
                    // Attempts are `backoff` apart, counted from when this one was made:
                    // teloxide itself waits 10 s before reading a 5xx answer.
                    let wait = match &e {
                        RequestError::RetryAfter(s) => s.duration().max(backoff),
                        _ => backoff.saturating_sub(asked.elapsed()),
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
        // Stopping: what is in hand is finished (the caller bounds the wait by the grace
        // period); what is not is fetched again after the restart.
        loop {
            let finished = hand.finished.notified();
            if hand.progress.lock().await.pending.is_empty() {
                break;
            }
            finished.await;
        }
    }

    /// Hands out fetched updates not handed out before: each message once the chat's message
    /// before it is handled (in order, one at a time per chat), each button press at once.
    async fn dispatch(
        self: Arc<Self>,
        gw: &Arc<Gateway>,
        hand: &Arc<InHand>,
        chats: &mut HashMap<i64, watch::Receiver<bool>>,
        updates: Vec<Update>,
    ) {
        let fresh: Vec<Update> = {
            let mut p = hand.progress.lock().await;
            let fresh: Vec<Update> = updates
                .into_iter()
                .filter(|u| u.id.0 as i32 >= p.next)
                .collect();
            for u in &fresh {
                p.next = p.next.max(u.id.0 as i32 + 1);
            }
            // Handled before a crash (out of order, beyond the saved offset): not again.
            let fresh: Vec<Update> = fresh
                .into_iter()
                .filter(|u| !p.handled.contains(&u.id.0))
                .collect();
            for u in &fresh {
                p.pending.insert(u.id.0);
            }
            fresh
        };
        for u in fresh {
            let id = u.id.0;
            match u.kind {
                UpdateKind::Message(m) => {
                    // Each message of a chat waits for the one before it to be handled.
                    let before = chats.remove(&m.chat.id.0);
                    let (handled, after) = watch::channel(false);
                    chats.insert(m.chat.id.0, after);
                    let (me, gw, hand) = (self.clone(), gw.clone(), hand.clone());
                    tokio::spawn(async move {
                        if let Some(mut before) = before {
                            // Err: the one before ended without saying (it panicked); go on.
                            let _ = before.wait_for(|done| *done).await;
                        }
                        // A panic in one message must not stop the ones after it.
                        if let Err(e) = tokio::spawn(me.clone().handle(gw, m)).await {
                            tracing::error!(channel = %me.name, update = id, error = %e, "message handler failed");
                        }
                        me.done(&hand, id).await;
                        let _ = handled.send(true);
                    });
                }
                UpdateKind::CallbackQuery(q) => {
                    let (me, gw, hand) = (self.clone(), gw.clone(), hand.clone());
                    tokio::spawn(async move {
                        if let Err(e) = tokio::spawn(me.clone().on_callback(gw, q)).await {
                            tracing::error!(channel = %me.name, update = id, error = %e, "button handler failed");
                        }
                        me.done(&hand, id).await;
                    });
                }
                _ => self.done(hand, id).await,
            }
        }
        // Chats whose last message is handled need no waiting.
        chats.retain(|_, after| !*after.borrow());
    }

    /// Marks update `id` handled and saves what changed (written before the next update of the
    /// chat is handled).
    async fn done(&self, hand: &InHand, id: u32) {
        let mut p = hand.progress.lock().await;
        if let Some(saved) = p.finish(id) {
            let (state, file) = (self.state.clone(), offset_file(&self.name));
            match tokio::task::spawn_blocking(move || state.write(&file, &saved))
                .await
                .expect("offset write")
            {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(channel = %self.name, error = %e, "update offset not saved")
                }
            }
        }
        drop(p);
        hand.finished.notify_waiters();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_covers_the_handled_prefix_and_the_rest_is_remembered() {
        let mut p = Progress {
            pending: [5, 6, 7].into_iter().collect(),
            handled: BTreeSet::new(),
            next: 8,
            saved: Saved::default(),
        };
        let s = p.finish(7).unwrap();
        assert_eq!(s.offset, 5, "7 is done but 5 is not: nothing is confirmed");
        assert_eq!(s.handled, [7].into(), "7 is remembered as done");
        let s = p.finish(5).unwrap();
        assert_eq!((s.offset, s.handled), (6, [7].into()));
        let s = p.finish(6).unwrap();
        assert_eq!(s.offset, 8, "all done: past the batch");
        assert!(s.handled.is_empty(), "below the offset: forgotten");
    }

    #[test]
    fn the_saved_file_reads_as_older_gateways_wrote_it() {
        let old: SavedFile = serde_json::from_str("42").unwrap();
        assert!(matches!(old, SavedFile::Offset(42)));
        let new: SavedFile = serde_json::from_str(r#"{"offset":42,"handled":[44,45]}"#).unwrap();
        assert!(matches!(new, SavedFile::Saved(s) if s.handled == [44, 45].into()));
        assert_eq!(
            serde_json::to_string(&Saved {
                offset: 7,
                handled: BTreeSet::new()
            })
            .unwrap(),
            r#"{"offset":7}"#
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// A getUpdates answer edited anywhere reads as updates (what the poller then looks at:
        /// text, sender, chat, the message replied to) or is refused, never a panic.
        #[test]
        fn fuzz_updates(edits in crate::util::fuzz::edits()) {
            let seed = r#"[{"update_id":10,"message":{"message_id":1,"date":1737800000,"chat":{"id":42,"type":"private","first_name":"A"},"from":{"id":42,"is_bot":false,"first_name":"A","username":"a"},"text":"hi @shrimp_bot","reply_to_message":{"message_id":0,"date":1737799999,"chat":{"id":42,"type":"private","first_name":"A"},"text":"x"}}},{"update_id":11,"callback_query":{"id":"q","from":{"id":42,"is_bot":false,"first_name":"A"},"chat_instance":"c","data":"appr:1:allow-once","message":{"message_id":2,"date":1737800001,"chat":{"id":42,"type":"private","first_name":"A"},"text":"?"}}}]"#;
            let text = crate::util::fuzz::apply(seed, &edits);
            if let Ok(updates) = serde_json::from_str::<Vec<Update>>(&text) {
                for u in &updates {
                    if let UpdateKind::Message(m) = &u.kind {
                        let _ = (m.text(), m.from.as_ref().map(|f| f.id), m.chat.is_private(), m.reply_to_message());
                    }
                }
            }
        }
    }
}
