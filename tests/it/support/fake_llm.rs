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
    /// 200 asking for these tool calls (name, arguments), arguments sent as JSON text.
    Tools(Vec<(&'static str, Value)>),
    /// 200 with this `tool_calls` array as it is (malformed ones, arguments as objects).
    ToolsRaw(Value),
    /// 200 answering with the contents of the tool results the request carries.
    QuoteTools,
    /// 200 with this content, cut at the length limit (`finish_reason: length`).
    Truncated(String),
    /// Takes the request and never answers (a hung upstream): only the client's own time limit
    /// ends it.
    Hang,
    /// 200 and the first half of an answer, then the connection is cut (a proxy or the
    /// provider dying mid-answer): the body never completes.
    Cut,
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
    /// Until this instant every request gets this answer, whatever the script says.
    storm: Option<(Instant, Answer)>,
    /// Answers for requests whose last user message contains the key (before `script`), so
    /// chats running at the same time each get their own.
    when: Vec<(String, VecDeque<Answer>)>,
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

    /// Answers, in order, for requests whose last user message contains `key`.
    pub fn script_when(&self, key: &str, answers: impl IntoIterator<Item = Answer>) {
        self.inner
            .lock()
            .unwrap()
            .when
            .push((key.into(), answers.into_iter().collect()));
    }

    /// Every request gets `answer` for the next `lasting` (a 429 storm, an outage).
    pub fn storm(&self, lasting: Duration, answer: Answer) {
        self.inner.lock().unwrap().storm = Some((Instant::now() + lasting, answer));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// The most requests that were being answered at the same time.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

fn last_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

fn echo(body: &Value) -> String {
    let system = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let persona = system.lines().nth(1).unwrap_or("");
    format!("[{persona}] {}", last_user(body))
}

async fn complete(
    State(fake): State<FakeLlm>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    fake.peak.fetch_max(now, Ordering::SeqCst);
    // Counted out when the answer is sent or the client goes away (a hang ends that way).
    let _in_flight = InFlight(fake.in_flight.clone());
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
        let user = last_user(&body);
        match &inner.storm {
            Some((until, answer)) if Instant::now() < *until => answer.clone(),
            _ => inner
                .when
                .iter_mut()
                .find(|(key, answers)| user.contains(key.as_str()) && !answers.is_empty())
                .and_then(|(_, answers)| answers.pop_front())
                .or_else(|| inner.script.get_mut(&model).and_then(VecDeque::pop_front))
                .unwrap_or(Answer::Echo),
        }
    };
    respond(answer, &body).await
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The request checks GLM makes (code 1214, "messages parameter illegal"): every `tool`
/// message answers a call of the assistant message before it, every call is answered before
/// the conversation goes on, tool names are well-formed, and `tool_choice` is only "auto".
pub fn validate(body: &Value) -> Result<(), String> {
    if let Some(choice) = body.get("tool_choice")
        && choice != "auto"
    {
        return Err(format!("tool_choice {choice}: only auto is supported"));
    }
    for t in body["tools"].as_array().into_iter().flatten() {
        let name = t["function"]["name"].as_str().unwrap_or("");
        let ok = t["type"] == "function"
            && (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && t["function"]["parameters"].is_object();
        if !ok {
            return Err(format!("tools: invalid function {t}"));
        }
    }
    let mut open: Vec<String> = Vec::new();
    for (i, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        match m["role"].as_str() {
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                let Some(at) = open.iter().position(|o| o == id) else {
                    return Err(format!(
                        "messages[{i}]: tool_call_id {id:?} answers no call"
                    ));
                };
                open.remove(at);
                if !m["content"].is_string() {
                    return Err(format!("messages[{i}]: a tool message needs content"));
                }
            }
            Some(role @ ("system" | "user" | "assistant")) => {
                if !open.is_empty() {
                    return Err(format!("messages[{i}]: calls {open:?} were not answered"));
                }
                if role == "assistant" {
                    for c in m["tool_calls"].as_array().into_iter().flatten() {
                        let args = &c["function"]["arguments"];
                        if !args.is_string() {
                            return Err(format!("messages[{i}]: arguments must be a string"));
                        }
                        open.push(c["id"].as_str().unwrap_or("").to_string());
                    }
                }
            }
            other => return Err(format!("messages[{i}]: role {other:?}")),
        }
    }
    if !open.is_empty() {
        return Err(format!("calls {open:?} were not answered"));
    }
    Ok(())
}

fn completion(body: &Value, finish: &str, message: Value) -> Response {
    Json(json!({
        "id": "chatcmpl-1", "request_id": "req-1", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 0}}
    }))
    .into_response()
}

async fn respond(mut answer: Answer, body: &Value) -> Response {
    if let Err(why) = validate(body) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "1214", "message": why}})),
        )
            .into_response();
    }
    loop {
        match answer {
            Answer::Tools(calls) => {
                let calls: Vec<Value> = calls
                    .into_iter()
                    .map(|(name, args)| {
                        let id = format!("call_{}", rand::random::<u32>());
                        json!({"id": id, "type": "function", "index": 0,
                               "function": {"name": name, "arguments": args.to_string()}})
                    })
                    .collect();
                answer = Answer::ToolsRaw(Value::Array(calls));
            }
            Answer::ToolsRaw(calls) => {
                return completion(
                    body,
                    "tool_calls",
                    json!({"role": "assistant", "content": "", "reasoning_content": "I should look first.", "tool_calls": calls}),
                );
            }
            Answer::QuoteTools => {
                let results: Vec<&str> = body["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["role"] == "tool")
                    .filter_map(|m| m["content"].as_str())
                    .collect();
                answer = Answer::Text(format!("From the tools: {}", results.join(" | ")));
            }
            Answer::Truncated(content) => {
                return completion(
                    body,
                    "length",
                    json!({"role": "assistant", "content": content}),
                );
            }
            Answer::Hang => std::future::pending::<()>().await,
            Answer::Cut => {
                let whole = serde_json::to_vec(&json!({
                    "id": "chatcmpl-1", "created": 1, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": echo(body)}}]
                }))
                .unwrap();
                let half = axum::body::Bytes::copy_from_slice(&whole[..whole.len() / 2]);
                // An error in the body stream makes the server abort the connection
                // mid-body, as a dying peer does.
                let parts: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
                    Ok(half),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "cut",
                    )),
                ];
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from_stream(futures::stream::iter(parts)))
                    .unwrap();
            }
            Answer::Slow(d, then) => {
                tokio::time::sleep(d).await;
                answer = *then;
            }
            Answer::Echo => answer = Answer::Text(echo(body)),
            Answer::Text(content) => {
                return completion(
                    body,
                    "stop",
                    json!({"role": "assistant", "content": content, "reasoning_content": ""}),
                );
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
