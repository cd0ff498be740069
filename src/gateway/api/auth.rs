//! Gateway token auth for `/api/…`: where the token comes from (its environment variable, or
//! standalone a file generated once in the state directory), `Authorization: Bearer` or the
//! Control UI's cookie (a `?token=` only signs in at `/`; on the API it is refused), a
//! constant-time compare, 401s that say what was wrong and where the gateway
//! reads its token, and a per-address limit on failed attempts.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::gateway::env_secret;
use crate::plan::gateway_config::GatewayConfig;
use crate::secrets;
use crate::util::limiter::WindowLimiter;
use crate::util::state_dir::StateDir;

/// Failed attempts allowed per address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
pub const COOKIE: &str = "clawops_token";

/// Why a request was refused. Never carries the presented or the real token.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    Missing {
        source: String,
    },
    Wrong {
        source: String,
    },
    NotConfigured {
        source: String,
    },
    Limited {
        retry_after: Duration,
    },
    /// A token in the URL of an API call: URLs end up in proxy logs and browser history.
    InUrl,
}

impl Denied {
    pub fn message(&self) -> String {
        match self {
            Denied::Missing { source } => format!(
                "gateway token missing: send `Authorization: Bearer <token>`; this gateway reads its token from {source}"
            ),
            Denied::InUrl => "a token in the URL is refused on the API (URLs end up in proxy logs and browser history): send `Authorization: Bearer <token>`, or sign in once in a browser at `/?token=<token>`".into(),
            Denied::Wrong { source } => {
                format!(
                    "gateway token mismatch: the token sent is not the one this gateway reads from {source}"
                )
            }
            Denied::NotConfigured { source } => {
                format!("gateway token not configured on this gateway: set {source}")
            }
            Denied::Limited { retry_after } => {
                format!(
                    "too many failed attempts from this address; retry in {} s",
                    retry_after.as_secs().max(1)
                )
            }
        }
    }
}

pub struct TokenAuth {
    token: Option<SecretString>,
    /// Where the token comes from, e.g. "environment variable CLAWOPS_GATEWAY_TOKEN".
    source: String,
    failures: WindowLimiter,
}

impl TokenAuth {
    pub fn new(token: Option<SecretString>, source: impl Into<String>) -> Self {
        Self {
            token,
            source: source.into(),
            failures: WindowLimiter::new(MAX_FAILURES, FAILURE_WINDOW),
        }
    }

    pub fn configured(&self) -> bool {
        self.token.is_some()
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Refuses a token sent in an API call's URL without checking it (a check would answer
    /// whether it was right), counting it as a failure of `ip`.
    pub fn refuse_in_url(&self, ip: IpAddr, now: Instant) -> Denied {
        if let Err(retry_after) = self.failures.check(ip, now) {
            return Denied::Limited { retry_after };
        }
        self.failures.record(ip, now);
        Denied::InUrl
    }

    /// Checks a presented token for a client at `ip`.
    pub fn check(&self, ip: IpAddr, presented: Option<&str>, now: Instant) -> Result<(), Denied> {
        self.failures
            .check(ip, now)
            .map_err(|retry_after| Denied::Limited { retry_after })?;
        let source = self.source.clone();
        let result = match (&self.token, presented) {
            (None, _) => Err(Denied::NotConfigured { source }),
            (Some(_), None) => Err(Denied::Missing { source }),
            (Some(t), Some(p)) if bool::from(t.expose_secret().as_bytes().ct_eq(p.as_bytes())) => {
                Ok(())
            }
            (Some(_), Some(_)) => Err(Denied::Wrong { source }),
        };
        if matches!(result, Err(Denied::Missing { .. } | Denied::Wrong { .. })) {
            self.failures.record(ip, now);
        }
        result
    }
}

/// Whether `ip` is one of `trusted`: exact addresses or CIDR ranges (`10.42.0.0/16`).
pub fn is_trusted(ip: IpAddr, trusted: &[String]) -> bool {
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    let ip = ip.to_canonical();
    trusted.iter().any(|t| match t.split_once('/') {
        None => t.parse::<IpAddr>().is_ok_and(|a| a == ip),
        Some((net, len)) => match (net.parse::<IpAddr>(), len.parse::<u32>()) {
            (Ok(IpAddr::V4(n)), Ok(l)) if l <= 32 => match ip {
                IpAddr::V4(a) => l == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - l) == 0,
                IpAddr::V6(_) => false,
            },
            (Ok(IpAddr::V6(n)), Ok(l)) if l <= 128 => match ip {
                IpAddr::V6(a) => l == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - l) == 0,
                IpAddr::V4(_) => false,
            },
            _ => false,
        },
    })
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
/// untrusted address in `X-Forwarded-For`. Untrusted peers cannot choose their address.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[String]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    forwarded_for
        .and_then(|f| {
            f.split(',')
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .rev()
                .find(|ip| !is_trusted(*ip, trusted))
        })
        .unwrap_or(peer)
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Header,
    /// The cookie a browser sends by itself: a state-changing request must also carry
    /// [`CSRF_HEADER`], which another site's page cannot set.
    Cookie,
}

/// The header the Control UI sends with every request; a cross-site form or image cannot.
pub const CSRF_HEADER: &str = "x-clawops-csrf";

