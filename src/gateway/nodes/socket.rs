//! The WebSocket nodes connect to, on the gateway's one port: challenge, `connect`, auth and the
//! pairing gate, `hello-ok`, then the session — invokes out, results and events in, a tick every
//! 30 s — until either side closes.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::handshake::{self, CLOSE_POLICY, CLOSE_TOO_BIG, Proven, Refusal};
use super::registry::{NodeInfo, Outbound};
use super::store::PairedDevice;
use super::{admit, now_ms};
use crate::gateway::Gateway;
use crate::protocol::connect::{
    ConnectParams, Features, HANDSHAKE_TIMEOUT_MS, HelloAuth, HelloOk, HelloPolicy, ServerInfo,
    TICK_INTERVAL_MS,
};
use crate::protocol::frames::{ErrorShape, Frame, PROTOCOL_VERSION, codes};
use crate::protocol::invoke::{
    InvokeResult, METHOD_INVOKE_RESULT, METHOD_NODE_EVENT, SYSTEM_COMMANDS,
};
use crate::util::uuid::uuid_v4 as uuid;

const METHODS: &[&str] = &[METHOD_INVOKE_RESULT, METHOD_NODE_EVENT, "skills.bins"];
const EVENTS: &[&str] = &[
    "connect.challenge",
    "tick",
    "node.invoke.request",
    "shutdown",
];

async fn send(socket: &mut WebSocket, frame: &Frame) -> Result<(), axum::Error> {
    socket.send(Message::Text(frame.to_text().into())).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// The next text frame, skipping pings; Err(None) when the peer went away.
async fn next_text(socket: &mut WebSocket) -> Result<String, Option<Refusal>> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Binary(_))) => {
                return Err(Some(Refusal::close(
                    CLOSE_POLICY,
                    "binary frames are not part of protocol v3; send JSON text",
                )));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => return Err(None),
            Some(Err(e)) => return Err(Some(too_big_or_gone(&e))),
        }
    }
}

fn too_big_or_gone(e: &axum::Error) -> Refusal {
    let text = e.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        Refusal::close(CLOSE_TOO_BIG, "frame larger than 512 KiB")
    } else if text.contains("reset")
        || text.contains("closing handshake")
        || text.contains("Broken pipe")
    {
        Refusal::close(handshake::CLOSE_NORMAL, "connection lost")
    } else {
        Refusal::close(CLOSE_POLICY, "invalid frame")
    }
}

/// Speaks protocol v3 on an upgraded socket from the client at `ip`.
pub async fn serve(gw: Arc<Gateway>, mut socket: WebSocket, ip: IpAddr) {
    let nonce = uuid();
    let challenge = Frame::event(
        "connect.challenge",
        json!({ "nonce": nonce, "ts": now_ms() }),
    );
    if send(&mut socket, &challenge).await.is_err() {
        return;
    }
    let first = tokio::time::timeout(
        Duration::from_millis(HANDSHAKE_TIMEOUT_MS),
        next_text(&mut socket),
    )
    .await;
    let text = match first {
        Err(_) => {
            tracing::info!(%ip, "node socket closed: no connect within 10 s");
            close(&mut socket, handshake::CLOSE_NORMAL, "handshake timeout").await;
            return;
        }
        Ok(Err(None)) => return,
        Ok(Err(Some(r))) => {
            tracing::info!(%ip, reason = %r.reason, "node socket refused");
            close(&mut socket, r.code, &r.reason).await;
            return;
        }
        Ok(Ok(text)) => text,
    };
    let parsed = first_request(&text);
    // What lives across the session's awaits lives as long as the node stays connected.
    drop(text);
    let (id, params) = match parsed {
        Ok(x) => x,
        Err((id, r)) => return refuse(&mut socket, id.as_deref(), r, ip, "-").await,
    };
    let who = params.describe();
    match admit::admit(&gw, &params, &nonce, ip).await {
        Err(r) => refuse(&mut socket, Some(&id), r, ip, &who).await,
        Ok((proven, device)) => {
            session(gw, socket, &id, params, proven, *device, ip).await;
        }
    }
}

async fn refuse(socket: &mut WebSocket, id: Option<&str>, r: Refusal, ip: IpAddr, who: &str) {
    tracing::info!(%ip, node = %who, reason = %r.reason, "node connect refused");
    if let (Some(id), Some(error)) = (id, r.error) {
        let _ = send(socket, &Frame::err(id, *error)).await;
    }
    close(socket, r.code, &r.reason).await;
}

