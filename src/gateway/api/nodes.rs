//! The nodes' HTTP side: the WebSocket upgrade at `/` (the client address behind trusted
//! proxies, the frame limits), and `/api/nodes…` to list, approve, reject, revoke and rotate
//! paired machines and run a command on one through its exec policy.

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::Json;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use super::auth;
use super::error;
use crate::api::{
    ExecEdit, NodeAction, NodeExec, NodeList, NodeRunRequest, PendingNode, ResolveApproval,
};
use crate::gateway::Gateway;
use crate::gateway::nodes::ExecError;
use crate::gateway::nodes::approvals::{self, Decision};
use crate::gateway::nodes::cluster::ClusterError;
use crate::gateway::nodes::exec;
use crate::gateway::nodes::handshake::CLOSE_POLICY;
use crate::gateway::nodes::registry::InvokeError;
use crate::gateway::nodes::run::{self, RunError};
use crate::gateway::nodes::store::StoreError;
use crate::gateway::nodes::{now_ms, socket};
use crate::gateway::telegram::buttons;
use crate::protocol::connect::ROLE_NODE;
use crate::protocol::connect::{MAX_BUFFERED_BYTES, MAX_PAYLOAD};

/// The nodes' routes behind the gateway token (see `http::api_routes`).
pub fn routes() -> Vec<(&'static str, MethodRouter<Arc<Gateway>>)> {
    vec![
        ("/api/nodes", get(list)),
        ("/api/nodes/run", post(run_command)),
        ("/api/nodes/{action}", post(act)),
        ("/api/nodes/{id}/exec", get(exec_get).post(exec_edit)),
        ("/api/approvals", get(approvals_list)),
        ("/api/approvals/resolve", post(approvals_resolve)),
    ]
}

/// `GET /` with an upgrade: the node socket.
pub async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = auth::client_ip(peer.ip(), forwarded, &gw.config.gateway.trusted_proxies);
    // Idle nodes are most of the connections: a 4 KiB read buffer (grown for bigger frames)
    // instead of tungstenite's 128 KiB, which is zero-filled at the first read.
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(MAX_PAYLOAD)
        .max_frame_size(MAX_PAYLOAD)
        .max_write_buffer_size(MAX_BUFFERED_BYTES)
        .on_upgrade(move |socket| socket::serve(gw, socket, ip))
}

async fn list(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.nodes.store.list(now_ms()) {
        Ok((pending, devices)) => Json(NodeList {
            pending: pending
                .into_iter()
                .map(|p| PendingNode {
                    request_id: p.request_id,
                    node_id: p.device_id,
                    display_name: p.display_name,
                    platform: p.platform,
                    remote_ip: p.remote_ip,
                    requested_at_ms: p.ts,
                })
                .collect(),
            paired: devices.iter().map(|d| gw.nodes.paired_node(d)).collect(),
        })
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "state", e.to_string()),
    }
}

async fn act(
    State(gw): State<Arc<Gateway>>,
    Path(action): Path<String>,
    Json(req): Json<NodeAction>,
) -> Response {
    let store = &gw.nodes.store;
    let now = now_ms();
    let done = match action.as_str() {
        "approve" => gw.nodes.approve(&req.id).await,
        "revoke" => gw.nodes.revoke(&req.id).await,
        "rotate" => store.rotate(&req.id, ROLE_NODE, now),
        "reject" => {
            return match gw.nodes.reject(&req.id).await {
                Ok(p) => {
                    tracing::info!(node = %crate::protocol::device::short_id(&p.device_id), "pairing rejected");
                    Json(serde_json::json!({ "rejected": p.request_id })).into_response()
                }
                Err(e) => store_error(e),
            };
        }
        other => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no node action {other}; use approve, reject, revoke or rotate"),
            );
        }
    };
    match done {
        Ok(d) => {
            tracing::info!(node = %crate::protocol::device::short_id(&d.device_id), %action, "node pairing changed");
            // A revoked or rotated node must connect again with what it now holds.
            if action != "approve" {
                gw.nodes
                    .registry
                    .kick(
                        &d.device_id,
                        CLOSE_POLICY,
                        &format!("pairing {action}d by the owner"),
                    )
                    .await;
            }
            Json(gw.nodes.paired_node(&d)).into_response()
        }
        Err(e) => store_error(e),
    }
}

