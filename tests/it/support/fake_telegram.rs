//! A fake Telegram Bot API server: `/bot<token>/<method>` with getMe (optionally shaped like an
//! older self-hosted server's), getUpdates (a long poll held for the `timeout` the client asks,
//! as Telegram does, ending early when an update arrives; offsets confirm; optionally failing),
//! sendMessage (optionally 429 with retry_after; inline keyboards kept, callback data over 64
//! bytes refused as Telegram does), sendChatAction, answerCallbackQuery and editMessageText.
//! Tests push user messages and button presses, read what the bot sent and edited, and count
//! polls the client cut off before the hold ended.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const BOT_TOKEN: &str = "7012345678:AAHk2x9dRealLookingBotTokenValue0123456";
pub const BOT_ID: i64 = 7012345678;

#[derive(Clone, Debug)]
pub struct Sent {
    pub chat_id: i64,
    /// The forum topic (`message_thread_id`), if any.
    pub thread: Option<i64>,
    pub text: String,
    pub at: std::time::Instant,
    pub message_id: i64,
    /// Inline keyboard buttons: (label, callback data).
    pub buttons: Vec<(String, String)>,
}

#[derive(Default)]
struct Inner {
    updates: Vec<Value>,
    next_update: i64,
    next_message: i64,
    sent: Vec<Sent>,
    actions: Vec<(i64, String)>,
    /// answerCallbackQuery calls: (callback query id, text).
    answers: Vec<(String, String)>,
    /// editMessageText calls: (chat, message id, text).
    edits: Vec<(i64, i64, String)>,
    /// The next sendMessage calls answered with 429 and this retry_after.
    throttle: Vec<u64>,
    get_updates_calls: u64,
    /// getUpdates calls the client gave up on (connection closed) before the answer.
    aborted_polls: u64,
    /// How the next getUpdates calls fail.
    poll_failures: Vec<PollFailure>,
    /// getMe answers like a Bot API server from before 7.2 (no can_connect_to_business,
    /// has_main_web_app), as an older self-hosted `telegram-bot-api` does.
    old_get_me: bool,
    /// When each message text was first handed to the bot by getUpdates.
    delivered: std::collections::HashMap<String, std::time::Instant>,
}

#[derive(Clone)]
pub struct FakeTelegram {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    pub addr: SocketAddr,
}

impl FakeTelegram {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let me = Self {
            inner: Arc::new(Mutex::new(Inner {
                next_update: 1000,
                next_message: 1,
                ..Default::default()
            })),
            notify: Arc::new(Notify::new()),
            addr: listener.local_addr().unwrap(),
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(call).get(call))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        me
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A text message from user `from` in a private chat with them.
    pub fn dm(&self, from: i64, username: &str, text: &str) {
        self.push(
            json!({"id": from, "type": "private", "first_name": username, "username": username}),
            from,
            username,
            text,
        );
    }

    /// A text message from user `from` in group `chat`.
    pub fn group(&self, chat: i64, from: i64, username: &str, text: &str) {
        self.push(
            json!({"id": chat, "type": "group", "title": "ops"}),
            from,
            username,
            text,
        );
    }

    fn push(&self, chat: Value, from: i64, username: &str, text: &str) {
        let mut i = self.inner.lock().unwrap();
        let (update_id, message_id) = (i.next_update, i.next_message);
        i.next_update += 1;
        i.next_message += 1;
        i.updates.push(json!({
            "update_id": update_id,
            "message": {
                "message_id": message_id, "date": 1_763_700_000, "chat": chat, "text": text,
                "from": {"id": from, "is_bot": false, "first_name": username, "username": username},
            }
        }));
        drop(i);
        self.notify.notify_waiters();
    }

    /// User `from` presses the button with `data` under the bot's message `message_id`.
    pub fn press(&self, from: i64, username: &str, message_id: i64, data: &str) {
        let mut i = self.inner.lock().unwrap();
        let update_id = i.next_update;
        i.next_update += 1;
        // The press comes from the chat the message was sent to, as Telegram reports it.
        let (text, chat) = i
            .sent
            .iter()
            .find(|s| s.message_id == message_id)
            .map(|s| (s.text.clone(), s.chat_id))
            .unwrap_or_default();
        let chat = if chat < 0 {
            json!({"id": chat, "type": "group", "title": "ops"})
        } else {
            json!({"id": from, "type": "private", "first_name": username})
        };
        i.updates.push(json!({
            "update_id": update_id,
            "callback_query": {
                "id": format!("cq{update_id}"),
                "from": {"id": from, "is_bot": false, "first_name": username, "username": username},
                "message": {
                    "message_id": message_id, "date": 1_763_700_002, "text": text,
                    "chat": chat,
                    "from": {"id": BOT_ID, "is_bot": true, "first_name": "Shrimp", "username": "shrimp_bot"},
                },
                "chat_instance": "4242",
                "data": data,
            }
        }));
        drop(i);
        self.notify.notify_waiters();
    }

