//! How an Agent's gateway is reached from outside the cluster, decided once from
//! `spec.gateway.expose`: every builder, the status and the plan match on [`Exposure`].

use super::agent::{Expose, GatewaySpec, IngressExpose, TailscaleExpose, TailscaleMode};

/// The exposure an Agent asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Exposure {
    /// Reached only inside the cluster (a port-forward, or a proxy of the user's own).
    None,
    /// An Ingress of the given class, with TLS when asked.
    Ingress(IngressExpose),
    /// The Tailscale container runs beside the gateway in its pod and serves HTTPS on the tailnet.
    TailscaleSidecar(TailscaleExpose),
    /// An installed Tailscale Kubernetes operator exposes the gateway (an Ingress of class
    /// `tailscale`).
    TailscaleOperator(TailscaleExpose),
}

impl Exposure {
    /// Decides the exposure of `expose`. The CRD schema admits exactly one of `ingress` and
    /// `tailscale`; files read without the API server that set both are refused by the plan's
    /// validation (see [`GatewaySpec::sets_both_exposures`]), and here the Ingress wins.
    pub fn of(expose: Option<&Expose>) -> Self {
        let Some(expose) = expose else {
            return Exposure::None;
        };
        match (&expose.ingress, &expose.tailscale) {
            (Some(ing), _) => Exposure::Ingress(ing.clone()),
            (None, Some(ts)) if ts.mode == TailscaleMode::Sidecar => {
                Exposure::TailscaleSidecar(ts.clone())
            }
            (None, Some(ts)) => Exposure::TailscaleOperator(ts.clone()),
            (None, None) => Exposure::None,
        }
    }

    /// The Tailscale settings when the sidecar runs in the gateway pod.
    pub fn sidecar(&self) -> Option<&TailscaleExpose> {
        match self {
            Exposure::TailscaleSidecar(ts) => Some(ts),
            _ => None,
        }
    }

    /// The Tailscale settings in either mode.
    pub fn tailscale(&self) -> Option<&TailscaleExpose> {
        match self {
            Exposure::TailscaleSidecar(ts) | Exposure::TailscaleOperator(ts) => Some(ts),
            _ => None,
        }
    }

    /// The URL users reach the gateway at, when it follows from the spec alone (the Ingress
    /// host); a tailnet name is known only once Tailscale reports it.
    pub fn configured_url(&self) -> Option<String> {
        match self {
            Exposure::Ingress(ing) => {
                let scheme = if ing.tls.is_some() { "https" } else { "http" };
                Some(format!("{scheme}://{}", ing.host))
            }
            _ => None,
        }
    }
}

impl GatewaySpec {
    /// The exposure this gateway asks for.
    pub fn exposure(&self) -> Exposure {
        Exposure::of(self.expose.as_ref())
    }

    /// Whether `expose` sets both `ingress` and `tailscale`, which the CRD schema refuses.
    pub fn sets_both_exposures(&self) -> bool {
        self.expose
            .as_ref()
            .is_some_and(|e| e.ingress.is_some() && e.tailscale.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tailscale(mode: TailscaleMode) -> TailscaleExpose {
        TailscaleExpose {
            hostname: "shrimp".into(),
            mode,
            auth_key_secret_ref: None,
            funnel: false,
            image: "tailscale".into(),
        }
    }

    fn ingress(tls: bool) -> IngressExpose {
        serde_json::from_value(serde_json::json!({
            "host": "shrimp.example.com",
            "tls": if tls { serde_json::json!({"secretName": "tls"}) } else { serde_json::Value::Null },
        }))
        .unwrap()
    }

    #[test]
    fn each_expose_block_decides_one_exposure() {
        assert_eq!(Exposure::of(None), Exposure::None);
        let none = Expose {
            ingress: None,
            tailscale: None,
        };
        assert_eq!(Exposure::of(Some(&none)), Exposure::None);
        let sidecar = Expose {
            ingress: None,
            tailscale: Some(tailscale(TailscaleMode::Sidecar)),
        };
        let e = Exposure::of(Some(&sidecar));
        assert!(e.sidecar().is_some() && e.tailscale().is_some());
        let operator = Expose {
            ingress: None,
            tailscale: Some(tailscale(TailscaleMode::Operator)),
        };
        let e = Exposure::of(Some(&operator));
        assert!(matches!(e, Exposure::TailscaleOperator(_)));
        assert!(e.sidecar().is_none() && e.tailscale().is_some());
        assert_eq!(e.configured_url(), None);
        let both = Expose {
            ingress: Some(ingress(true)),
            tailscale: Some(tailscale(TailscaleMode::Sidecar)),
        };
        let spec = |expose: &Expose| GatewaySpec {
            expose: Some(expose.clone()),
            ..Default::default()
        };
        assert!(spec(&both).sets_both_exposures() && !spec(&sidecar).sets_both_exposures());
        assert!(matches!(Exposure::of(Some(&both)), Exposure::Ingress(_)));
    }

    #[test]
    fn the_configured_url_follows_the_ingress_host_and_tls() {
        let https = Exposure::Ingress(ingress(true));
        assert_eq!(
            https.configured_url().as_deref(),
            Some("https://shrimp.example.com")
        );
        let http = Exposure::Ingress(ingress(false));
        assert_eq!(
            http.configured_url().as_deref(),
            Some("http://shrimp.example.com")
        );
    }
}
