//! The node's connection to its gateway: connect, answer the challenge with a signed `connect`,
//! keep the device token it is given, hand what it is invoked for to `invoke`, watch the ticks, and
//! reconnect with a jittered backoff. It says plainly which state it is in: "pairing required"
//! is the owner's move, not a network error.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::dedupe::Dedupe;
use super::identity::{self, Identity, StoredToken};
use super::status::{self, NodeStatus, State};
use crate::protocol::connect::{
    ClientInfo, ConnectAuth, ConnectParams, DeviceBlock, HelloOk, NODE_CLIENT_ID, NODE_MODE,
    ROLE_NODE,
};
use crate::protocol::device::{self, SignedConnect};
use crate::protocol::frames::{Frame, PROTOCOL_VERSION, codes};
use crate::protocol::invoke::{EVENT_INVOKE_REQUEST, InvokeRequest, METHOD_INVOKE_RESULT};
use crate::util::state_dir::StateDir;
use crate::util::uuid::uuid_v4;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CHALLENGE_WAIT: Duration = Duration::from_secs(5);
const ANSWER_WAIT: Duration = Duration::from_secs(15);

pub struct NodeOptions {
    /// The gateway's WebSocket URL, normalised (see [`normalise_url`]).
    pub gateway: String,
    /// The gateway token, for a first pairing where the gateway asks for it.
    pub token: Option<SecretString>,
    pub display_name: String,
    pub state: StateDir,
    /// Trust only the gateway certificate with this SHA-256 (`--tls-fingerprint`).
    pub tls_fingerprint: Option<[u8; 32]>,
}

/// `wss://host[:port]`, `ws://…`, `https://…` (→ wss) or `http://…` (→ ws); a plain `ws://`
/// without a port means the gateway's own port, 18789.
pub fn normalise_url(input: &str) -> Result<String, String> {
    let input = input.trim().trim_end_matches('/');
    let (scheme, rest) = input.split_once("://").ok_or_else(|| {
        format!("--gateway {input}: give a URL such as wss://shrimp.tailnet.ts.net or ws://192.168.1.5:18789")
    })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "wss" | "https" => "wss",
        "ws" | "http" => "ws",
        other => {
            return Err(format!(
                "--gateway {input}: scheme {other} is not ws, wss, http or https"
            ));
        }
    };
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    if host.is_empty() {
        return Err(format!("--gateway {input}: no host"));
    }
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        && !host.ends_with(']');
    let host = if scheme == "ws" && !has_port {
        format!("{host}:{}", crate::consts::GATEWAY_PORT)
    } else {
        host.to_string()
    };
    Ok(format!("{scheme}://{host}/{path}"))
}

/// How one connection ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The owner has not approved this node yet; in a cluster the gateway says which kubectl
    /// command approves it.
    PairingRequired(Option<String>),
    /// The gateway refused it, in its words.
    Refused(String),
    /// It could not reach the gateway.
    Unreachable(String),
    /// It was connected and the connection closed.
    Closed(String),
    /// A stored device token was refused and forgotten: try again at once.
    Retry,
}

/// Why the gateway could not be reached; a certificate the node does not trust gets the way to
/// trust it.
fn unreachable(opts: &NodeOptions, error: &str) -> String {
    let hint = if !error.contains("invalid peer certificate") {
        ""
    } else if opts.tls_fingerprint.is_some() {
        " (the gateway presents another certificate than the pinned one: check --tls-fingerprint)"
    } else {
        " (the gateway's certificate is not trusted by the public roots; for a self-signed one, \
         pin it with --tls-fingerprint sha256:…, from `openssl x509 -noout -fingerprint -sha256 -in cert.pem`)"
    };
    format!("{}: {error}{hint}", opts.gateway)
}

