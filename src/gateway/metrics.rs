//! Prometheus metrics of the gateway.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

pub struct GatewayMetrics {
    registry: Registry,
    pub auth_failures: Counter,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("clawops_gateway");
        let auth_failures = Counter::default();
        registry.register(
            "api_auth_failures",
            "API requests refused for a missing or wrong token",
            auth_failures.clone(),
        );
        Self {
            registry,
            auth_failures,
        }
    }
}

impl GatewayMetrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
