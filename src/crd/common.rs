//! Types shared by several custom resources: secret references, status conditions, delivery
//! targets, time zones and durations, and the schema transform that keeps integer formats to
//! those Kubernetes knows.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use schemars::transform::{Transform, transform_subschemas};
use serde::{Deserialize, Serialize};

/// A reference to one key of a Secret in the same namespace as the resource.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the namespace of the resource that refers to it.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the Secret's `data`. The gateway reads the value from an environment
    /// variable named after the key (upper case, `-` and `.` become `_`).
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

impl SecretKeyRef {
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            key: key.into(),
        }
    }

    /// The environment variable the gateway reads this secret from, in a pod and standalone.
    pub fn env_name(&self) -> String {
        env_name_for_key(&self.key)
    }
}

impl std::fmt::Display for SecretKeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {} key {}", self.name, self.key)
    }
}

/// Maps a Secret key such as `telegram-bot-token` to `TELEGRAM_BOT_TOKEN`.
pub fn env_name_for_key(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The status block every clawops resource shares: conditions and the generation they describe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` the conditions were computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions following the Kubernetes API conventions (`Ready` among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Rewrites schemars' Rust integer formats (`uint16`, `uint32`, …) to the two the API server
/// recognises, in a schema and all its (inlined) subschemas. Unknown formats make every
/// `kubectl apply` of the CRDs warn `unrecognized format`. Put it on each CRD's spec and status
/// struct: `#[schemars(transform = k8s_int_formats)]`.
pub fn k8s_int_formats(schema: &mut schemars::Schema) {
    struct Rewrite;
    impl Transform for Rewrite {
        fn transform(&mut self, schema: &mut schemars::Schema) {
            let known = match schema.get("format").and_then(|f| f.as_str()) {
                // Kept as they are, or not integers at all.
                None | Some("int32" | "int64") => None,
                Some("int8" | "int16" | "uint8" | "uint16") => Some("int32"),
                // Unsigned 32-bit values need 64 bits; wider ones are never this large here.
                Some("uint32" | "uint64" | "uint" | "int" | "uint128" | "int128") => Some("int64"),
                Some(_) => None,
            };
            if let Some(f) = known {
                schema.insert("format".into(), f.into());
            }
            transform_subschemas(self, schema);
        }
    }
    Rewrite.transform(schema);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_key() {
        assert_eq!(env_name_for_key("telegram-bot-token"), "TELEGRAM_BOT_TOKEN");
        assert_eq!(env_name_for_key("zai.api_key"), "ZAI_API_KEY");
        assert_eq!(env_name_for_key("1key"), "_1KEY");
    }

    proptest::proptest! {
        #![proptest_config(crate::util::fuzz::config())]
        /// Any text: a duration or none; a number of a unit is that many of it.
        #[test]
        fn fuzz_durations(text in "\\PC{0,12}", n in 0u64..100_000, unit in proptest::sample::select(vec!["s", "m", "h", "d"])) {
            let _ = parse_duration(&text);
            let secs = n * match unit { "s" => 1, "m" => 60, "h" => 3600, _ => 86_400 };
            proptest::prop_assert_eq!(parse_duration(&format!("{n}{unit}")), Some(secs));
        }
    }
}

/// Pattern of an IANA time zone name such as `Asia/Shanghai` or `UTC`; the operator checks the
/// name against the time zone database as well.
pub const TIME_ZONE_PATTERN: &str = r"^(UTC|GMT|[A-Z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2})$";

/// Delivery target of a Cron's answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deliver {
    /// Name of the Channel (same namespace) to deliver through.
    #[schemars(length(min = 1, max = 253))]
    pub channel_ref: String,
    /// Chat id to send to, e.g. the owner's Telegram user id `123456789` or a group `-100…`.
    #[schemars(regex(pattern = r"^-?[0-9]{1,20}(:topic:[0-9]+)?$"))]
    pub to: String,
}

/// `30m`, `1h`, `45s`, `2d` → seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}
