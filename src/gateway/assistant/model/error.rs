//! What a model call can fail with, classified by HTTP status and Z.AI business code, and
//! whether a retry can help.

use std::time::Duration;

/// A failed model call. Messages are the provider's, which never contain the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// 429 with 1302 (high concurrency) or 1305 (overloaded): retried with backoff.
    #[error("{model}: rate limited (HTTP 429, code {code}): {message}")]
    RateLimited {
        model: String,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Arrears, usage caps, expired or restricted plans (1113, 1308–1313, 1316–1321): not retried.
    #[error("{model}: quota or plan limit (code {code}): {message}")]
    Quota {
        model: String,
        code: String,
        message: String,
    },
    /// 401 or codes 1000–1004: the key is wrong for this endpoint.
    #[error("{model}: authentication failed (HTTP {status}): {message}")]
    Auth {
        model: String,
        status: u16,
        message: String,
    },
    /// 5xx: retried.
    #[error("{model}: server error (HTTP {status}): {message}")]
    Server {
        model: String,
        status: u16,
        message: String,
    },
    /// Connect or read timeout, connection refused: retried.
    #[error("{model}: {message}")]
    Unreachable { model: String, message: String },
    /// Any other refusal (unknown model, bad parameter, content filter): not retried.
    #[error("{model}: request refused (HTTP {status}, code {code}): {message}")]
    Refused {
        model: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The key's environment variable is unset or a placeholder.
    #[error("{model}: no API key: {why}")]
    NotConfigured { model: String, why: String },
    /// 200 without a usable answer.
    #[error("{model}: unusable response: {message}")]
    Malformed { model: String, message: String },
    /// The user's message is longer than a turn takes: not sent to the model at all.
    #[error("the message has {chars} characters; at most {max} are sent to the model")]
    InputTooLong { chars: usize, max: usize },
}

impl ModelError {
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Unreachable { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The business code and message of an error body: `{"error":{"code":"1302","message":…}}`,
/// the code a string or a number, or a top-level `code`/`msg`.
pub fn business(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let e = if v.get("error").is_some_and(|e| e.is_object()) {
        &v["error"]
    } else {
        &v
    };
    let code = match &e["code"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let message = e["message"]
        .as_str()
        .or(e["msg"].as_str())
        .map(String::from)
        .unwrap_or_else(|| body.chars().take(300).collect());
    (code, message)
}

/// Classifies a non-2xx answer.
pub fn classify(model: &str, status: u16, body: &str, retry_after: Option<Duration>) -> ModelError {
    let (code, message) = business(body);
    let model = model.to_string();
    let n: u32 = code.parse().unwrap_or(0);
    // Authentication first: a 401 is never retried, whatever code it carries.
    match (status, n) {
        (401, _) | (_, 1000..=1004) => ModelError::Auth {
            model,
            status,
            message,
        },
        (_, 1113 | 1308..=1313 | 1316..=1321) => ModelError::Quota {
            model,
            code,
            message,
        },
        (429, 1302 | 1305) => ModelError::RateLimited {
            model,
            code,
            message,
            retry_after,
        },
        (500..=599, _) => ModelError::Server {
            model,
            status,
            message,
        },
        _ => ModelError::Refused {
            model,
            status,
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glm_codes_are_classified() {
        let e = classify(
            "zai/glm-4.7",
            429,
            r#"{"error":{"code":"1302","message":"High concurrency usage"}}"#,
            None,
        );
        assert!(matches!(e, ModelError::RateLimited { .. }) && e.retryable());
        let e = classify(
            "zai/glm-4.7",
            429,
            r#"{"error":{"code":1305,"message":"overloaded"}}"#,
            None,
        );
        assert!(e.retryable(), "numeric codes count too");
        for code in ["1113", "1308", "1309", "1310", "1311", "1313", "1316"] {
            let e = classify(
                "zai/glm-4.7",
                429,
                &format!(r#"{{"error":{{"code":"{code}","message":"limit"}}}}"#),
                None,
            );
            assert!(
                matches!(e, ModelError::Quota { .. }) && !e.retryable(),
                "{code}"
            );
        }
        assert!(matches!(
            classify(
                "m",
                401,
                r#"{"error":{"code":"1001","message":"bad key"}}"#,
                None
            ),
            ModelError::Auth { .. }
        ));
        assert!(classify("m", 503, "upstream down", None).retryable());
        let e = classify("m", 401, r#"{"error":{"code":"1302","message":"x"}}"#, None);
        assert!(
            matches!(e, ModelError::Auth { .. }) && !e.retryable(),
            "a 401 is never retried"
        );
        assert!(
            !classify("m", 429, r#"{"error":{"message":"balance"}}"#, None).retryable(),
            "429 without 1302/1305 is not retried"
        );
        let e = classify("m", 400, r#"{"code":1211,"msg":"model not found"}"#, None);
        assert!(
            matches!(&e, ModelError::Refused { code, message, .. } if code == "1211" && message == "model not found")
        );
        assert!(!e.retryable());
    }
}