/// What the node says while it waits for its owner: who must do what, never a network error.
pub fn pairing_required(name: &str, short_id: &str, kubectl: Option<&str>) -> String {
    let kubectl = match kubectl {
        Some(k) => format!("`{k}`"),
        None => format!("in Kubernetes `kubectl patch nodepairing <agent>-{short_id} …`"),
    };
    format!(
        "pairing required: ask the owner to approve node {name} ({short_id}): `clawops nodes approve {short_id}`, {kubectl}, or the Approve button on Telegram; this node retries by itself"
    )
}

/// Runs the node until `stop` resolves.
pub async fn run(
    opts: NodeOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let id = identity::load_or_create(&opts.state)?;
    // Create the policy file at start, so the owner finds it to edit.
    super::approvals::load(&opts.state)?;
    tracing::info!(
        node = %id.short_id(),
        name = %opts.display_name,
        gateway = %opts.gateway,
        policy = %opts.state.path().join(super::approvals::FILE).display(),
        "node starting"
    );
    tokio::pin!(stop);
    let mut backoff = FIRST_BACKOFF;
    // Across connections: a request sent again after a reconnect is answered from here.
    let dedupe = Arc::new(Dedupe::default());
    let tell = |state: State, last_error: Option<String>| {
        let s = NodeStatus {
            state,
            gateway: opts.gateway.clone(),
            node_id: id.device_id.clone(),
            display_name: opts.display_name.clone(),
            since: chrono::Utc::now(),
            last_error,
        };
        if let Err(e) = status::write(&opts.state, &s) {
            tracing::warn!(error = %e, "status file not written");
        }
    };
    tell(State::Connecting, None);
    loop {
        let ended = tokio::select! {
            ended = connect_once(&opts, &id, &mut backoff, &dedupe, || tell(State::Connected, None)) => ended,
            _ = &mut stop => {
                tell(State::Disconnected, Some("stopped".into()));
                return Ok(());
            }
        };
        match &ended {
            Ended::PairingRequired(_) => tell(State::PairingRequired, None),
            Ended::Refused(why) => tell(State::Refused, Some(why.clone())),
            Ended::Unreachable(why) => tell(State::Unreachable, Some(why.clone())),
            Ended::Closed(why) => tell(State::Disconnected, Some(why.clone())),
            Ended::Retry => {}
        }
        match &ended {
            Ended::PairingRequired(kubectl) => tracing::warn!(
                "{}",
                pairing_required(&opts.display_name, id.short_id(), kubectl.as_deref())
            ),
            Ended::Refused(why) => tracing::error!(%why, "the gateway refused this node"),
            Ended::Unreachable(why) => tracing::warn!(%why, "cannot reach the gateway"),
            Ended::Closed(why) => tracing::warn!(%why, "disconnected from the gateway"),
            Ended::Retry => continue,
        }
        // Jitter keeps many nodes from reconnecting in step after a gateway restart.
        let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 / 4 + 1);
        let wait = backoff + Duration::from_millis(jitter);
        tracing::info!(retry_in_ms = wait.as_millis() as u64, "reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn connect_params(opts: &NodeOptions, id: &Identity, nonce: &str, token: &str) -> ConnectParams {
    let scopes: Vec<String> = Vec::new();
    let signed_at = chrono::Utc::now().timestamp_millis();
    let signature = SignedConnect {
        device_id: &id.device_id,
        client_id: NODE_CLIENT_ID,
        client_mode: NODE_MODE,
        role: ROLE_NODE,
        scopes: &scopes,
        signed_at_ms: signed_at,
        token,
        nonce: Some(nonce),
    }
    .sign(&id.key);
    ConnectParams {
        min_protocol: PROTOCOL_VERSION,
        max_protocol: PROTOCOL_VERSION,
        client: ClientInfo {
            id: NODE_CLIENT_ID.into(),
            display_name: Some(opts.display_name.clone()),
            version: env!("CARGO_PKG_VERSION").into(),
            platform: std::env::consts::OS.into(),
            device_family: None,
            model_identifier: None,
            mode: NODE_MODE.into(),
            instance_id: None,
        },
        caps: Some(vec!["system".into()]),
        commands: Some(
            super::invoke::COMMANDS
                .iter()
                .map(|c| c.to_string())
                .collect(),
        ),
        permissions: None,
        path_env: std::env::var("PATH").ok(),
        role: Some(ROLE_NODE.into()),
        scopes: Some(scopes),
        device: Some(DeviceBlock {
            id: id.device_id.clone(),
            public_key: device::encode_public_key(&id.key.verifying_key()),
            signature,
            signed_at,
            nonce: Some(nonce.into()),
        }),
        auth: (!token.is_empty()).then(|| ConnectAuth {
            token: Some(token.into()),
            password: None,
        }),
        locale: None,
        user_agent: None,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_frame(ws: &mut Socket) -> Result<Frame, Ended> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<Frame>(&t) {
                Ok(f) => return Ok(f),
                Err(_) => tracing::debug!("ignoring a frame that is not protocol v3"),
            },
            Some(Ok(Message::Close(c))) => {
                return Err(Ended::Closed(c.map_or_else(
                    || "closed".to_string(),
                    |c| format!("closed ({}): {}", u16::from(c.code), c.reason),
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Ended::Closed(e.to_string())),
            None => return Err(Ended::Closed("connection lost".into())),
        }
    }
}

async fn connect_once(
    opts: &NodeOptions,
    id: &Identity,
    backoff: &mut Duration,
    dedupe: &Arc<Dedupe>,
    on_connected: impl FnOnce(),
) -> Ended {
    let connector = opts
        .tls_fingerprint
        .map(|pin| tokio_tungstenite::Connector::Rustls(super::tls::pinned_config(pin)));
    let connected = tokio_tungstenite::connect_async_tls_with_config(
        opts.gateway.as_str(),
        None,
        false,
        connector,
    )
    .await;
    let (mut ws, _) = match connected {
        Ok(x) => x,
        Err(e) => return Ended::Unreachable(unreachable(opts, &e.to_string())),
    };
    let nonce = match tokio::time::timeout(CHALLENGE_WAIT, async {
        loop {
            match next_frame(&mut ws).await? {
                Frame::Event(e) if e.event == "connect.challenge" => {
                    return Ok(e
                        .payload
                        .as_ref()
                        .and_then(|p| p.get("nonce"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string());
                }
                _ => {}
            }
        }
    })
    .await
    {
        Ok(Ok(n)) if !n.is_empty() => n,
        Ok(Err(ended)) => return ended,
        _ => {
            return Ended::Refused(format!(
                "{} sent no connect.challenge: is it a clawops (or Clawdbot) gateway?",
                opts.gateway
            ));
        }
    };
    let stored = identity::stored_token(&opts.state, id, ROLE_NODE);
    let token = stored
        .as_ref()
        .map(|t| t.token.clone())
        .or_else(|| opts.token.as_ref().map(|t| t.expose_secret().to_string()))
        .unwrap_or_default();
    let req_id = uuid_v4();
    let params =
        serde_json::to_value(connect_params(opts, id, &nonce, &token)).expect("params serialize");
    if ws
        .send(Message::Text(
            Frame::req(&req_id, "connect", params).to_text().into(),
        ))
        .await
        .is_err()
    {
        return Ended::Closed("connection lost while connecting".into());
    }
    let answer = tokio::time::timeout(ANSWER_WAIT, async {
        loop {
            match next_frame(&mut ws).await? {
                Frame::Res(r) if r.id == req_id => return Ok(r),
                _ => {}
            }
        }
    })
    .await;
    let res = match answer {
        Ok(Ok(r)) => r,
        Ok(Err(ended)) => return ended,
        Err(_) => return Ended::Closed("the gateway did not answer connect".into()),
    };
    if !res.ok {
        let error = res
            .error
            .unwrap_or_else(|| crate::protocol::frames::ErrorShape::new("?", "refused"));
        if error.code == codes::NOT_PAIRED && error.message == "pairing required" {
            let kubectl = error
                .details
                .as_ref()
                .and_then(|d| d.get("approveCommand"))
                .and_then(|c| c.as_str())
                .map(str::to_string);
            return Ended::PairingRequired(kubectl);
        }
        if stored.is_some() && error.message.starts_with("unauthorized") {
            // The device token was revoked or rotated: forget it and pair again.
            let _ = identity::store_token(&opts.state, id, ROLE_NODE, None);
            tracing::warn!(why = %error.message, "the gateway refused this node's device token; asking to pair again");
            return Ended::Retry;
        }
        return Ended::Refused(error.message);
    }
    let hello: HelloOk = match res.payload.map(serde_json::from_value) {
        Some(Ok(h)) => h,
        _ => return Ended::Refused("the gateway's hello-ok is not protocol v3".into()),
    };
    if let Some(auth) = &hello.auth {
        let t = StoredToken {
            token: auth.device_token.clone(),
            role: auth.role.clone(),
            scopes: auth.scopes.clone(),
            updated_at_ms: chrono::Utc::now().timestamp_millis(),
        };
        if let Err(e) = identity::store_token(&opts.state, id, ROLE_NODE, Some(t)) {
            tracing::warn!(error = %e, "could not store the device token; the next connect needs the gateway token");
        }
    }
    *backoff = FIRST_BACKOFF;
    tracing::info!(gateway = %opts.gateway, node = %id.short_id(), "connected");
    on_connected();
    serve(
        opts,
        id,
        ws,
        Duration::from_millis(hello.policy.tick_interval_ms.max(1000)),
        dedupe,
    )
    .await
}

/// The session: invokes in, results out, ticks watched.
async fn serve(
    opts: &NodeOptions,
    id: &Identity,
    ws: Socket,
    tick: Duration,
    dedupe: &Arc<Dedupe>,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(32);
    let mut last_tick = tokio::time::Instant::now();
    let mut watchdog = tokio::time::interval(tick);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Ok(Frame::Event(e)) = serde_json::from_str::<Frame>(&t) else { continue };
                    if e.event == "tick" {
                        last_tick = tokio::time::Instant::now();
                    } else if e.event == EVENT_INVOKE_REQUEST
                        && let Some(req) = e.payload.and_then(|p| serde_json::from_value::<InvokeRequest>(p).ok())
                    {
                        let (tx, state, dedupe) = (tx.clone(), opts.state.clone(), dedupe.clone());
                        let node_id = id.device_id.clone();
                        // Not tied to the connection: a run goes on when it drops, and its
                        // result waits in `dedupe` for the same request sent again.
                        tokio::spawn(async move {
                            let result = super::invoke::invoke(&state, &node_id, req, &dedupe).await;
                            let params = serde_json::to_value(&result).expect("result serializes");
                            let frame = Frame::req(&uuid_v4(), METHOD_INVOKE_RESULT, params);
                            let _ = tx.send(Message::Text(frame.to_text().into())).await;
                        });
                    }
                }
                Some(Ok(Message::Close(c))) => {
                    return Ended::Closed(c.map_or_else(|| "closed".to_string(), |c| format!("closed ({}): {}", u16::from(c.code), c.reason)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Closed(e.to_string()),
                None => return Ended::Closed("connection lost".into()),
            },
            Some(out) = rx.recv() => {
                if sink.send(out).await.is_err() {
                    return Ended::Closed("connection lost while answering".into());
                }
            }
            _ = watchdog.tick() => {
                if last_tick.elapsed() > tick * 2 {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 4000.into(), reason: "tick timeout".into() }))).await;
                    return Ended::Closed(format!("no tick from the gateway for {} s", last_tick.elapsed().as_secs()));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
