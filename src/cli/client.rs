//! A client of the gateway API for the CLI (`clawops pairing …`, `clawops cron run`): URL and
//! token from flags or the environment, or the standalone token file; errors that name the cause
//! (DNS, refused, timeout, TLS, a refused token) and what to check — in-cluster advice when it
//! runs in a pod, the port-forward hint on a workstation.

use crate::api::ApiError;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::consts::{ENV_AGENT, ENV_GATEWAY_TOKEN, ENV_GATEWAY_TOKEN_FROM, LABEL_COMPONENT};
use crate::util::net_cause::{self, Cause};

/// How long to wait for a connection; the run itself may take minutes (a model turn).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the gateway at {url}: {cause}; {advice}")]
    Unreachable {
        url: String,
        cause: Unreachable,
        advice: String,
    },
    #[error(
        "no gateway token: pass --token or set CLAWOPS_GATEWAY_TOKEN (in a cluster: kubectl get secret <agent>-gateway-token -o jsonpath='{{.data.token}}' | base64 -d)"
    )]
    NoToken,
    #[error(
        "the gateway refused the token (HTTP {status}): {message}; this client's token came from {token_from}"
    )]
    Unauthorized {
        status: u16,
        message: String,
        token_from: String,
    },
    #[error("{message}")]
    Refused { status: u16, message: String },
}

/// Why a connection to the gateway failed, read off the error's source chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("DNS cannot resolve {host}")]
    Dns { host: String },
    #[error("connection refused: nothing listens on {host}:{port}")]
    Refused { host: String, port: u16 },
    #[error("timed out")]
    Timeout,
    #[error("TLS failed ({detail})")]
    Tls { detail: String },
    #[error("{detail}")]
    Other { detail: String },
}

impl Unreachable {
    /// Classifies a request error by walking its sources (reqwest → hyper → io).
    pub fn classify(err: &(dyn std::error::Error + 'static), url: &reqwest::Url) -> Self {
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or_default();
        let detail = net_cause::chain(err)
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        match net_cause::classify(err) {
            Cause::Refused => Self::Refused { host, port },
            Cause::Timeout => Self::Timeout,
            Cause::Dns => Self::Dns { host },
            Cause::Tls => Self::Tls { detail },
            Cause::Broken | Cause::Other => Self::Other { detail },
        }
    }

    /// What to check, in a pod (from the cluster's point of view) or on a workstation.
    pub fn advice(&self, url: &str, in_pod: bool, agent: Option<&str>) -> String {
        if !in_pod {
            return "is it running? For a gateway in a cluster: kubectl port-forward deploy/<agent>-gateway 18789, or kubectl exec into the pod".into();
        }
        // `<service>.<namespace>.svc…`, as the operator writes the CronJob's URL.
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_default();
        let mut labels = host.split('.');
        let service = labels.next().unwrap_or("<agent>-gateway").to_string();
        let ns = labels
            .next()
            .map(|n| format!("-n {n} "))
            .unwrap_or_default();
        let selector = match agent {
            Some(a) => format!("app.kubernetes.io/instance={a},{LABEL_COMPONENT}=gateway"),
            None => format!("{LABEL_COMPONENT}=gateway"),
        };
        let pods = format!("kubectl {ns}get pods -l {selector}");
        match self {
            Self::Dns { .. } => format!(
                "from this pod the Service name does not resolve: check that Service {service} exists (kubectl {ns}get service {service}; the operator creates it with the Agent) and that cluster DNS runs (kubectl -n kube-system get pods -l k8s-app=kube-dns)"
            ),
            Self::Refused { .. } => format!(
                "the gateway Service has no ready pod behind it: check the gateway pod ({pods}) and the Service's endpoints (kubectl {ns}get endpointslices -l kubernetes.io/service-name={service})"
            ),
            Self::Timeout => format!(
                "check that the gateway pod is ready ({pods}) and that no NetworkPolicy drops traffic from this pod (kubectl {ns}get networkpolicy)"
            ),
            Self::Tls { .. } | Self::Other { .. } => {
                format!(
                    "check the gateway pod ({pods}) and its log (kubectl {ns}logs deploy/{service})"
                )
            }
        }
    }
}

/// Whether this process runs in a Kubernetes pod.
pub fn in_pod() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// Where a Job's failure is written for `kubectl describe pod`: the given path, or in a pod
/// the container's termination log.
pub fn termination_log(given: Option<std::path::PathBuf>) -> Option<std::path::PathBuf> {
    given.or_else(|| in_pod().then(|| crate::gateway::cron::outcome::TERMINATION_LOG.into()))
}

pub struct ApiClient {
    base: String,
    token: SecretString,
    /// Where the token came from, for a refused token's message (never the token).
    token_source: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// `token`, else the standalone gateway's token file in `state_dir`.
    pub fn new(
        url: &str,
        token: Option<String>,
        state_dir: Option<PathBuf>,
    ) -> Result<Self, ClientError> {
        let (token, token_source) = match token.filter(|t| !t.trim().is_empty()) {
            // The CronJob says which Secret its token env var comes from.
            Some(t) => (
                t,
                std::env::var(ENV_GATEWAY_TOKEN_FROM)
                    .map(|from| format!("{ENV_GATEWAY_TOKEN} ({from})"))
                    .unwrap_or_else(|_| format!("--token or {ENV_GATEWAY_TOKEN}")),
            ),
            None => {
                let file = state_dir
                    .map(|d| d.join(crate::gateway::api::auth::TOKEN_FILE))
                    .ok_or(ClientError::NoToken)?;
                let t = std::fs::read_to_string(&file).map_err(|_| ClientError::NoToken)?;
                (t.trim().to_string(), file.display().to_string())
            }
        };
        if token.is_empty() {
            return Err(ClientError::NoToken);
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            token: SecretString::from(token),
            token_source,
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .expect("a reqwest client with rustls builds"),
        })
    }