    /// What answerCallbackQuery said, in order: (query id, text).
    pub fn answers(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().answers.clone()
    }

    /// editMessageText calls, in order: (chat, message id, text).
    pub fn edits(&self) -> Vec<(i64, i64, String)> {
        self.inner.lock().unwrap().edits.clone()
    }

    /// The next `n` sendMessage calls get 429 with `retry_after` seconds.
    pub fn throttle_sends(&self, n: usize, retry_after: u64) {
        self.inner
            .lock()
            .unwrap()
            .throttle
            .extend(std::iter::repeat_n(retry_after, n));
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    /// The pairing code the gateway sent to `chat` (waiting for it, within 20 s).
    pub async fn pairing_code(&self, chat: i64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let code = self.sent_to(chat).iter().find_map(|t| {
                let rest = t.split("Pairing code: ").nth(1)?;
                Some(rest.lines().next()?.to_string())
            });
            if let Some(code) = code {
                return code;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no pairing code sent to {chat}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What was sent to `chat`, once there are at least `n` messages (within 20 s).
    pub async fn replies(&self, chat: i64, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.sent_to(chat).len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no reply {n} to {chat}: {:?}",
                self.sent_to(chat)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.sent_to(chat)
    }

    pub fn sent_to(&self, chat: i64) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|s| s.chat_id == chat)
            .map(|s| s.text)
            .collect()
    }

    pub fn typing_sent_to(&self, chat: i64) -> bool {
        self.inner
            .lock()
            .unwrap()
            .actions
            .iter()
            .any(|(c, a)| *c == chat && a == "typing")
    }

    /// Updates not yet confirmed by an offset.
    pub fn unconfirmed(&self) -> usize {
        self.inner.lock().unwrap().updates.len()
    }

    /// When getUpdates first handed out the message with this text.
    #[allow(dead_code)] // only benches/gateway.rs measures delivery times
    pub fn delivered_at(&self, text: &str) -> Option<std::time::Instant> {
        self.inner.lock().unwrap().delivered.get(text).copied()
    }

    pub fn get_updates_calls(&self) -> u64 {
        self.inner.lock().unwrap().get_updates_calls
    }

    /// getUpdates calls the client cut off before the server answered (e.g. its HTTP timeout
    /// was shorter than the poll's hold).
    pub fn aborted_polls(&self) -> u64 {
        self.inner.lock().unwrap().aborted_polls
    }

    /// The next `n` getUpdates calls fail with Bot API error `status` (e.g. 401 Unauthorized
    /// when the token was revoked).
    pub fn fail_polls(&self, n: usize, status: u16, description: &str) {
        self.inner
            .lock()
            .unwrap()
            .poll_failures
            .extend(std::iter::repeat_n(
                PollFailure::Api(status, description.to_string()),
                n,
            ));
    }

    /// The next getUpdates call fails as `failure` says.
    pub fn fail_poll(&self, failure: PollFailure) {
        self.inner.lock().unwrap().poll_failures.push(failure);
    }

    /// Answer getMe as an older self-hosted Bot API server does.
    pub fn answer_get_me_like_an_old_server(&self) {
        self.inner.lock().unwrap().old_get_me = true;
    }
}

/// Counts a getUpdates call as aborted unless it was answered: axum drops the handler when the
/// client closes the connection mid-hold.
struct PollGuard {
    inner: Arc<Mutex<Inner>>,
    answered: bool,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        if !self.answered {
            self.inner.lock().unwrap().aborted_polls += 1;
        }
    }
}

/// How a getUpdates call fails.
#[derive(Clone, Debug)]
#[allow(dead_code)] // each test uses some
pub enum PollFailure {
    /// A Bot API error: HTTP status and description (409 with Telegram's conflict text is a
    /// second poller).
    Api(u16, String),
    /// 429 with `parameters.retry_after`, as Telegram's flood control answers.
    RetryAfter(u64),
    /// Not the Bot API answering: a proxy's HTML error page, or JSON cut short.
    Raw(u16, String),
    /// The connection is reset: the answer starts and the connection dies in its body.
    Reset,
    /// The request is taken and never answered (a dead proxy): only the client's own time limit
    /// ends it.
    Hang,
}

fn error(status: u16, description: &str) -> Response {
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        Json(json!({"ok": false, "error_code": status, "description": description})),
    )
        .into_response()
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

