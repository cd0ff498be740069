//! Calls the model: one semaphore of `maxConcurrent` per agent shared by every caller,
//! retries with jittered exponential backoff for what a retry can fix, fallbacks in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use super::error::{ModelError, classify};
use super::provider::{Target, targets};
use super::tools::{ToolCall, ToolDef};
use crate::gateway::metrics::GatewayMetrics;
use crate::plan::gateway_config::ModelConfig;

/// One chat message on the wire: `system`, `user`, `assistant` (with the tool calls it asked
/// for, and its reasoning when thinking is on) or `tool` (one call's result).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// GLM wants the reasoning back with the tool results when thinking is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning_content: None,
        }
    }

    /// The assistant's turn that asked for `calls`.
    pub fn calling(completion: &Completion) -> Self {
        Self {
            tool_calls: completion.tool_calls.clone(),
            reasoning_content: completion.reasoning.clone(),
            ..Self::new("assistant", completion.text.clone())
        }
    }

    /// The result of the call `id`.
    pub fn tool_result(id: &str, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(id.into()),
            ..Self::new("tool", content)
        }
    }
}

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per model, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// The longest Retry-After honoured.
    pub max_retry_after: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random wait up to the exponential bound; Retry-After when given.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let bound = self
            .base
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        bound.mul_f64(rand::random::<f64>())
    }
}

/// A successful answer: text, or tool calls to run first.
#[derive(Clone, Debug, Default)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// `reasoning_content`, kept only when thinking is on (it goes back with tool results).
    pub reasoning: Option<String>,
    /// The answer stopped at the model's length limit.
    pub truncated: bool,
    /// The model that answered (`provider/model`).
    pub model: String,
}

pub struct ModelClient {
    http: reqwest::Client,
    targets: Vec<Target>,
    /// `None`: the endpoint needs no key. `Some(Err)`: why the key is unusable.
    key: Option<Result<SecretString, String>>,
    thinking: bool,
    slots: Arc<Semaphore>,
    retry: RetryPolicy,
    metrics: Arc<GatewayMetrics>,
}

impl ModelClient {
    pub fn new(
        cfg: &ModelConfig,
        slots: Arc<Semaphore>,
        retry: RetryPolicy,
        metrics: Arc<GatewayMetrics>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .build()
            .expect("HTTP client");
        Self {
            http,
            targets: targets(cfg),
            key: cfg.api_key_env.as_deref().map(crate::gateway::env_secret),
            thinking: cfg.thinking,
            slots,
            retry,
            metrics,
        }
    }

    /// Why the API key cannot be used, if it cannot.
    pub fn key_problem(&self) -> Option<String> {
        self.key.as_ref().and_then(|k| k.as_ref().err().cloned())
    }

    /// Answers `messages` with text, waiting for a slot first. Tries each model in order; the
    /// error is the primary's when all fail.
    pub async fn complete(&self, messages: &[Message]) -> Result<Completion, ModelError> {
        self.complete_with(messages, &[]).await
    }

