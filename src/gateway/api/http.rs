//! The gateway's HTTP surface on its one port: `/healthz`, `/readyz`, `/health`, `/metrics`,
//! `/api/…` behind the gateway token (WebChat's routes in `chat.rs`, the nodes' in `nodes.rs`), and
//! the Control UI and the node WebSocket at `/`.

use crate::api::{
    ApiError, ApproveRequest, Approved, ApprovedSender, CronRunReply, PairingList, PendingRequest,
    RejectRequest, RevokeRequest,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};

use super::auth::{self, Denied};
use super::error;
use super::health;
use crate::gateway::telegram::pairing;
use crate::gateway::{Gateway, cron};

/// Every route behind the gateway token: the router is built from this list, and the attack
/// test (`tests/it/attacks.rs`) walks it, so a new route can miss neither.
pub fn api_routes() -> Vec<(&'static str, MethodRouter<Arc<Gateway>>)> {
    let mut routes = vec![
        ("/api/status", get(status)),
        (
            "/api/chat",
            get(super::chat::history).post(super::chat::turn),
        ),
        ("/api/cron/{name}/run", post(cron_run)),
        ("/api/audit", get(audit)),
        ("/api/crons", get(crons)),
        ("/api/alerts", get(alerts)),
        ("/api/pairing/{channel}", get(pairing_list)),
        ("/api/pairing/{channel}/approve", post(pairing_approve)),
        ("/api/pairing/{channel}/reject", post(pairing_reject)),
        ("/api/pairing/{channel}/revoke", post(pairing_revoke)),
        ("/api/pairing/{channel}/import", post(pairing_import)),
    ];
    routes.extend(super::nodes::routes());
    routes.extend(super::backup::routes());
    routes
}

/// The paths of [`api_routes`].
pub fn api_paths() -> Vec<&'static str> {
    api_routes().into_iter().map(|(p, _)| p).collect()
}

pub fn router(gw: Arc<Gateway>) -> Router {
    let api = api_routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route))
        .route_layer(middleware::from_fn_with_state(gw.clone(), require_token));
    Router::new()
        .route("/", get(super::ui::root))
        .merge(super::ui::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(gw)
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    since: Option<String>,
    tool: Option<String>,
}

/// The audit logs, newest last; `since` (e.g. `1h`) and `tool` narrow them.
async fn audit(State(gw): State<Arc<Gateway>>, Query(q): Query<AuditQuery>) -> Response {
    let since = match q.since.as_deref().map(crate::crd::common::parse_duration) {
        None => None,
        Some(Some(secs)) => Some(chrono::Utc::now() - chrono::Duration::seconds(secs as i64)),
        Some(None) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(ApiError {
                    error: "invalid".into(),
                    message: "since: not a duration; use e.g. 30m, 1h or 2d".into(),
                    detail: None,
                }),
            )
                .into_response();
        }
    };
    let recent = |ts: &chrono::DateTime<chrono::Utc>| since.is_none_or(|s| *ts >= s);
    let tools = gw
        .tool_audit
        .read()
        .into_iter()
        .filter(|t| recent(&t.ts) && q.tool.as_ref().is_none_or(|n| *n == t.tool))
        .collect();
    let execs = if q.tool.is_some() {
        Vec::new()
    } else {
        gw.nodes
            .audit
            .read()
            .into_iter()
            .filter(|e| recent(&e.ts))
            .collect()
    };
    Json(crate::api::AuditLog { tools, execs }).into_response()
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if let Err(e) = gw.state.check_writable() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state not writable: {e}\n"),
        )
            .into_response();
    }
    if !gw.channels_started.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "channels starting\n").into_response();
    }
    // Until the NodePairings are listed, a node's connect would wait for them.
    if gw.nodes.cluster.as_ref().is_some_and(|c| !c.synced()) {
        return (StatusCode::SERVICE_UNAVAILABLE, "node pairings syncing\n").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn health(State(gw): State<Arc<Gateway>>) -> Json<crate::api::Health> {
    Json(health::report(&gw).await)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.render(),
    )
        .into_response()
}

async fn status(State(gw): State<Arc<Gateway>>) -> Json<crate::api::Status> {
    Json(health::status(&gw).await)
}

