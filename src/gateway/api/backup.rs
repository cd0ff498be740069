//! `GET /api/backup` and `POST /api/restore`: the state dir as a backup (see `crate::backup`),
//! and a backup staged to replace it at the next start.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use axum::routing::{MethodRouter, get, post};

use super::error;
use crate::gateway::Gateway;

/// The routes, for the API's route list (behind the token).
pub fn routes() -> Vec<(&'static str, MethodRouter<Arc<Gateway>>)> {
    vec![
        ("/api/backup", get(backup)),
        (
            "/api/restore",
            post(restore).layer(axum::extract::DefaultBodyLimit::max(RESTORE_MAX)),
        ),
    ]
}

/// The largest archive `POST /api/restore` takes.
const RESTORE_MAX: usize = 512 << 20;

#[derive(serde::Deserialize)]
struct RestoreQuery {
    #[serde(default)]
    force: bool,
}

/// `POST /api/restore[?force=true]` with a backup as the body: checked whole, staged in the
/// state dir, and applied when the gateway starts again (it stops after answering; in a pod
/// Kubernetes starts it again). State that is there is replaced only with `force`.
async fn restore(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Query(q): axum::extract::Query<RestoreQuery>,
    body: axum::body::Bytes,
) -> Response {
    let dir = gw.state.path().to_path_buf();
    let staged = tokio::task::spawn_blocking(move || {
        crate::backup::stage(&body, "the uploaded backup", &dir, q.force)
    })
    .await;
    match staged {
        Ok(Ok(m)) => {
            tracing::warn!(files = m.files.len(), from = %m.created, "backup staged for restore");
            gw.restart.notify_one();
            Json(crate::api::RestoreStaged {
                files: m.files.len(),
                created: m.created,
                clawops: m.clawops,
            })
            .into_response()
        }
        Ok(Err(e @ crate::backup::BackupError::NotEmpty { .. })) => {
            error(StatusCode::CONFLICT, "not-empty", e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, "backup", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "backup", e.to_string()),
    }
}

#[derive(serde::Deserialize)]
struct BackupQuery {
    #[serde(default)]
    secrets: bool,
}

/// `GET /api/backup[?secrets=true]`: the state dir as a `.tar.zst` (see `crate::backup`).
async fn backup(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Query(q): axum::extract::Query<BackupQuery>,
) -> Response {
    // In a cluster the NodePairings go with it: they, not the state dir, approve the nodes.
    let carried = match crate::gateway::nodes::restored::carried(&gw).await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "backup", e.to_string()),
    };
    let dir = gw.state.path().to_path_buf();
    let extra = carried.into_iter().collect();
    match tokio::task::spawn_blocking(move || crate::backup::create_with(&dir, q.secrets, extra))
        .await
    {
        Ok(Ok(made)) => {
            tracing::info!(
                files = made.manifest.files.len(),
                bytes = made.archive.len(),
                secrets = q.secrets,
                "backup taken"
            );
            (
                [
                    (header::CONTENT_TYPE, "application/zstd"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"clawops-backup.tar.zst\"",
                    ),
                ],
                made.archive,
            )
                .into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "backup", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "backup", e.to_string()),
    }
}