/// A paired node's exec settings as the owner sees them, with each pattern's last use.
async fn exec_view(gw: &Gateway, id: &str) -> Result<NodeExec, Response> {
    let d = gw.nodes.store.device(id).map_err(store_error)?;
    let s = gw
        .nodes
        .exec_settings(&d.device_id)
        .await
        .map_err(exec_error)?;
    let records = gw.nodes.audit.read();
    Ok(NodeExec {
        allowlist: exec::with_last_use(&s.allowlist, &d.device_id, &records),
        source: gw.nodes.exec_source(&d.device_id),
        node_id: d.device_id,
        display_name: d.display_name,
        security: s.security,
        ask: s.ask,
        ask_fallback: s.ask_fallback,
    })
}

async fn exec_get(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match exec_view(&gw, &id).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Changes a node's exec settings: written to its NodePairing in a cluster, the state dir
/// standalone; the next command uses them.
async fn exec_edit(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Json(edit): Json<ExecEdit>,
) -> Response {
    let d = match gw.nodes.store.device(&id) {
        Ok(d) => d,
        Err(e) => return store_error(e),
    };
    if let Err(e) = gw.nodes.edit_exec(&d.device_id, &edit).await {
        return exec_error(e);
    }
    tracing::info!(node = %crate::protocol::device::short_id(&d.device_id), added = edit.add.len(), removed = edit.remove.len(), "node exec settings changed");
    exec_get(State(gw), Path(d.device_id)).await
}

fn exec_error(e: ExecError) -> Response {
    let code = match &e {
        ExecError::Edit(_) | ExecError::Cluster(ClusterError::Edit(_)) => StatusCode::BAD_REQUEST,
        ExecError::Cluster(ClusterError::NoPairing(_)) => StatusCode::NOT_FOUND,
        ExecError::Cluster(ClusterError::Busy(_)) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let kind = if code == StatusCode::BAD_REQUEST {
        "invalid"
    } else {
        "exec"
    };
    error(code, kind, e.to_string())
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::State(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "state", e.to_string()),
        _ => error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
    }
}

async fn run_command(State(gw): State<Arc<Gateway>>, Json(req): Json<NodeRunRequest>) -> Response {
    if req.command.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "command: must not be empty".into(),
        );
    }
    let timeout = req.timeout_ms.map(Duration::from_millis);
    let approval = req
        .approval_timeout_ms
        .map_or(approvals::APPROVAL_TIMEOUT, Duration::from_millis);
    match run::run(&gw, &req.node, &req.command, timeout, approval, None, None).await {
        Ok(out) => Json(out).into_response(),
        Err(e) => {
            let code = match &e {
                RunError::NoNode(_) | RunError::Ambiguous { .. } => StatusCode::NOT_FOUND,
                RunError::Disabled(_)
                | RunError::Node { .. }
                | RunError::Denied { .. }
                | RunError::NotAnswered(_) => StatusCode::FORBIDDEN,
                RunError::Invoke(InvokeError::TimedOut { .. }) => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            };
            error(code, "node", e.to_string())
        }
    }
}

async fn approvals_list(State(gw): State<Arc<Gateway>>) -> Response {
    Json(gw.nodes.approvals.list()).into_response()
}

/// Answers a waiting command as the Telegram buttons would, and updates those messages.
async fn approvals_resolve(
    State(gw): State<Arc<Gateway>>,
    Json(req): Json<ResolveApproval>,
) -> Response {
    let Some(decision) = Decision::parse(&req.decision) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "decision: `{}` is not allow-once, allow-always or deny",
                req.decision
            ),
        );
    };
    let by = "the CLI".to_string();
    if !gw.nodes.approvals.decide(&req.id, decision, by.clone()) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no approval {} waits; `clawops approvals list` shows the waiting ones",
                req.id
            ),
        );
    }
    if let Some(closed) = gw
        .prompts
        .close(&req.id, &approvals::outcome(decision, &by))
    {
        buttons::show(&gw, &closed).await;
    }
    Json(serde_json::json!({ "id": req.id, "decision": decision.key() })).into_response()
}