    /// `value` as one path segment of an API URL (a display name may hold spaces or `/`).
    pub fn segment(value: &str) -> String {
        let mut url = reqwest::Url::parse("http://x/").expect("static URL");
        url.path_segments_mut()
            .expect("http URLs have segments")
            .push(value);
        url.path()[1..].to_string()
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// A body that is not JSON (a backup archive).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .checked(self.http.get(format!("{}{path}", self.base)))
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| self.unreachable(&e))
    }

    /// Posts a body that is not JSON (a backup archive).
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/zstd")
                .body(body),
        )
        .await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let resp = self.checked(req).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends with the token; a refusal becomes the error that says why.
    async fn checked(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = req
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let error = serde_json::from_value::<ApiError>(body).ok();
        // A 403 is about the token only when the gateway says so (a node's policy also refuses).
        let about_token =
            status == 401 || error.as_ref().is_some_and(|e| e.error == "unauthorized");
        let message = error
            .map(|e| e.message)
            .unwrap_or_else(|| format!("the gateway answered HTTP {status}"));
        if about_token {
            return Err(ClientError::Unauthorized {
                status,
                message,
                token_from: self.token_source.clone(),
            });
        }
        Err(ClientError::Refused { status, message })
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        let url = reqwest::Url::parse(&self.base).expect("a request was built from this URL");
        let cause = Unreachable::classify(e, &url);
        let agent = std::env::var(ENV_AGENT).ok();
        ClientError::Unreachable {
            advice: cause.advice(&self.base, in_pod(), agent.as_deref()),
            url: self.base.clone(),
            cause,
        }
    }
}

/// Runs Cron `name` on the gateway and waits for its result. While the gateway is unreachable
/// or not ready (a CronJob pod may start while the gateway rolls), it keeps trying for `wait`.
pub async fn run_cron(api: &ApiClient, name: &str, wait: Duration) -> Result<Value, ClientError> {
    let path = format!("/api/cron/{name}/run");
    while_starting(wait, || api.post(&path, &Value::Null)).await
}

/// Makes `request` again, backing off up to 15 s, while the gateway is unreachable or answers
/// 503 (not ready), for at most `wait`; any other answer is returned.
pub async fn while_starting<T, F>(
    wait: Duration,
    mut request: impl FnMut() -> F,
) -> Result<T, ClientError>
where
    F: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_secs(1);
    loop {
        match request().await {
            Err(
                e @ (ClientError::Unreachable { .. } | ClientError::Refused { status: 503, .. }),
            ) if tokio::time::Instant::now() + delay < deadline => {
                tracing::info!(error = %e, retry_in = ?delay, "gateway not ready; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(15));
            }
            other => return other,
        }
    }
}