/// The token a request presents: bearer header, then the cookie. (A `?token=` is for the sign-in
/// link at `/` only; see [`in_query`].)
pub fn presented<'a>(
    authorization: Option<&'a str>,
    cookie: Option<&'a str>,
) -> Option<(&'a str, Via)> {
    if let Some(t) = authorization
        .and_then(|h| {
            h.get(..7)
                .filter(|s| s.eq_ignore_ascii_case("bearer "))
                .map(|_| &h[7..])
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some((t, Via::Header));
    }
    cookie
        .and_then(|c| {
            c.split(';').find_map(|kv| {
                kv.trim()
                    .strip_prefix(&format!("{COOKIE}="))
                    .map(|_| kv.trim())
            })
        })
        .and_then(|kv| kv.split_once('=').map(|(_, v)| v))
        .filter(|t| !t.is_empty())
        .map(|t| (t, Via::Cookie))
}

/// The `token=` of a query string, if it has a non-empty one.
pub fn in_query(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// Whether the browser reached the gateway over TLS: a trusted proxy (Ingress, Tailscale serve)
/// says so in `X-Forwarded-Proto`.
pub fn secure(headers: &axum::http::HeaderMap, peer: IpAddr, trusted: &[String]) -> bool {
    is_trusted(peer, trusted)
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The session cookie holding `token`: HttpOnly, SameSite=Strict, Secure behind TLS.
pub fn session_cookie(token: &str, secure: bool) -> Option<axum::http::HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .ok()
}

/// The generated gateway token's file in the state directory (standalone).
pub const TOKEN_FILE: &str = "gateway-token";

/// The gateway token: from its environment variable; standalone, generated once into the
/// state directory when the variable is unset.
pub fn gateway_token(
    config: &GatewayConfig,
    state: &StateDir,
    standalone: bool,
) -> anyhow::Result<TokenAuth> {
    let env = &config.gateway.auth.token_env;
    match env_secret(env) {
        Ok(token) => Ok(TokenAuth::new(
            Some(token),
            format!("environment variable {env}"),
        )),
        Err(why) if standalone => {
            let path = state.path().join(TOKEN_FILE);
            let token = state.secret_file(TOKEN_FILE, || {
                secrets::generate_token().expose_secret().to_string()
            })?;
            tracing::info!(%why, file = %path.display(), "using the gateway token in the state directory");
            Ok(TokenAuth::new(
                Some(SecretString::from(token)),
                format!("file {} (or environment variable {env})", path.display()),
            ))
        }
        Err(why) => {
            tracing::warn!(%why, "API disabled until the gateway token is set");
            Ok(TokenAuth::new(None, format!("environment variable {env}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn auth() -> TokenAuth {
        TokenAuth::new(
            Some(SecretString::from("s3cret-token-value")),
            "environment variable CLAWOPS_GATEWAY_TOKEN",
        )
    }

    #[test]
    fn missing_wrong_and_right_tokens() {
        let a = auth();
        let now = Instant::now();
        assert_eq!(a.check(ip(1), Some("s3cret-token-value"), now), Ok(()));
        let missing = a.check(ip(1), None, now).unwrap_err();
        assert!(
            missing.message().contains("missing")
                && missing.message().contains("CLAWOPS_GATEWAY_TOKEN")
        );
        let wrong = a.check(ip(1), Some("guess"), now).unwrap_err();
        assert!(wrong.message().contains("mismatch") && !wrong.message().contains("s3cret"));
        let none = TokenAuth::new(None, "environment variable CLAWOPS_GATEWAY_TOKEN");
        assert!(matches!(
            none.check(ip(1), Some("x"), now),
            Err(Denied::NotConfigured { .. })
        ));
    }

    #[test]
    fn failed_attempts_are_limited_per_address_and_forgotten_after_the_window() {
        let a = auth();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                a.check(ip(2), Some("guess"), now),
                Err(Denied::Wrong { .. })
            ));
        }
        assert!(
            matches!(
                a.check(ip(2), Some("s3cret-token-value"), now),
                Err(Denied::Limited { .. })
            ),
            "even the right token waits"
        );
        assert_eq!(
            a.check(ip(3), Some("s3cret-token-value"), now),
            Ok(()),
            "other addresses are unaffected"
        );
        assert_eq!(
            a.check(ip(2), Some("s3cret-token-value"), now + FAILURE_WINDOW),
            Ok(())
        );
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = vec!["10.42.0.0/16".to_string(), "127.0.0.1".to_string()];
        let traefik = IpAddr::from([10, 42, 1, 7]);
        assert_eq!(
            client_ip(traefik, Some("203.0.113.9, 10.42.3.3"), &trusted),
            IpAddr::from([203, 0, 113, 9])
        );
        let stranger = IpAddr::from([198, 51, 100, 1]);
        assert_eq!(
            client_ip(stranger, Some("203.0.113.9"), &trusted),
            stranger,
            "an untrusted peer cannot pick its address"
        );
        assert_eq!(client_ip(traefik, None, &trusted), traefik);
        assert!(is_trusted(IpAddr::from([127, 0, 0, 1]), &trusted));
        assert!(!is_trusted(IpAddr::from([10, 43, 0, 1]), &trusted));
        assert!(is_trusted(
            "fd00::5".parse().unwrap(),
            &["fd00::/8".to_string()]
        ));
    }

    #[test]
    fn tokens_are_found_in_header_and_cookie_and_the_query_apart() {
        assert_eq!(
            presented(Some("Bearer abc"), None),
            Some(("abc", Via::Header))
        );
        assert_eq!(
            presented(None, Some("a=b; clawops_token=abc")),
            Some(("abc", Via::Cookie))
        );
        assert_eq!(
            presented(Some("bearer abc"), None),
            Some(("abc", Via::Header))
        );
        assert_eq!(presented(Some("Basic abc"), None), None);
        assert_eq!(in_query(Some("x=1&token=abc")), Some("abc"));
        assert_eq!(in_query(Some("token=")), None);
        assert_eq!(in_query(Some("mytoken=abc")), None);
        assert_eq!(in_query(None), None);
    }
}
