//! The operator's HTTP endpoints: `/metrics`, `/healthz` (alive) and `/readyz` (every watch has
//! listed its kind and none keeps failing; or a standby replica waiting for the leader Lease,
//! ready so that a PodDisruptionBudget counts the standby and a drain can move the leader).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::health::Health;
use super::metrics::Metrics;

pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// Running the controllers (the leader, or the only replica).
    pub leading: AtomicBool,
    pub health: Arc<Health>,
    /// Waiting for the leader Lease (ready, but not reconciling).
    pub standby: AtomicBool,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    if s.leading.load(Ordering::Relaxed) {
        match s.health.readiness(std::time::Instant::now()) {
            Ok(()) => (StatusCode::OK, "ready\n".to_string()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        }
    } else if s.standby.load(Ordering::Relaxed) {
        (StatusCode::OK, "standby\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
    }
}

async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(state: &Arc<HttpState>, path: &str) -> (StatusCode, String) {
        let resp = router(state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let state = Arc::new(HttpState {
            metrics: Arc::new(Metrics::new()),
            leading: false.into(),
            standby: false.into(),
            health: Arc::new(Health::new("https://api.test")),
        });
        assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(&state, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.standby.store(true, Ordering::Relaxed);
        assert_eq!(
            get(&state, "/readyz").await,
            (StatusCode::OK, "standby\n".into())
        );
        // Leading, but the watches have not listed yet.
        state.leading.store(true, Ordering::Relaxed);
        state.health.expect("Agent");
        let (code, text) = get(&state, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            text.contains("waiting for the first list of Agent"),
            "{text}"
        );
        state
            .health
            .observe::<()>("Agent", &Ok(kube::runtime::watcher::Event::InitDone));
        assert_eq!(
            get(&state, "/readyz").await,
            (StatusCode::OK, "ready\n".into())
        );
        state
            .metrics
            .observe("Agent", std::time::Instant::now(), None);
        let (code, text) = get(&state, "/metrics").await;
        assert_eq!(code, StatusCode::OK);
        assert!(
            text.contains(r#"clawops_operator_reconciles_total{kind="Agent"} 1"#),
            "{text}"
        );
    }
}