/// What the alerts told that still holds, and the clearings told lately.
async fn alerts(State(gw): State<Arc<Gateway>>) -> Json<crate::api::AlertsView> {
    let off_reason = crate::gateway::alerts::off_reason(&gw);
    let (told, cleared) = gw.alerts.view();
    Json(crate::api::AlertsView {
        enabled: off_reason.is_none(),
        off_reason,
        told,
        cleared,
    })
}

/// Runs kept per Cron in `/api/crons`.
const LAST_RUNS: usize = 5;

/// The Crons with their next and last runs.
async fn crons(State(gw): State<Arc<Gateway>>) -> Json<Vec<crate::api::CronView>> {
    let now = chrono::Utc::now();
    let state = gw.state.clone();
    let crons = gw.config.crons.clone();
    let views = tokio::task::spawn_blocking(move || {
        crons
            .iter()
            .map(|c| {
                let mut runs = cron::run::runs(&state, &c.name).read();
                runs.reverse();
                runs.truncate(LAST_RUNS);
                crate::api::CronView {
                    name: c.name.clone(),
                    schedule: c.schedule.clone(),
                    time_zone: c.time_zone.clone(),
                    suspended: c.suspend,
                    patrol: c.patrol.is_some(),
                    next_run: cron::occurrence::next_run(c, now),
                    last_runs: runs,
                }
            })
            .collect()
    })
    .await
    .expect("run logs read");
    Json(views)
}

/// Runs a Cron now; 200 when answered (and delivered, if it delivers), 502 otherwise.
async fn cron_run(State(gw): State<Arc<Gateway>>, Path(name): Path<String>) -> Response {
    let Some(cron) = gw.config.crons.iter().find(|c| c.name == name).cloned() else {
        let names: Vec<&str> = gw.config.crons.iter().map(|c| c.name.as_str()).collect();
        return error(
            StatusCode::NOT_FOUND,
            "cron",
            format!(
                "no Cron named {name}; this gateway has: {}",
                names.join(", ")
            ),
        );
    };
    let record = cron::run::run(&gw, &cron).await;
    let ok = record.succeeded(cron.deliver.is_some());
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    let message = (!ok).then(|| {
        format!(
            "Cron {name} failed: {}",
            record.result_line(cron.deliver.is_some())
        )
    });
    (
        code,
        Json(CronRunReply {
            ok,
            run: record,
            message,
        }),
    )
        .into_response()
}

async fn pairing_list(State(gw): State<Arc<Gateway>>, Path(channel): Path<String>) -> Response {
    let c = match gw.channel(&channel) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::NOT_FOUND, "channel", why),
    };
    let now = chrono::Utc::now();
    let pending: Vec<_> = c
        .pairing
        .pending(now)
        .await
        .into_iter()
        .map(|r| PendingRequest {
            sender: r.meta.label(),
            requested_at: r.created_at,
            expires_at: r.expires_at(),
            code: r.code,
            id: r.id,
        })
        .collect();
    let approved = c.pairing.allowed().await;
    Json(PairingList {
        channel: c.name.clone(),
        pending,
        approved_senders: approved.len(),
        approved,
    })
    .into_response()
}

/// `POST /api/pairing/{channel}/import`: approved senders and pending codes carried over
/// (`clawops state load`); adds, never removes.
async fn pairing_import(
    State(gw): State<Arc<Gateway>>,
    Path(channel): Path<String>,
    Json(req): Json<crate::api::PairingState>,
) -> Response {
    let c = match gw.channel(&channel) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::NOT_FOUND, "channel", why),
    };
    match c.pairing.import(&req, chrono::Utc::now()).await {
        Ok((allowed_added, pending_added)) => {
            tracing::info!(channel = %c.name, allowed_added, pending_added, "pairing state imported");
            Json(crate::api::PairingImported {
                channel: c.name.clone(),
                allowed_added,
                pending_added,
                allowed_total: c.pairing.allowed_count().await,
            })
            .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "state", e.to_string()),
    }
}

