//! Readiness from the watches: ready once every watch has listed its kind at least once, not
//! ready again while one keeps failing; and API errors described by their cause (DNS, refused,
//! TLS, 401/403 with what was refused) with the API server's URL, for the logs.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::runtime::watcher;

use crate::util::net_cause::{self, Cause};

/// A watch failing for longer than this makes the operator not ready.
pub const BROKEN_AFTER: Duration = Duration::from_secs(60);
/// Errors further apart than this belong to separate outages: the watch recovered in between
/// (a resumed watch says nothing when it succeeds, and kube's backoff retries at least every
/// 30 s while it fails).
pub const ERROR_GAP: Duration = Duration::from_secs(45);

#[derive(Default)]
struct WatchState {
    synced: bool,
    failing_since: Option<Instant>,
    last_error: Option<Instant>,
    cause: Option<String>,
}

impl WatchState {
    /// Since when this watch has been failing without a break, if it is.
    fn failing(&self, now: Instant) -> Option<Instant> {
        let last = self.last_error?;
        (now.saturating_duration_since(last) < ERROR_GAP)
            .then_some(self.failing_since)
            .flatten()
    }
}

/// The state of every watch the operator runs, keyed by kind.
pub struct Health {
    api_url: String,
    watches: Mutex<BTreeMap<&'static str, WatchState>>,
}