/// The first frame must be a `connect` request with valid params.
fn first_request(text: &str) -> Result<(String, ConnectParams), (Option<String>, Refusal)> {
    let value: Value = serde_json::from_str(text).map_err(|_| {
        (
            None,
            Refusal::close(CLOSE_POLICY, "invalid frame: not JSON"),
        )
    })?;
    let Ok(Frame::Req(req)) = serde_json::from_value::<Frame>(value) else {
        return Err((None, Refusal::close(CLOSE_POLICY, "invalid request frame")));
    };
    if req.method != "connect" {
        return Err((
            Some(req.id),
            Refusal::invalid(
                codes::INVALID_REQUEST,
                "invalid handshake: first request must be connect",
            ),
        ));
    }
    match serde_json::from_value::<ConnectParams>(req.params.unwrap_or(Value::Null)) {
        Ok(p) => Ok((req.id, p)),
        Err(e) => Err((
            Some(req.id),
            Refusal::invalid(
                codes::INVALID_REQUEST,
                format!("invalid connect params: {e}"),
            ),
        )),
    }
}

async fn session(
    gw: Arc<Gateway>,
    mut socket: WebSocket,
    connect_id: &str,
    mut params: ConnectParams,
    proven: Proven,
    device: PairedDevice,
    ip: IpAddr,
) {
    let token = device
        .token(&proven.role)
        .expect("the gate admits only devices with a live token");
    let hello = HelloOk {
        kind: "hello-ok".into(),
        protocol: PROTOCOL_VERSION,
        server: ServerInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            host: None,
            conn_id: uuid(),
        },
        features: Features {
            methods: METHODS.iter().map(|m| m.to_string()).collect(),
            events: EVENTS.iter().map(|e| e.to_string()).collect(),
        },
        snapshot: json!({ "uptimeMs": gw.started.elapsed().as_millis() as u64 }),
        auth: Some(HelloAuth {
            device_token: token.token.clone(),
            role: proven.role.clone(),
            scopes: token.scopes.clone(),
            issued_at_ms: token.rotated_at_ms.unwrap_or(token.created_at_ms),
        }),
        policy: HelloPolicy::default(),
    };
    let hello = serde_json::to_value(&hello).expect("hello serializes");
    if send(&mut socket, &Frame::ok(connect_id, hello))
        .await
        .is_err()
    {
        return;
    }
    // Commands outside what a system node may run are dropped, as Clawdbot does; said here.
    let (commands, dropped): (Vec<String>, Vec<String>) = params
        .commands
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.trim().to_string())
        .partition(|c| SYSTEM_COMMANDS.contains(&c.as_str()));
    if !dropped.is_empty() {
        tracing::warn!(node = %&proven.device_id[..12], ?dropped, "node declared commands a system node may not offer; ignored");
    }
    let node_id = proven.device_id.clone();
    let short = node_id[..12].to_string();
    let info = NodeInfo {
        node_id: node_id.clone(),
        display_name: params.client.display_name.clone(),
        platform: params.client.platform.clone(),
        version: params.client.version.clone(),
        commands,
        remote_ip: ip.to_string(),
        connected_at_ms: now_ms(),
    };
    let (tx, mut rx) = mpsc::channel::<Outbound>(16);
    if let Some(c) = &gw.nodes.cluster {
        c.connected(&info, true).await;
    }
    let conn = gw.nodes.registry.connected(info.clone(), tx);
    tracing::info!(node = %short, name = ?params.client.display_name, %ip, "node connected");
    // Kept for the life of an idle connection otherwise.
    drop((params, proven, device));
    let tick_every = Duration::from_millis(TICK_INTERVAL_MS);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + tick_every, tick_every);
    let why = loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Err(r) = on_frame(&gw, &node_id, &text, &mut socket).await {
                        close(&mut socket, r.code, &r.reason).await;
                        break r.reason;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let r = "binary frames are not part of protocol v3";
                    close(&mut socket, CLOSE_POLICY, r).await;
                    break r.to_string();
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break "closed by the node".to_string(),
                Some(Err(e)) => {
                    let r = too_big_or_gone(&e);
                    close(&mut socket, r.code, &r.reason).await;
                    break format!("{} ({e})", r.reason);
                }
            },
            out = rx.recv() => match out {
                Some(Outbound::Frame(f)) => {
                    if send(&mut socket, &f).await.is_err() {
                        break "send failed".to_string();
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    close(&mut socket, code, &reason).await;
                    break reason;
                }
                None => break "gateway stopping".to_string(),
            },
            _ = tick.tick() => {
                let seq = gw.nodes.next_seq();
                let mut f = Frame::event("tick", json!({ "ts": now_ms() }));
                if let Frame::Event(e) = &mut f {
                    e.seq = Some(seq);
                }
                if send(&mut socket, &f).await.is_err() {
                    break "send failed".to_string();
                }
            }
        }
    };
    gw.nodes.registry.disconnected(&node_id, conn);
    if let Some(c) = &gw.nodes.cluster {
        c.connected(&info, false).await;
    }
    tracing::info!(node = %short, %why, "node disconnected");
}

