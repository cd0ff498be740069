//! A fake OpenAI-compatible chat completions server (the Z.AI wire format): scripted answers
//! per model, the requests it saw, and how many were in flight at once.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with this content.
    Text(String),
    /// 200 answering with the persona's first line and the user's text (the default).
    Echo,
    /// An error status with a Z.AI error body.
    Error {
        status: u16,
        code: &'static str,
        message: &'static str,
        retry_after: Option<u64>,
    },
    /// Waits, then answers as `then`.
    Slow(Duration, Box<Answer>),
}

impl Answer {
    pub fn glm(status: u16, code: &'static str, message: &'static str) -> Self {
        Answer::Error {
            status,
            code,
            message,
            retry_after: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    script: HashMap<String, VecDeque<Answer>>,
    seen: Vec<Seen>,
}

#[derive(Clone, Default)]
pub struct FakeLlm {
    inner: Arc<Mutex<Inner>>,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    pub addr: Option<SocketAddr>,
}

impl FakeLlm {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Self {
        let mut me = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        me.addr = Some(listener.local_addr().unwrap());
        let app = Router::new()
            .route("/api/paas/v4/chat/completions", post(complete))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        me
    }

    /// The base URL to configure (before `/chat/completions`).
    pub fn base_url(&self) -> String {
        format!("http://{}/api/paas/v4", self.addr.unwrap())
    }

    /// Answers for `model`, in order; after them, [`Answer::Echo`].
    pub fn script(&self, model: &str, answers: impl IntoIterator<Item = Answer>) {
        self.inner
            .lock()
            .unwrap()
            .script
            .entry(model.into())
            .or_default()
            .extend(answers);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// The most requests that were being answered at the same time.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

fn echo(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let persona = system.lines().nth(1).unwrap_or("");
    let user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    format!("[{persona}] {user}")
}

async fn complete(
    State(fake): State<FakeLlm>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    fake.peak.fetch_max(now, Ordering::SeqCst);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let answer = {
        let mut inner = fake.inner.lock().unwrap();
        inner.seen.push(Seen {
            at: Instant::now(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            body: body.clone(),
        });
        inner
            .script
            .get_mut(&model)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Answer::Echo)
    };
    let resp = respond(answer, &body).await;
    fake.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

async fn respond(mut answer: Answer, body: &Value) -> Response {
    loop {
        match answer {
            Answer::Slow(d, then) => {
                tokio::time::sleep(d).await;
                answer = *then;
            }
            Answer::Echo => answer = Answer::Text(echo(body)),
            Answer::Text(content) => {
                return Json(json!({
                    "id": "chatcmpl-1", "request_id": "req-1", "created": 1, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content, "reasoning_content": ""}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 0}}
                }))
                .into_response();
            }
            Answer::Error {
                status,
                code,
                message,
                retry_after,
            } => {
                let mut resp = (
                    StatusCode::from_u16(status).unwrap(),
                    Json(json!({"error": {"code": code, "message": message}})),
                )
                    .into_response();
                if let Some(s) = retry_after {
                    resp.headers_mut().insert("retry-after", s.into());
                }
                return resp;
            }
        }
    }
}
