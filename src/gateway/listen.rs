//! Where the gateway listens when `--listen` is not given: loopback when standalone (a VPS
//! would otherwise publish the gateway and its unauthenticated `/health`; people put Caddy or
//! `tailscale serve` in front), all interfaces in a pod (the Service must reach it).

use std::net::{Ipv4Addr, SocketAddr};

/// Set by the kubelet in every container (independent of `enableServiceLinks`).
pub const POD_ENV: &str = "KUBERNETES_SERVICE_HOST";

/// Why the gateway believes it runs in a pod, if it does.
pub fn in_pod(config_in_cluster: bool, service_host_set: bool) -> Option<&'static str> {
    if service_host_set {
        Some("KUBERNETES_SERVICE_HOST is set")
    } else if config_in_cluster {
        Some("gateway.json was rendered for a cluster")
    } else {
        None
    }
}

/// The address to listen on, and a line for the start-up log saying why.
#[derive(Debug, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    pub why: String,
}

/// `explicit` (`--listen`) wins; otherwise all interfaces in a pod, loopback standalone.
pub fn choose(explicit: Option<SocketAddr>, port: u16, pod: Option<&str>) -> Listen {
    match (explicit, pod) {
        (Some(addr), _) => Listen {
            addr,
            why: format!("listening on {addr} as --listen (CLAWOPS_GATEWAY_LISTEN) asks"),
        },
        (None, Some(reason)) => Listen {
            addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            why: format!("listening on all interfaces: running in a pod ({reason})"),
        },
        (None, None) => Listen {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            why: format!(
                "listening on 127.0.0.1 only (the standalone default); to reach the gateway from other machines put Caddy or `tailscale serve` in front, or listen wider with --listen 0.0.0.0:{port}"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_listens_on_loopback_and_says_how_to_widen() {
        let l = choose(None, 18789, in_pod(false, false));
        assert_eq!(l.addr, "127.0.0.1:18789".parse().unwrap());
        assert!(l.why.contains("--listen 0.0.0.0:18789"), "{}", l.why);
    }

    #[test]
    fn a_pod_listens_on_all_interfaces() {
        for (config, env) in [(true, false), (false, true), (true, true)] {
            let pod = in_pod(config, env);
            assert!(pod.is_some(), "{config} {env}");
            assert_eq!(
                choose(None, 18790, pod).addr,
                "0.0.0.0:18790".parse().unwrap()
            );
        }
        assert!(
            choose(None, 18789, in_pod(false, true))
                .why
                .contains("KUBERNETES_SERVICE_HOST")
        );
    }

    #[test]
    fn listen_overrides_both_defaults() {
        let asked: SocketAddr = "192.0.2.7:9000".parse().unwrap();
        for pod in [None, Some("KUBERNETES_SERVICE_HOST is set")] {
            assert_eq!(choose(Some(asked), 18789, pod).addr, asked);
        }
    }
}