/// One frame of an admitted node.
async fn on_frame(
    gw: &Gateway,
    node_id: &str,
    text: &str,
    socket: &mut WebSocket,
) -> Result<(), Refusal> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| Refusal::close(CLOSE_POLICY, "invalid frame: not JSON"))?;
    let frame = match serde_json::from_value::<Frame>(value) {
        Ok(f) => f,
        Err(_) => return Err(Refusal::close(CLOSE_POLICY, "invalid frame")),
    };
    let Frame::Req(req) = frame else {
        // Nodes answer nothing the gateway asks by `res`; events from nodes come as requests.
        return Ok(());
    };
    let reply = match req.method.as_str() {
        METHOD_INVOKE_RESULT => invoke_result(gw, node_id, req.params),
        METHOD_NODE_EVENT => {
            let event = req
                .params
                .as_ref()
                .and_then(|p| p.get("event"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            tracing::debug!(node = %&node_id[..12], %event, "node event");
            Ok(json!({ "ok": true }))
        }
        "skills.bins" => Ok(json!({ "bins": [] })),
        "connect" => Err(ErrorShape::new(codes::INVALID_REQUEST, "already connected")),
        other => Err(ErrorShape::new(
            codes::INVALID_REQUEST,
            format!("method {other} is not available to nodes"),
        )),
    };
    let frame = match reply {
        Ok(payload) => Frame::ok(&req.id, payload),
        Err(e) => Frame::err(&req.id, e),
    };
    send(socket, &frame)
        .await
        .map_err(|_| Refusal::close(CLOSE_POLICY, "send failed"))
}

/// A `node.invoke.result`'s params, read as Clawdbot's gateway reads them.
fn parse_result(params: Option<Value>) -> Result<InvokeResult, ErrorShape> {
    let mut params = params.unwrap_or(Value::Null);
    // Clawdbot's gateway reads `payloadJSON: null` and `error: null` as absent.
    if let Some(o) = params.as_object_mut() {
        o.retain(|k, v| !(v.is_null() && (k == "payloadJSON" || k == "error")));
    }
    serde_json::from_value(params).map_err(|e| {
        ErrorShape::new(
            codes::INVALID_REQUEST,
            format!("invalid node.invoke.result: {e}"),
        )
    })
}

fn invoke_result(gw: &Gateway, node_id: &str, params: Option<Value>) -> Result<Value, ErrorShape> {
    let result = parse_result(params)?;
    if result.node_id != node_id {
        return Err(ErrorShape::new(codes::INVALID_REQUEST, "nodeId mismatch"));
    }
    Ok(if gw.nodes.registry.resolve(node_id, result) {
        json!({ "ok": true })
    } else {
        json!({ "ok": true, "ignored": true })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// A node's first frame edited anywhere: a connect, or a refusal that says why, never a
        /// panic.
        #[test]
        fn fuzz_first_frame(edits in crate::util::fuzz::edits()) {
            let seed = r#"{"type":"req","id":"1","method":"connect","params":{"minProtocol":3,"maxProtocol":3,"client":{"id":"node-host","displayName":"desk","version":"2026.1.24-3","platform":"linux","mode":"node","instanceId":"7b0c"},"caps":["system"],"commands":["system.run","system.which"],"pathEnv":"/usr/bin:/bin","auth":{"token":"t"},"role":"node","scopes":[],"device":{"id":"ab","publicKey":"k","signature":"s","signedAt":1737800000000,"nonce":"n"}}}"#;
            let text = crate::util::fuzz::apply(seed, &edits);
            if let Ok((_, p)) = first_request(&text) {
                let _ = p.schema_problem();
                let _ = p.describe();
            }
            let _ = serde_json::from_str::<crate::protocol::frames::Frame>(&text);
        }

        /// A node's later frames (a command's result, with its output) edited anywhere: read as
        /// the gateway reads them, or refused with the field named, never a panic.
        #[test]
        fn fuzz_later_frames(edits in crate::util::fuzz::edits()) {
            let seed = r#"{"type":"req","id":"r1","method":"node.invoke.result","params":{"id":"inv-1","nodeId":"ab12","ok":true,"payloadJSON":"{\"exitCode\":0,\"timedOut\":false,\"success\":true,\"stdout\":\"up 3 days\\n\",\"stderr\":\"\",\"error\":null}","error":null}}"#;
            let text = crate::util::fuzz::apply(seed, &edits);
            if let Ok(Frame::Req(req)) = serde_json::from_str::<Frame>(&text) {
                match parse_result(req.params) {
                    Ok(r) => {
                        let _ = r.payload_value().and_then(|v| {
                            serde_json::from_value::<crate::protocol::invoke::RunOutput>(v).ok()
                        });
                    }
                    Err(e) => proptest::prop_assert!(e.message.starts_with("invalid node.invoke.result")),
                }
            }
        }
    }
}
