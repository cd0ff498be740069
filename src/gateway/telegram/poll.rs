//! Long polling: getUpdates with the offset saved as each batch's messages are handled, getMe
//! for the bot's name, backoff on failure, and a prompt stop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Message, Update, UpdateKind};
use teloxide::{ApiError, RequestError};
use tokio::sync::{Mutex, watch};

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

fn offset_file(name: &str) -> String {
    format!("telegram/{name}-offset.json")
}

impl TelegramChannel {
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
                .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
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
        let mut presses = Vec::new();
        for u in updates {
            match u.kind {
                UpdateKind::Message(m) => by_chat.entry(m.chat.id.0).or_default().push((u.id.0, m)),
                UpdateKind::CallbackQuery(q) => presses.push((u.id.0, q)),
                _ => self.done(&progress, u.id.0).await,
            }
        }
        let presses = presses.into_iter().map(|(id, q)| {
            let (me, gw, progress) = (self.clone(), gw.clone(), progress.clone());
            tokio::spawn(async move {
                if let Err(e) = tokio::spawn(me.clone().on_callback(gw, q)).await {
                    tracing::error!(channel = %me.name, update = id, error = %e, "button handler failed");
                }
                me.done(&progress, id).await;
            })
        });
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
        futures::future::join_all(chats.chain(presses)).await;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
