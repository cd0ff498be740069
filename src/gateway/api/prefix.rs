//! `gateway.controlUi.basePath`: the gateway answers under a path prefix as it does at `/`,
//! whether the proxy in front strips the prefix (`tailscale serve --set-path`) or passes it on
//! (a Traefik Ingress routing `/clawops`). The prefix is taken off before routing, so every
//! route — the Control UI, `/api`, the node WebSocket — exists once.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// What becomes of a request's path under `base`.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Not under the prefix: routed as it is.
    Keep,
    /// Under the prefix: routed as this path and query.
    To(String),
    /// The prefix itself from a browser: to `base/`, so that the page's relative links stay
    /// under the prefix.
    Slash(String),
}

/// Decides the rewrite of `path` (with `query`) under `base`. A WebSocket upgrade at the bare
/// prefix is the node socket (`wss://host/clawops`) and is not redirected.
pub fn rewrite(base: &str, path: &str, query: Option<&str>, upgrade: bool) -> Rewrite {
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    match path.strip_prefix(base) {
        Some("") if !upgrade => Rewrite::Slash(format!("{base}/{query}")),
        Some("") => Rewrite::To(format!("/{query}")),
        Some(rest) if rest.starts_with('/') => Rewrite::To(format!("{rest}{query}")),
        _ => Rewrite::Keep,
    }
}

/// The middleware around the whole router.
pub async fn strip(State(base): State<Option<Arc<str>>>, mut req: Request, next: Next) -> Response {
    let Some(base) = base else {
        return next.run(req).await;
    };
    let upgrade = req.headers().contains_key(header::UPGRADE);
    match rewrite(&base, req.uri().path(), req.uri().query(), upgrade) {
        Rewrite::Keep => {}
        Rewrite::Slash(to) => return Redirect::permanent(&to).into_response(),
        Rewrite::To(to) => {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = to.parse().ok();
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_prefix_are_routed_without_it() {
        let r = |p, q, up| rewrite("/claw", p, q, up);
        assert_eq!(
            r("/claw/api/status", None, false),
            Rewrite::To("/api/status".into())
        );
        assert_eq!(
            r("/claw/", Some("token=x"), false),
            Rewrite::To("/?token=x".into())
        );
        assert_eq!(
            r("/claw", Some("token=x"), false),
            Rewrite::Slash("/claw/?token=x".into())
        );
        assert_eq!(
            r("/claw", None, true),
            Rewrite::To("/".into()),
            "the node socket"
        );
        // At the root (a proxy that strips the prefix) and lookalikes: as they are.
        assert_eq!(r("/api/status", None, false), Rewrite::Keep);
        assert_eq!(r("/clawops/api", None, false), Rewrite::Keep);
        assert_eq!(r("/", None, false), Rewrite::Keep);
        assert_eq!(
            rewrite("/a/b", "/a/b/ui/app.js", None, false),
            Rewrite::To("/ui/app.js".into())
        );
    }
}
