//! Why a connection failed, read off an error's source chain (reqwest or kube → hyper → io):
//! one reading shared by the operator's API errors and the CLI's gateway errors.

use std::error::Error as StdError;
use std::io::ErrorKind;

/// What kind of network failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Refused,
    Timeout,
    Dns,
    Tls,
    /// Unreachable network or host, or a reset or aborted connection.
    Broken,
    Other,
}

/// The errors of `err`'s chain, outermost first.
pub fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e| (*e).source()).collect()
}

/// Classifies `err` by its io error kinds first, then by the words of its messages: hyper says
/// "dns error" around a resolver error that has no kind of its own, and TLS errors come from
/// rustls, which is not ours to downcast to.
pub fn classify(err: &(dyn StdError + 'static)) -> Cause {
    let chain = chain(err);
    let io = chain
        .iter()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    let timed_out = chain.iter().any(|e| {
        e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
    });
    let text = chain
        .iter()
        .map(|e| e.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(": ");
    let says = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    match io {
        Some(ErrorKind::ConnectionRefused) => Cause::Refused,
        Some(ErrorKind::TimedOut) => Cause::Timeout,
        _ if timed_out => Cause::Timeout,
        _ if says(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
        ]) =>
        {
            Cause::Dns
        }
        _ if says(&["certificate", "tls", "handshake"]) => Cause::Tls,
        _ if says(&["timed out"]) => Cause::Timeout,
        Some(
            ErrorKind::NetworkUnreachable
            | ErrorKind::HostUnreachable
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted,
        ) => Cause::Broken,
        _ => Cause::Other,
    }
}
