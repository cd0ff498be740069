//! A client of the gateway API for the CLI (`clawops pairing …`): URL and token from flags or
//! the environment, or the standalone token file; errors that say what to do.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the gateway at {url} ({cause}); is it running? In a cluster: kubectl port-forward deploy/<agent>-gateway 18789, or kubectl exec into the pod"
    )]
    Unreachable { url: String, cause: String },
    #[error(
        "no gateway token: pass --token or set CLAWOPS_GATEWAY_TOKEN (in a cluster: kubectl get secret <agent>-gateway-token -o jsonpath='{{.data.token}}' | base64 -d)"
    )]
    NoToken,
    #[error("{message}")]
    Refused { status: u16, message: String },
}

pub struct ApiClient {
    base: String,
    token: SecretString,
    http: reqwest::Client,
}

impl ApiClient {
    /// `token`, else the standalone gateway's token file in `state_dir`.
    pub fn new(
        url: &str,
        token: Option<String>,
        state_dir: Option<PathBuf>,
    ) -> Result<Self, ClientError> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .or_else(|| {
                state_dir
                    .and_then(|d| std::fs::read_to_string(d.join(super::TOKEN_FILE)).ok())
                    .map(|t| t.trim().to_string())
            })
            .ok_or(ClientError::NoToken)?;
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            token: SecretString::from(token),
            http: reqwest::Client::new(),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let resp = req
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                cause: std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| e.to_string()),
            })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = body["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("the gateway answered HTTP {status}"));
        Err(ClientError::Refused { status, message })
    }
}

/// Runs Cron `name` on the gateway and waits for its result. While the gateway is unreachable
/// or not ready (a CronJob pod may start while the gateway rolls), it keeps trying for `wait`.
pub async fn run_cron(
    api: &ApiClient,
    name: &str,
    wait: std::time::Duration,
) -> Result<Value, ClientError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        match api
            .post(&format!("/api/cron/{name}/run"), &Value::Null)
            .await
        {
            Err(
                e @ (ClientError::Unreachable { .. } | ClientError::Refused { status: 503, .. }),
            ) if tokio::time::Instant::now() + delay < deadline => {
                tracing::info!(error = %e, retry_in = ?delay, "gateway not ready; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(15));
            }
            other => return other,
        }
    }
}