    /// Answers `messages`, offering `tools`: text, or the calls the model wants run first.
    /// Each call takes its own slot, so `maxConcurrent` holds for every round of a turn while
    /// no slot is held as tools run.
    pub async fn complete_with(
        &self,
        messages: &[Message],
        tools: &[ToolDef],
    ) -> Result<Completion, ModelError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut first = None;
        for t in &self.targets {
            match self.with_retries(t, messages, tools).await {
                Ok(mut answer) => {
                    answer.model = t.reference.clone();
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "model call failed");
                    first.get_or_insert(e);
                }
            }
        }
        self.metrics.llm_failures.inc();
        Err(first.expect("there is always a primary model"))
    }

    async fn with_retries(
        &self,
        t: &Target,
        messages: &[Message],
        tools: &[ToolDef],
    ) -> Result<Completion, ModelError> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.call(t, messages, tools).await;
            self.metrics
                .llm_latency
                .observe(started.elapsed().as_secs_f64());
            match result {
                Err(e) if e.retryable() && attempt < self.retry.attempts => {
                    if matches!(e, ModelError::RateLimited { .. }) {
                        self.metrics.llm_rate_limited.inc();
                    }
                    self.metrics.llm_retries.inc();
                    let wait = self.retry.delay(attempt, e.retry_after());
                    tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying model call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    if matches!(e, ModelError::RateLimited { .. }) {
                        self.metrics.llm_rate_limited.inc();
                    }
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    async fn call(
        &self,
        t: &Target,
        messages: &[Message],
        tools: &[ToolDef],
    ) -> Result<Completion, ModelError> {
        let model = t.reference.clone();
        let mut body = json!({ "model": t.model, "messages": messages, "stream": false });
        if !tools.is_empty() {
            body["tools"] = tools.iter().map(ToolDef::wire).collect();
            // GLM takes only "auto".
            body["tool_choice"] = json!("auto");
        }
        if t.is_zai {
            body["thinking"] =
                json!({ "type": if self.thinking { "enabled" } else { "disabled" } });
        }
        let mut req = self
            .http
            .post(format!("{}/chat/completions", t.base_url))
            .header("Accept-Language", "en-US,en")
            .json(&body);
        match &self.key {
            None => {}
            Some(Ok(key)) => req = req.bearer_auth(key.expose_secret()),
            Some(Err(why)) => {
                return Err(ModelError::NotConfigured {
                    model,
                    why: why.clone(),
                });
            }
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_builder() {
                // A bad URL or header is not fixed by retrying.
                ModelError::Refused {
                    model: model.clone(),
                    status: 0,
                    code: "request".into(),
                    message: root_cause(&e),
                }
            } else {
                let message = if e.is_timeout() {
                    "timed out".into()
                } else {
                    format!("cannot reach {}: {}", t.base_url, root_cause(&e))
                };
                ModelError::Unreachable {
                    model: model.clone(),
                    message,
                }
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.map_err(|e| ModelError::Unreachable {
            model: model.clone(),
            message: format!("reading the answer: {}", root_cause(&e)),
        })?;
        // A careless provider or proxy may quote the key it was given (in an error, above
        // all): it goes no further, not into logs, notices or the history.
        let text = match &self.key {
            Some(Ok(key)) => crate::secrets::scrub(&text, key.expose_secret()),
            _ => text,
        };
        if !(200..300).contains(&status) {
            return Err(classify(&model, status, &text, retry_after));
        }
        let mut answer = answer(&model, &text)?;
        if !self.thinking {
            answer.reasoning = None;
        }
        Ok(answer)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `choices[0]`: its text or tool calls, its reasoning, and whether it was cut; unknown fields
/// are ignored.
fn answer(model: &str, body: &str) -> Result<Completion, ModelError> {
    let malformed = |message: String| ModelError::Malformed {
        model: model.into(),
        message,
    };
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let choice = &v["choices"][0];
    match choice["finish_reason"].as_str() {
        Some("sensitive") => {
            return Err(ModelError::Refused {
                model: model.into(),
                status: 200,
                code: "sensitive".into(),
                message: "the provider's content filter stopped the answer".into(),
            });
        }
        Some("network_error") => {
            return Err(ModelError::Server {
                model: model.into(),
                status: 200,
                message: "the provider reported a network error while answering".into(),
            });
        }
        _ => {}
    }
    let message = &choice["message"];
    let tool_calls: Vec<ToolCall> = match message.get("tool_calls") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(calls) => serde_json::from_value(calls.clone())
            .map_err(|e| malformed(format!("choices[0].message.tool_calls: {e}")))?,
    };
    let text = message["content"].as_str().map(str::trim).unwrap_or("");
    if text.is_empty() && tool_calls.is_empty() {
        return Err(malformed("no choices[0].message.content".into()));
    }
    Ok(Completion {
        text: text.to_string(),
        tool_calls,
        reasoning: message["reasoning_content"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        truncated: matches!(
            choice["finish_reason"].as_str(),
            Some("length" | "model_context_window_exceeded")
        ),
        model: model.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_jittered_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..6 {
            let bound = p.base.saturating_mul(1 << (attempt - 1)).min(p.cap);
            for _ in 0..50 {
                assert!(p.delay(attempt, None) <= bound);
            }
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            p.max_retry_after
        );
    }

    #[test]
    fn answers_are_read_and_filtered_ones_refused() {
        let ok = r#"{"id":"x","request_id":"r","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":" hi ","reasoning_content":"…"}}],"usage":{}}"#;
        assert_eq!(answer("m", ok).unwrap().text, "hi");
        let filtered = r#"{"choices":[{"finish_reason":"sensitive","message":{"content":""}}]}"#;
        assert!(matches!(
            answer("m", filtered),
            Err(ModelError::Refused { .. })
        ));
        assert!(matches!(
            answer("m", "{}"),
            Err(ModelError::Malformed { .. })
        ));
    }

    #[test]
    fn tool_calls_cut_answers_and_network_errors_are_told_apart() {
        let calls = r#"{"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"reasoning_content":"look first",
            "tool_calls":[{"id":"call_a","type":"function","function":{"name":"k8s_list","arguments":"{\"kind\":\"pods\"}"}},
                          {"id":"call_b","type":"function","function":{"name":"nodes_list","arguments":{}}}]}}]}"#;
        let c = answer("m", calls).unwrap();
        assert_eq!(c.text, "");
        assert_eq!(
            c.tool_calls.iter().map(|t| t.name()).collect::<Vec<_>>(),
            ["k8s_list", "nodes_list"]
        );
        assert_eq!(c.tool_calls[1].args().unwrap(), json!({}));
        assert_eq!(c.reasoning.as_deref(), Some("look first"));
        let cut = r#"{"choices":[{"finish_reason":"length","message":{"content":"half an ans"}}]}"#;
        assert!(answer("m", cut).unwrap().truncated);
        let window = r#"{"choices":[{"finish_reason":"model_context_window_exceeded","message":{"content":"x"}}]}"#;
        assert!(answer("m", window).unwrap().truncated);
        let net = r#"{"choices":[{"finish_reason":"network_error","message":{"content":""}}]}"#;
        assert!(answer("m", net).unwrap_err().retryable());
        let bad = r#"{"choices":[{"finish_reason":"tool_calls","message":{"content":"","tool_calls":[{"id":1}]}}]}"#;
        assert!(matches!(
            answer("m", bad),
            Err(ModelError::Malformed { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// A GLM answer edited anywhere (text, tool calls, finish reasons): read or refused as
        /// malformed or refused, never a panic.
        #[test]
        fn fuzz_model_answers(edits in crate::util::fuzz::edits(), which in 0usize..2) {
            let seeds = [
                r#"{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"hi","reasoning_content":"r"}}],"usage":{"total_tokens":3}}"#,
                r#"{"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"k8s_list","arguments":"{\"kind\":\"pods\"}"}},{"id":"b","type":"function","function":{"name":"nodes_list","arguments":{}}}]}}]}"#,
            ];
            let body = crate::util::fuzz::apply(seeds[which], &edits);
            match answer("m", &body) {
                Ok(_) | Err(ModelError::Malformed { .. } | ModelError::Refused { .. } | ModelError::Server { .. }) => {}
                Err(e) => proptest::prop_assert!(false, "unexpected error kind: {e}"),
            }
        }
    }
}