/// Whether a gateway answers `/healthz` at `url` within a second.
pub async fn answers(url: &str) -> bool {
    let Ok(c) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(1))
        .build()
    else {
        return false;
    };
    c.get(format!("{}/healthz", url.trim_end_matches('/')))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cause_of(url: &str) -> Unreachable {
        let url = reqwest::Url::parse(url).unwrap();
        let err = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
            .get(url.clone())
            .send()
            .await
            .expect_err("nothing answers");
        Unreachable::classify(&err, &url)
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_a_dns_failure_naming_the_host() {
        // `.invalid` never resolves (RFC 2606), offline or not.
        let cause = cause_of("http://shrimp-gateway.nonexistent.invalid:18789").await;
        assert_eq!(
            cause,
            Unreachable::Dns {
                host: "shrimp-gateway.nonexistent.invalid".into()
            }
        );
        assert_eq!(
            cause.to_string(),
            "DNS cannot resolve shrimp-gateway.nonexistent.invalid"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is gone: nothing listens on the port any more.
        let cause = cause_of(&format!("http://127.0.0.1:{port}")).await;
        assert_eq!(
            cause,
            Unreachable::Refused {
                host: "127.0.0.1".into(),
                port
            }
        );
    }

    #[tokio::test]
    async fn a_server_that_never_accepts_times_out() {
        // The kernel completes the handshake into the backlog; nobody ever answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = reqwest::Url::parse(&format!("http://{addr}")).unwrap();
        let err = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap()
            .get(url.clone())
            .send()
            .await
            .expect_err("the listener never answers");
        assert_eq!(Unreachable::classify(&err, &url), Unreachable::Timeout);
        drop(listener);
    }

    #[test]
    fn advice_in_a_pod_points_at_the_service_dns_and_pods_not_port_forward() {
        let url = "http://shrimp-gateway.shrimp.svc:18789";
        let dns = Unreachable::Dns {
            host: "shrimp-gateway.shrimp.svc".into(),
        }
        .advice(url, true, Some("shrimp"));
        assert!(
            dns.contains("kubectl -n shrimp get service shrimp-gateway")
                && dns.contains("k8s-app=kube-dns"),
            "{dns}"
        );
        let refused = Unreachable::Refused {
            host: "shrimp-gateway.shrimp.svc".into(),
            port: 18789,
        }
        .advice(url, true, Some("shrimp"));
        assert!(
            refused.contains(
                "kubectl -n shrimp get pods -l app.kubernetes.io/instance=shrimp,app.kubernetes.io/component=gateway"
            ) && refused.contains("kubernetes.io/service-name=shrimp-gateway"),
            "{refused}"
        );
        let timeout = Unreachable::Timeout.advice(url, true, None);
        assert!(timeout.contains("NetworkPolicy"), "{timeout}");
        for advice in [&dns, &refused, &timeout] {
            assert!(!advice.contains("port-forward"), "{advice}");
        }
        let workstation = Unreachable::Timeout.advice(url, false, None);
        assert!(
            workstation.contains("kubectl port-forward"),
            "{workstation}"
        );
    }
}

/// How the CLI reaches a running gateway.
#[derive(clap::Args)]
pub struct GatewayAccess {
    /// The gateway's URL.
    #[arg(
        long,
        global = true,
        env = "CLAWOPS_GATEWAY_URL",
        default_value = "http://127.0.0.1:18789"
    )]
    pub url: String,
    /// The gateway token (default: the standalone gateway's token file).
    #[arg(
        long,
        global = true,
        env = "CLAWOPS_GATEWAY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The standalone gateway's state directory, to find its token file.
    #[arg(long, global = true, env = "CLAWOPS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl GatewayAccess {
    /// A client; the local token file is only offered to a local gateway, or when asked for.
    pub fn client(self) -> Result<ApiClient, ClientError> {
        let local = self.url.starts_with("http://127.0.0.1")
            || self.url.starts_with("http://localhost")
            || self.url.starts_with("http://[::1]");
        let state_dir = self
            .state_dir
            .or_else(|| local.then(super::default_state_dir));
        ApiClient::new(&self.url, self.token, state_dir)
    }
}
