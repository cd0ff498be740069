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
use crate::gateway::metrics::GatewayMetrics;
use crate::plan::gateway_config::ModelConfig;

/// One chat message on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
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

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Completion {
    pub text: String,
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

    /// Answers `messages`, waiting for a slot first. Tries each model in order; the error is
    /// the primary's when all fail.
    pub async fn complete(&self, messages: &[Message]) -> Result<Completion, ModelError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut first = None;
        for t in &self.targets {
            match self.with_retries(t, messages).await {
                Ok(text) => {
                    return Ok(Completion {
                        text,
                        model: t.reference.clone(),
                    });
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

    async fn with_retries(&self, t: &Target, messages: &[Message]) -> Result<String, ModelError> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.call(t, messages).await;
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

    async fn call(&self, t: &Target, messages: &[Message]) -> Result<String, ModelError> {
        let model = t.reference.clone();
        let mut body = json!({ "model": t.model, "messages": messages, "stream": false });
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
        if !(200..300).contains(&status) {
            return Err(classify(&model, status, &text, retry_after));
        }
        answer(&model, &text)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The text of `choices[0].message.content`; unknown fields are ignored.
fn answer(model: &str, body: &str) -> Result<String, ModelError> {
    let malformed = |message: String| ModelError::Malformed {
        model: model.into(),
        message,
    };
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let choice = &v["choices"][0];
    if choice["finish_reason"] == "sensitive" {
        return Err(ModelError::Refused {
            model: model.into(),
            status: 200,
            code: "sensitive".into(),
            message: "the provider's content filter stopped the answer".into(),
        });
    }
    match choice["message"]["content"].as_str().map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text.to_string()),
        _ => Err(malformed("no choices[0].message.content".into())),
    }
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
        assert_eq!(answer("m", ok).unwrap(), "hi");
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
}
