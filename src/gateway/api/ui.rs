//! The Control UI on the gateway's port: `/` is the app (or, with an upgrade, the node socket),
//! its assets are embedded in the binary (no CDN: clusters are often air-gapped) and served
//! under a strict Content-Security-Policy with no inline script, and signing in exchanges the
//! gateway token for an HttpOnly, SameSite=Strict cookie — from `/?token=…` once (then the
//! address bar is cleaned) or from the sign-in form. The pages talk to `/api` with that cookie
//! and the CSRF header.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::auth::{self, Denied};
use super::error;
use crate::gateway::Gateway;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// No inline script or style, nothing from elsewhere, not framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/ui/session", post(sign_in).delete(sign_out))
}

/// The headers every page and asset carries.
fn hardened(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    hardened(
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
    )
}

fn client_ip(gw: &Gateway, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    auth::client_ip(peer, forwarded, &gw.config.gateway.trusted_proxies)
}

/// `GET /`: the node socket when it asks to upgrade, else the app. `?token=` is checked (with
/// the API's failure limit), exchanged for the cookie, and the address bar cleaned by a
/// redirect; a wrong one sends the browser to the sign-in page that says so.
pub async fn root(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let (mut parts, _) = req.into_parts();
    if upgrade {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &gw).await {
            Ok(ws) => super::nodes::upgrade(State(gw), ConnectInfo(peer), parts.headers, ws).await,
            Err(rejection) => rejection.into_response(),
        };
    }
    let token = auth::in_query(parts.uri.query());
    let Some(token) = token else {
        return hardened(
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                INDEX,
            )
                .into_response(),
        );
    };
    let ip = client_ip(&gw, peer.ip(), &parts.headers);
    let secure = auth::secure(
        &parts.headers,
        peer.ip(),
        &gw.config.gateway.trusted_proxies,
    );
    match gw.auth.check(ip, Some(token), Instant::now()) {
        Ok(()) => {
            let mut resp = redirect("./");
            if let Some(c) = auth::session_cookie(token, secure) {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp
        }
        Err(denied) => {
            gw.metrics.auth_failures.inc();
            let why = match denied {
                Denied::Limited { .. } => "limited",
                Denied::NotConfigured { .. } => "unset",
                _ => "wrong",
            };
            redirect(&format!("./#signin={why}"))
        }
    }
}

fn redirect(to: &str) -> Response {
    hardened(
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, to.to_string()),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response(),
    )
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

/// `POST /ui/session {"token"}` from the sign-in form: the cookie, or why not (wrong, not set,
/// and where this gateway reads its token from). Only with the UI's CSRF header.
async fn sign_in(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(req): Json<SignIn>,
) -> Response {
    if !headers.contains_key(auth::CSRF_HEADER) {
        return error(
            StatusCode::FORBIDDEN,
            "csrf",
            format!(
                "refused: sign in from the Control UI (the {} header is missing)",
                auth::CSRF_HEADER
            ),
        );
    }
    let ip = client_ip(&gw, peer.ip(), &headers);
    match gw.auth.check(ip, Some(req.token.trim()), Instant::now()) {
        Ok(()) => {
            let secure = auth::secure(&headers, peer.ip(), &gw.config.gateway.trusted_proxies);
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if let Some(c) = auth::session_cookie(req.token.trim(), secure) {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp
        }
        Err(denied) => {
            gw.metrics.auth_failures.inc();
            let code = match denied {
                Denied::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            error(code, "unauthorized", denied.message())
        }
    }
}

/// `DELETE /ui/session`: signs out (the cookie is dropped).
async fn sign_out(headers: HeaderMap) -> Response {
    if !headers.contains_key(auth::CSRF_HEADER) {
        return error(
            StatusCode::FORBIDDEN,
            "csrf",
            format!(
                "refused: sign out from the Control UI (the {} header is missing)",
                auth::CSRF_HEADER
            ),
        );
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
            auth::COOKIE
        ))
        .expect("a valid header"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_load_nothing_inline_and_nothing_from_elsewhere() {
        assert!(
            !INDEX.contains("<script>") && !INDEX.contains("style="),
            "no inline code"
        );
        assert!(INDEX.contains(r#"<script src="ui/app.js" defer></script>"#));
        for text in [INDEX, APP_JS, APP_CSS] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no CDN"
            );
        }
        assert!(CSP.contains("script-src 'self'") && !CSP.contains("unsafe"));
    }
}