async fn pairing_approve(
    State(gw): State<Arc<Gateway>>,
    Path(channel): Path<String>,
    Json(req): Json<ApproveRequest>,
) -> Response {
    let c = match gw.channel(&channel) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::NOT_FOUND, "channel", why),
    };
    match c.pairing.approve(&req.code, chrono::Utc::now()).await {
        Ok(r) => {
            tracing::info!(channel = %c.name, sender = %r.id, "pairing approved");
            let mut notified = false;
            if req.notify
                && let Ok(chat) = r.id.parse::<i64>()
            {
                notified = c
                    .send(&gw, teloxide::types::ChatId(chat), pairing::APPROVED_NOTICE)
                    .await;
            }
            Json(Approved {
                channel: c.name.clone(),
                approved: ApprovedSender {
                    sender: r.meta.label(),
                    id: r.id,
                },
                notified,
            })
            .into_response()
        }
        Err(e @ pairing::PairingError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "state", e.to_string()),
    }
}

/// Rejects a pending code: the sender gets a new one if they write again.
async fn pairing_reject(
    State(gw): State<Arc<Gateway>>,
    Path(channel): Path<String>,
    Json(req): Json<RejectRequest>,
) -> Response {
    let c = match gw.channel(&channel) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::NOT_FOUND, "channel", why),
    };
    pairing_changed(
        &c.name,
        "rejected",
        c.pairing
            .reject(&req.code, chrono::Utc::now())
            .await
            .map(|r| r.id),
    )
}

/// Takes an approved sender off the list: their next message asks to pair again.
async fn pairing_revoke(
    State(gw): State<Arc<Gateway>>,
    Path(channel): Path<String>,
    Json(req): Json<RevokeRequest>,
) -> Response {
    let c = match gw.channel(&channel) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::NOT_FOUND, "channel", why),
    };
    let done = c.pairing.revoke(&req.sender).await.map(|_| req.sender);
    pairing_changed(&c.name, "revoked", done)
}

fn pairing_changed(
    channel: &str,
    what: &str,
    done: Result<String, pairing::PairingError>,
) -> Response {
    match done {
        Ok(sender) => {
            tracing::info!(channel, %sender, "pairing {what}");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e @ (pairing::PairingError::NotFound(_) | pairing::PairingError::NotApproved(_))) => {
            error(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "state", e.to_string()),
    }
}

/// Lets a request through with a valid token; otherwise a 401 (or 429) that says why.
async fn require_token(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // Behind an ingress every client would share the proxy's address (and its failure limit).
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = auth::client_ip(peer, forwarded, &gw.config.gateway.trusted_proxies);
    let found = {
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        auth::presented(header(header::AUTHORIZATION), header(header::COOKIE))
            .map(|(t, via)| (t.to_string(), via))
    };
    let changes = !matches!(req.method(), &Method::GET | &Method::HEAD);
    let checked = if auth::in_query(req.uri().query()).is_some() {
        Err(gw.auth.refuse_in_url(ip, Instant::now()))
    } else {
        gw.auth
            .check(ip, found.as_ref().map(|(t, _)| t.as_str()), Instant::now())
    };
    match checked {
        Ok(())
            if changes
                && found
                    .as_ref()
                    .is_some_and(|(_, via)| *via == auth::Via::Cookie)
                && !req.headers().contains_key(auth::CSRF_HEADER) =>
        {
            tracing::warn!(%ip, path = %req.uri().path(), "a cookie-signed request without the Control UI's header was refused (cross-site?)");
            (
                StatusCode::FORBIDDEN,
                Json(ApiError {
                    error: "csrf".into(),
                    message: format!(
                        "refused: a request signed in by cookie that changes something must carry the {} header the Control UI sends (a cross-site request cannot)",
                        auth::CSRF_HEADER
                    ),
                    detail: None,
                }),
            )
                .into_response()
        }
        Ok(()) => next.run(req).await,
        Err(denied) => {
            gw.metrics.auth_failures.inc();
            let code = match denied {
                Denied::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let mut resp = (
                code,
                Json(ApiError {
                    error: "unauthorized".into(),
                    message: denied.message(),
                    detail: None,
                }),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            if let Denied::Limited { retry_after } = denied {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
            }
            resp
        }
    }
}
