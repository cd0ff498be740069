//! Prometheus metrics of the operator: reconciles, errors and durations per kind.

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// Reconciles finished, all kinds together.
    done: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clawops_operator");
        let reconciles = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register("reconciles", "Reconciles run, per kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, per kind and kind of error",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconcile took, per kind",
            duration.clone(),
        );
        // Every kind's series exists from the start, at zero, so rates and alerts work at once.
        for kind in ["Agent", "Channel", "Cron", "NodePairing"] {
            let labels = vec![("kind".to_string(), kind.to_string())];
            drop(reconciles.get_or_create(&labels));
        }
        Self {
            registry,
            reconciles,
            errors,
            duration,
            done: 0.into(),
        }
    }

    /// Records one reconcile of `kind` that started at `start`, and what kind of error ended
    /// it, if one did.
    pub fn observe(&self, kind: &str, start: Instant, error: Option<&str>) {
        let labels = vec![("kind".to_string(), kind.to_string())];
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.reconciles.get_or_create(&labels).inc();
        if let Some(error) = error {
            self.errors.get_or_create(&error_labels(kind, error)).inc();
        }
        self.duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
    }

    /// Makes the error series of `kind` exist at zero, one per kind of error it can end with,
    /// so rates and alerts work from the start.
    pub fn declare_errors(&self, kind: &str, errors: &[&str]) {
        for error in errors {
            drop(self.errors.get_or_create(&error_labels(kind, error)));
        }
    }

    /// Reconciles finished so far, of every kind.
    pub fn reconciles_done(&self) -> u64 {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

fn error_labels(kind: &str, error: &str) -> Labels {
    vec![
        ("kind".to_string(), kind.to_string()),
        ("error".to_string(), error.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reconciles_and_errors_per_kind() {
        let m = Metrics::new();
        m.declare_errors("Cron", &["read", "status"]);
        m.observe("Agent", Instant::now(), None);
        m.observe("Agent", Instant::now(), Some("apply"));
        m.observe("Cron", Instant::now(), None);
        let text = m.render();
        assert!(
            text.contains(r#"clawops_operator_reconciles_total{kind="NodePairing"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"clawops_operator_reconciles_total{kind="Agent"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"clawops_operator_reconcile_errors_total{kind="Agent",error="apply"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"clawops_operator_reconcile_errors_total{kind="Cron",error="status"} 0"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"clawops_operator_reconciles_total{kind="Cron"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"clawops_operator_reconcile_duration_seconds_count{kind="Agent"} 2"#),
            "{text}"
        );
    }
}
