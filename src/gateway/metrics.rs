//! Prometheus metrics of the gateway.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub struct GatewayMetrics {
    registry: Registry,
    pub auth_failures: Counter,
    pub llm_latency: Histogram,
    pub llm_retries: Counter,
    pub llm_rate_limited: Counter,
    pub llm_failures: Counter,
    pub messages_in: Counter,
    pub messages_out: Counter,
    pub pairing_requests: Counter,
    /// Commands run (or not) on nodes, by decision (`ran`, `allow-once`, `denied`, …).
    pub node_execs: Family<Vec<(String, String)>, Counter>,
    /// The assistant's tool calls, by tool and outcome (`ok`, `refused`, `timed-out`, …).
    pub tool_calls: Family<Vec<(String, String)>, Counter>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("clawops_gateway");
        let auth_failures = Counter::default();
        let llm_latency = Histogram::new(exponential_buckets(0.05, 2.0, 12));
        let (llm_retries, llm_rate_limited, llm_failures) =
            (Counter::default(), Counter::default(), Counter::default());
        registry.register(
            "api_auth_failures",
            "API requests refused for a missing or wrong token",
            auth_failures.clone(),
        );
        registry.register(
            "llm_request_duration_seconds",
            "Time of each model HTTP call",
            llm_latency.clone(),
        );
        registry.register(
            "llm_retries",
            "Model calls retried (429 with 1302/1305, 5xx, timeouts)",
            llm_retries.clone(),
        );
        registry.register(
            "llm_rate_limited",
            "Model answers with HTTP 429 for concurrency or overload",
            llm_rate_limited.clone(),
        );
        registry.register(
            "llm_failures",
            "Turns whose every model and retry failed",
            llm_failures.clone(),
        );
        let (messages_in, messages_out, pairing_requests) =
            (Counter::default(), Counter::default(), Counter::default());
        registry.register("messages_in", "Chat messages received", messages_in.clone());
        registry.register(
            "messages_out",
            "Chat messages sent (each chunk of a long reply counts)",
            messages_out.clone(),
        );
        registry.register(
            "pairing_requests",
            "Pairing codes handed to unknown senders",
            pairing_requests.clone(),
        );
        let node_execs = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "node_execs",
            "Commands asked of nodes, by decision: ran, allow-once, allow-always, denied, timed-out, refused",
            node_execs.clone(),
        );
        let tool_calls = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "tool_calls",
            "The assistant's tool calls, by tool and outcome: ok, unknown, bad-arguments, refused, failed, timed-out",
            tool_calls.clone(),
        );
        Self {
            registry,
            node_execs,
            tool_calls,
            auth_failures,
            llm_latency,
            llm_retries,
            llm_rate_limited,
            llm_failures,
            messages_in,
            messages_out,
            pairing_requests,
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