impl Health {
    pub fn new(api_url: impl Into<String>) -> Self {
        Self {
            api_url: api_url.into(),
            watches: Mutex::default(),
        }
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Registers a watch that must sync before the operator is ready.
    pub fn expect(&self, kind: &'static str) {
        self.watches
            .lock()
            .expect("health lock")
            .entry(kind)
            .or_default();
    }

    /// Records one item of a watch stream, logging errors with their cause.
    pub fn observe<K>(&self, kind: &'static str, item: &Result<watcher::Event<K>, watcher::Error>) {
        self.record(
            kind,
            item.as_ref().map(|e| matches!(e, watcher::Event::InitDone)),
            Instant::now(),
        );
    }

    /// `Ok(true)` for a completed list, `Ok(false)` for any other event, or the error.
    fn record(&self, kind: &'static str, item: Result<bool, &watcher::Error>, now: Instant) {
        let mut watches = self.watches.lock().expect("health lock");
        let w = watches.entry(kind).or_default();
        match item {
            Ok(listed) => {
                w.synced |= listed;
                w.failing_since = None;
                w.last_error = None;
                w.cause = None;
            }
            Err(e) => {
                let cause = describe(e);
                tracing::warn!(api = %self.api_url, kind, %cause, "watch failed; retrying");
                if w.failing(now).is_none() {
                    w.failing_since = Some(now);
                }
                w.last_error = Some(now);
                w.cause = Some(cause);
            }
        }
    }

    /// Ready, or why not.
    pub fn readiness(&self, now: Instant) -> Result<(), String> {
        let watches = self.watches.lock().expect("health lock");
        if watches.is_empty() {
            return Err("controllers not started".into());
        }
        let why = |kind: &str, w: &WatchState| match &w.cause {
            Some(c) => format!("{kind} from {}: {c}", self.api_url),
            None => kind.to_string(),
        };
        let unsynced: Vec<String> = watches
            .iter()
            .filter(|(_, w)| !w.synced)
            .map(|(k, w)| why(k, w))
            .collect();
        if !unsynced.is_empty() {
            return Err(format!(
                "waiting for the first list of {}",
                unsynced.join(", ")
            ));
        }
        let broken: Vec<String> = watches
            .iter()
            .filter(|(_, w)| {
                w.failing(now)
                    .is_some_and(|since| now.saturating_duration_since(since) >= BROKEN_AFTER)
            })
            .map(|(k, w)| why(k, w))
            .collect();
        if !broken.is_empty() {
            return Err(format!(
                "watches failing for over {} s: {}",
                BROKEN_AFTER.as_secs(),
                broken.join(", ")
            ));
        }
        Ok(())
    }
}

/// What went wrong talking to the API server, in words a user can act on, followed by the
/// innermost error's own message.
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let chain = net_cause::chain(err);
    let innermost = chain.last().map(ToString::to_string).unwrap_or_default();
    let status = chain.iter().find_map(|e| {
        e.downcast_ref::<kube::Error>()
            .and_then(|k| match k {
                kube::Error::Api(s) => Some(s.as_ref()),
                _ => None,
            })
            .or_else(|| e.downcast_ref::<kube::core::Status>())
    });
    if let Some(s) = status {
        return match s.code {
            401 => format!(
                "401 Unauthorized: the API server refused the operator's credentials (expired or wrong token or client certificate): {}",
                s.message
            ),
            403 => format!(
                "403 Forbidden: {}; the operator's ClusterRole lacks this verb on this resource (reinstall the chart or manifests/install.yaml of this version)",
                s.message
            ),
            code => format!("API error {code} {}: {}", s.reason, s.message),
        };
    }
    let what = match net_cause::classify(err) {
        Cause::Refused => "connection refused: nothing listens at the API server address",
        Cause::Dns => "DNS lookup of the API server's host name failed",
        Cause::Tls => {
            "TLS handshake with the API server failed (check its CA in the kubeconfig or service account)"
        }
        Cause::Timeout => {
            "timed out: no answer from the API server (no route, or a firewall drops the packets)"
        }
        Cause::Broken => "the network path to the API server is broken",
        Cause::Other => {
            return chain
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
        }
    };
    format!("{what} ({innermost})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error",
        ))))
    }

    #[test]
    fn ready_after_every_watch_listed_and_not_while_one_keeps_failing() {
        let h = Health::new("https://10.0.0.1:443");
        let t0 = Instant::now();
        assert!(h.readiness(t0).is_err(), "no watch registered yet");
        h.expect("Agent");
        h.expect("Channel");
        h.record("Agent", Err(&refused()), t0);
        let why = h.readiness(t0).unwrap_err();
        assert!(
            why.contains("Agent from https://10.0.0.1:443: connection refused"),
            "{why}"
        );
        assert!(why.contains("Channel"), "{why}");
        h.record("Agent", Ok(true), t0);
        h.record("Channel", Ok(false), t0);
        assert!(
            h.readiness(t0).unwrap_err().contains("Channel"),
            "an event is not a list"
        );
        h.record("Channel", Ok(true), t0);
        assert_eq!(h.readiness(t0), Ok(()));

        // Errors every 30 s (the backoff's cap) for a minute: not ready.
        for s in [0, 30, 60] {
            h.record("Channel", Err(&refused()), t0 + Duration::from_secs(s));
        }
        assert_eq!(
            h.readiness(t0 + Duration::from_secs(59)),
            Ok(()),
            "a short outage"
        );
        let why = h.readiness(t0 + Duration::from_secs(61)).unwrap_err();
        assert!(why.contains("Channel from https://10.0.0.1:443"), "{why}");
        // Quiet since: the resumed watch works.
        assert_eq!(h.readiness(t0 + Duration::from_secs(106)), Ok(()));
        // And a success ends the outage at once.
        h.record("Channel", Err(&refused()), t0 + Duration::from_secs(90));
        h.record("Channel", Ok(false), t0 + Duration::from_secs(91));
        assert_eq!(h.readiness(t0 + Duration::from_secs(92)), Ok(()));
    }

    #[test]
    fn causes_are_named() {
        assert!(
            describe(&refused()).starts_with("connection refused"),
            "{}",
            describe(&refused())
        );
        let dns = kube::Error::Service(Box::new(std::io::Error::other(
            "dns error: failed to lookup address information: Name or service not known",
        )));
        assert!(
            describe(&dns).starts_with("DNS lookup"),
            "{}",
            describe(&dns)
        );
        let tls = kube::Error::Service(Box::new(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        )));
        assert!(
            describe(&tls).starts_with("TLS handshake"),
            "{}",
            describe(&tls)
        );
        let forbidden = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(
            kube::core::Status::failure(
                r#"agents.clawops.dev is forbidden: User "system:serviceaccount:clawops:clawops" cannot list resource "agents" in API group "clawops.dev" at the cluster scope"#,
                "Forbidden",
            )
            .with_code(403),
        )));
        let d = describe(&forbidden);
        assert!(d.starts_with("403 Forbidden"), "{d}");
        assert!(d.contains(r#"cannot list resource "agents""#), "{d}");
        assert!(d.contains("ClusterRole"), "{d}");
    }
}
