//! ConfigMaps as text: their keys and the size of each value, never a value. People put tokens
//! in ConfigMaps too, and a value read aloud in a chat cannot be taken back.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{Render, clip, created, heading, name_of, size};

/// Every key with the size of its value, text keys first, then binary ones.
fn keys(c: &ConfigMap) -> Vec<(String, usize)> {
    let text = c.data.iter().flatten().map(|(k, v)| (k.clone(), v.len()));
    let binary = c
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (format!("{k} (binary)"), v.0.len()));
    text.chain(binary).collect()
}

impl Render for ConfigMap {
    const HEADER: &'static str = "NAMESPACE/NAME  DATA  AGE  KEYS";

    fn row(&self, now: DateTime<Utc>) -> String {
        let keys = keys(self);
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        format!(
            "{}  {}  {}  {}",
            name_of(&self.metadata),
            keys.len(),
            created(now, &self.metadata),
            clip(&names.join(","), 120)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("configmap", &self.metadata, now);
        let keys = keys(self);
        let _ = write!(out, "\nkeys ({}, values not shown):", keys.len());
        for (k, len) in keys {
            let _ = write!(out, "\n  {k}: {}", size(len));
        }
        if self.immutable == Some(true) {
            out.push_str("\nimmutable: true");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_keys_and_sizes_are_shown() {
        let c: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "app", "namespace": "prod"},
            "data": {"DATABASE_URL": "postgres://admin:hunter2@db/prod", "mode": "fast"},
            "binaryData": {"logo.png": "aGVsbG8="},
        }))
        .unwrap();
        let now = "2027-02-14T08:29:07Z".parse().unwrap();
        let text = format!("{}\n{}", c.row(now), c.describe(now));
        assert!(
            !text.contains("hunter2") && !text.contains("fast"),
            "{text}"
        );
        assert!(text.contains("DATABASE_URL: 32B"), "{text}");
        assert!(text.contains("logo.png (binary): 5B"), "{text}");
        assert!(
            text.contains("prod/app  3  -  DATABASE_URL,mode,logo.png (binary)"),
            "{text}"
        );
    }
}
