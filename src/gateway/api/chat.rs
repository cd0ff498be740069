//! WebChat over HTTP: `POST /api/chat` runs one turn through the agent — answered as JSON, or,
//! when the client accepts `text/event-stream`, as events while it runs (each tool call as it
//! starts, then the answer), so a turn waiting minutes for a node's approval shows what it is
//! doing — and `GET /api/chat` returns the conversation the agent remembers.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::error;
use crate::api::{ApiError, ChatHistory, ChatLine, ChatReply, ChatRequest};
use crate::gateway::assistant::turn::Origin;
use crate::gateway::{Gateway, assistant};

#[derive(serde::Deserialize)]
pub struct ChatQuery {
    #[serde(default = "crate::api::default_chat")]
    chat: String,
}

/// The conversation key of an API chat: apart from the Telegram chats.
fn api_chat(chat: &str) -> String {
    format!("api-{chat}")
}

/// The WebChat conversation so far, so the page opens where it was left.
pub async fn history(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<ChatQuery>,
) -> Json<ChatHistory> {
    let messages = gw
        .assistant
        .history(&api_chat(&q.chat))
        .await
        .into_iter()
        .map(|m| ChatLine {
            role: m.role,
            text: m.content,
        })
        .collect();
    Json(ChatHistory {
        chat: q.chat,
        messages,
    })
}

/// Runs the turn; each tool call's line goes to `on_tool` as it starts. A failure is told as
/// the chat would tell it.
async fn answer(
    gw: &Arc<Gateway>,
    req: &ChatRequest,
    on_tool: impl Fn(&str) + Send + Sync + 'static,
) -> Result<ChatReply, ApiError> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = calls.clone();
    let origin = Origin {
        chat: None,
        progress: Some(Arc::new(move |line: &str| {
            sink.lock().expect("calls lock").push(line.to_string());
            on_tool(line);
        })),
        // Each API request is a new one: a client that sends it again means it.
        message: None,
    };
    match gw.answer(&api_chat(&req.chat), &req.text, origin).await {
        Ok(reply) => Ok(ChatReply {
            reply,
            tools: std::mem::take(&mut *calls.lock().expect("calls lock")),
        }),
        Err(e) => Err(ApiError {
            error: "model".into(),
            message: assistant::explain(&e, assistant::speaks_cjk(&gw.assistant.config)),
            detail: Some(e.to_string()),
        }),
    }
}

/// `POST /api/chat`: one turn through the agent, for WebChat and scripts.
pub async fn turn(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Json(req): Json<ChatRequest>,
) -> Response {
    if req.text.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "text: must not be empty".into(),
        );
    }
    let chars = req.text.chars().count();
    if chars > assistant::MESSAGE_MAX_CHARS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-long",
            format!(
                "text: {chars} characters; at most {} are sent to the model",
                assistant::MESSAGE_MAX_CHARS
            ),
        );
    }
    let streams = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if !streams {
        return match answer(&gw, &req, |_| {}).await {
            Ok(reply) => Json(reply).into_response(),
            Err(e) => (StatusCode::BAD_GATEWAY, Json(e)).into_response(),
        };
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    // The turn runs to its end even if the page goes away: its answer is in the history.
    tokio::spawn(async move {
        let progress = tx.clone();
        let done = answer(&gw, &req, move |line| {
            let _ = progress.send(Event::default().event("tool").data(line));
        })
        .await;
        let last = match done {
            Ok(reply) => Event::default().event("reply").json_data(reply),
            Err(e) => Event::default().event("error").json_data(e),
        };
        let _ = tx.send(last.expect("API bodies serialize"));
    });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    // Comments every 15 s keep proxies from closing a turn that waits for an approval.
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
