//! The gateway's HTTP side on its one port: the routes (`/healthz`, `/readyz`, `/health`,
//! `/metrics`, `/api/…`, the Control UI and the node WebSocket at `/`), what `/health` reports,
//! and the gateway token that guards `/api/…`.

pub mod auth;
pub mod backup;
pub mod chat;
pub mod health;
pub mod http;
pub mod nodes;
pub mod prefix;
pub mod ui;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer of the API: the status and a typed body naming what went wrong.
pub fn error(code: StatusCode, kind: &str, message: String) -> Response {
    let body = crate::api::ApiError {
        error: kind.into(),
        message,
        detail: None,
    };
    (code, Json(body)).into_response()
}