async fn call(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    if bot != format!("bot{BOT_TOKEN}") {
        return error(401, "Unauthorized");
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    match method.to_ascii_lowercase().as_str() {
        "getme" => {
            let mut me = json!({
                "id": BOT_ID, "is_bot": true, "first_name": "Shrimp", "username": "shrimp_bot",
                "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
                "can_connect_to_business": false, "has_main_web_app": false
            });
            if fake.inner.lock().unwrap().old_get_me {
                for newer in ["can_connect_to_business", "has_main_web_app"] {
                    me.as_object_mut().unwrap().remove(newer);
                }
            }
            ok(me)
        }
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            // Telegram holds the request for as long as the client asks: no shortcut here.
            let timeout = body["timeout"].as_u64().unwrap_or(0);
            let notified = fake.notify.notified();
            let (ready, failure) = {
                let mut i = fake.inner.lock().unwrap();
                i.get_updates_calls += 1;
                let failure = (!i.poll_failures.is_empty()).then(|| i.poll_failures.remove(0));
                // An offset confirms every update below it.
                i.updates.retain(|u| u["update_id"].as_i64().unwrap() >= offset);
                (!i.updates.is_empty(), failure)
            };
            match failure {
                Some(PollFailure::Api(status, description)) => return error(status, &description),
                Some(PollFailure::RetryAfter(s)) => {
                    return (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        Json(json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {s}"), "parameters": {"retry_after": s}})),
                    )
                        .into_response();
                }
                Some(PollFailure::Raw(status, body)) => {
                    return (axum::http::StatusCode::from_u16(status).unwrap(), body).into_response();
                }
                Some(PollFailure::Reset) => {
                    // An error in the body stream makes the server abort the connection.
                    let parts: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
                        Ok(axum::body::Bytes::from_static(b"{\"ok\":true,\"res")),
                        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")),
                    ];
                    return Response::builder()
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from_stream(futures::stream::iter(parts)))
                        .unwrap();
                }
                Some(PollFailure::Hang) => std::future::pending::<()>().await,
                None => {}
            }
            let mut guard = PollGuard {
                inner: fake.inner.clone(),
                answered: false,
            };
            if !ready {
                let _ = tokio::time::timeout(Duration::from_secs(timeout), notified).await;
            }
            guard.answered = true;
            drop(guard);
            let mut i = fake.inner.lock().unwrap();
            let batch: Vec<Value> = i.updates.iter().filter(|u| u["update_id"].as_i64().unwrap() >= offset).cloned().collect();
            let now = std::time::Instant::now();
            for u in &batch {
                let text = u["message"]["text"].as_str().unwrap_or_default().to_string();
                i.delivered.entry(text).or_insert(now);
            }
            ok(Value::Array(batch))
        }
        "sendmessage" => {
            let mut i = fake.inner.lock().unwrap();
            if !i.throttle.is_empty() {
                let s = i.throttle.remove(0);
                return (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {s}"), "parameters": {"retry_after": s}})),
                )
                    .into_response();
            }
            let chat_id = body["chat_id"].as_i64().unwrap_or_default();
            let text = body["text"].as_str().unwrap_or_default().to_string();
            let thread = body["message_thread_id"].as_i64();
            let buttons: Vec<(String, String)> = body["reply_markup"]["inline_keyboard"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| row.as_array().cloned().unwrap_or_default())
                .map(|b| (b["text"].as_str().unwrap_or_default().to_string(), b["callback_data"].as_str().unwrap_or_default().to_string()))
                .collect();
            if buttons.iter().any(|(_, d)| d.is_empty() || d.len() > 64) {
                return error(400, "Bad Request: BUTTON_DATA_INVALID");
            }
            let id = i.next_message;
            i.next_message += 1;
            i.sent.push(Sent { chat_id, thread, text: text.clone(), at: std::time::Instant::now(), message_id: id, buttons });
            ok(json!({"message_id": id, "date": 1_763_700_001, "chat": {"id": chat_id, "type": "private", "first_name": "x"}, "text": text,
                      "from": {"id": BOT_ID, "is_bot": true, "first_name": "Shrimp", "username": "shrimp_bot"}}))
        }
        "answercallbackquery" => {
            let mut i = fake.inner.lock().unwrap();
            let id = body["callback_query_id"].as_str().unwrap_or_default().to_string();
            if id.is_empty() {
                return error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid");
            }
            i.answers.push((id, body["text"].as_str().unwrap_or_default().to_string()));
            ok(json!(true))
        }
        "editmessagetext" => {
            let mut i = fake.inner.lock().unwrap();
            let (chat, message) = (body["chat_id"].as_i64().unwrap_or_default(), body["message_id"].as_i64().unwrap_or_default());
            if !i.sent.iter().any(|s| s.chat_id == chat && s.message_id == message) {
                return error(400, "Bad Request: message to edit not found");
            }
            let text = body["text"].as_str().unwrap_or_default().to_string();
            i.edits.push((chat, message, text.clone()));
            ok(json!({"message_id": message, "date": 1_763_700_003, "edit_date": 1_763_700_004, "chat": {"id": chat, "type": "private", "first_name": "x"}, "text": text,
                      "from": {"id": BOT_ID, "is_bot": true, "first_name": "Shrimp", "username": "shrimp_bot"}}))
        }
        "sendchataction" => {
            let mut i = fake.inner.lock().unwrap();
            let chat = body["chat_id"].as_i64().unwrap_or_default();
            i.actions.push((chat, body["action"].as_str().unwrap_or_default().to_string()));
            ok(json!(true))
        }
        other => Json(json!({"ok": false, "error_code": 404, "description": format!("Not Found: method {other}")})).into_response(),
    }
}
