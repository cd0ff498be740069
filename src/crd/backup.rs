//! `Agent.spec.backup` and `Agent.status.backup`: scheduled backups of the gateway's state to
//! S3-compatible storage, run by a CronJob like the patrols.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;
use super::common::TIME_ZONE_PATTERN;
use super::cron::SCHEDULE_PATTERN;

/// A destination: `s3://BUCKET/` or `s3://BUCKET/PREFIX/`. Bucket names as S3 allows them; a
/// prefix of printable characters without spaces, ending in `/`, since every backup gets its own
/// time-stamped name under it and `keep` counts what is there.
pub const DESTINATION_PATTERN: &str = "^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([!-~]*/)?$";

/// An http(s) URL with a host and no user info: the endpoint goes into the Job's environment
/// as it is, where a password has no place (the key pair comes from the Secret).
pub const ENDPOINT_PATTERN: &str = r"^https?://[^\s/@]+(/[^\s]*)?$";
pub const REGION_PATTERN: &str = r"^[a-z0-9-]{1,32}$";

/// The bounds of `keep`.
pub const KEEP_MAX: u32 = 1000;

/// Scheduled backups of the gateway's state (approved senders, history, cron runs, node
/// pairings, audit logs) to S3-compatible storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.destination.matches('^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([!-~]*/)?$')").message("backup.destination must be s3://BUCKET/ or s3://BUCKET/PREFIX/ (ending in /): every backup is named by its time under it"))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::common::k8s_int_formats)]
pub struct BackupSpec {
    /// When to back up: a 5-field cron expression such as `0 3 * * *`, or `@daily`.
    #[schemars(regex(pattern = SCHEDULE_PATTERN))]
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. `Asia/Shanghai`; the Agent's userTimezone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIME_ZONE_PATTERN))]
    pub time_zone: Option<String>,
    /// Where backups go: `s3://BUCKET/PREFIX/`. Each is named by its time under the prefix
    /// (`clawops-20261129T030000.000Z.tar.zst`).
    #[schemars(length(max = 1024))]
    pub destination: String,
    /// URL of S3-compatible storage (MinIO, Ceph RGW, Cloudflare R2…), e.g.
    /// `http://minio.minio.svc:9000`; AWS S3 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ENDPOINT_PATTERN), length(max = 512))]
    pub endpoint: Option<String>,
    /// The storage's region; `us-east-1` when absent (MinIO ignores it, R2 wants `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: Option<String>,
    /// The Secret with the access key pair.
    pub credentials_secret_ref: S3CredentialsRef,
    /// How many backups to keep under the prefix: older `clawops-*.tar.zst` there are deleted
    /// after each backup (nothing else is touched).
    #[serde(default = "default_keep")]
    #[schemars(range(min = 1, max = KEEP_MAX))]
    pub keep: u32,
    /// Put the secrets in the backups too (the nodes' device tokens); off by default, so a
    /// leaked backup holds no credential. Without them, a restored node gets a new token when
    /// it reconnects.
    #[serde(default)]
    pub include_secrets: bool,
    /// Pause the schedule (a backup that runs goes on).
    #[serde(default)]
    pub suspend: bool,
}

fn default_keep() -> u32 {
    7
}

/// A Secret holding an S3 access key pair, in the Agent's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key of the access key id.
    #[serde(default = "default_access_key_id_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub access_key_id_key: String,
    /// Key of the secret access key.
    #[serde(default = "default_secret_access_key_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "AWS_ACCESS_KEY_ID".into()
}

fn default_secret_access_key_key() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

impl S3CredentialsRef {
    /// The two keys, as references.
    pub fn access_key_id(&self) -> SecretKeyRef {
        SecretKeyRef::new(&self.name, &self.access_key_id_key)
    }
    pub fn secret_access_key(&self) -> SecretKeyRef {
        SecretKeyRef::new(&self.name, &self.secret_access_key_key)
    }
}

/// Why `destination` cannot be a backup destination, if it cannot (the CRD's rule, for files
/// read without the API server).
pub fn check_destination(destination: &str) -> Result<(), String> {
    let ok = destination.strip_prefix("s3://").is_some_and(|rest| {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        let prefix_ok = (prefix.is_empty() || prefix.ends_with('/'))
            && prefix.bytes().all(|b| (b'!'..=b'~').contains(&b));
        bucket_ok && rest.contains('/') && prefix_ok
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{destination}` is not s3://BUCKET/ or s3://BUCKET/PREFIX/ (ending in /): every backup is named by its time under it"
        ))
    }
}

/// Why `endpoint` is not an http(s) URL with a host (and no user info), if it is not (the
/// CRD's pattern, for files read without the API server).
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or_default());
    if host.is_some_and(|h| h.contains('@')) {
        // Not quoted: the user info may hold a password, and this message goes into status.
        return Err(
            "carries user info (user:password@host): it would be in the Job's environment in plain text; put the key pair in the credentials Secret and give the endpoint without it"
                .into(),
        );
    }
    if host.is_some_and(|h| !h.is_empty()) && !endpoint.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!(
            "`{endpoint}` is not an http(s) URL such as http://minio.minio.svc:9000"
        ))
    }
}

/// Why `region` is not a region name, if it is not (the CRD's pattern, for files).
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{region}` is not a region name such as us-east-1 (lower-case letters, digits and -)"
        ))
    }
}

/// What the Agent's backup CronJob reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// The CronJob that runs the backups.
    pub cron_job: String,
    /// When the last backup was started by the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the last backup finished successfully (`kubectl get claw` shows its age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_a_bucket_and_a_prefix_ending_in_a_slash() {
        for ok in [
            "s3://my-backups/",
            "s3://my-backups/shrimp/",
            "s3://b.c-d/a/b/c/",
        ] {
            assert_eq!(check_destination(ok), Ok(()), "{ok}");
        }
        for bad in [
            "s3://my-backups",
            "s3://my-backups/shrimp",
            "s3://My-Backups/",
            "s3://ab/",
            "s3://-x-/",
            "https://my-backups/",
            "s3://my-backups/a b/",
            "",
        ] {
            let err = check_destination(bad).expect_err(bad);
            assert!(err.contains("s3://BUCKET/PREFIX/"), "{err}");
        }
    }

    #[test]
    fn endpoints_are_http_urls_with_a_host() {
        for ok in ["http://minio.minio.svc:9000", "https://s3.example.com/base"] {
            assert_eq!(check_endpoint(ok), Ok(()), "{ok}");
        }
        for bad in ["minio:9000", "http://", "ftp://x", "http://a b"] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        let err = check_endpoint("http://minio:s3cr3t@minio:9000").unwrap_err();
        assert!(
            err.contains("user info") && !err.contains("s3cr3t"),
            "{err}"
        );
        let pattern = regex::Regex::new(ENDPOINT_PATTERN).unwrap();
        for s in [
            "http://minio:9000",
            "http://u:p@minio:9000",
            "minio:9000",
            "https://s3.example.com/b",
        ] {
            assert_eq!(pattern.is_match(s), check_endpoint(s).is_ok(), "{s}");
        }
        let region = regex::Regex::new(REGION_PATTERN).unwrap();
        for s in ["us-east-1", "auto", "US", "", "eu west"] {
            assert_eq!(region.is_match(s), check_region(s).is_ok(), "{s}");
        }
    }

    /// The CRD's CEL rule and the check for files agree.
    #[test]
    fn the_pattern_and_the_check_agree() {
        let re = regex_lite_match;
        for s in [
            "s3://my-backups/",
            "s3://my-backups/shrimp/",
            "s3://my-backups",
            "s3://my-backups/shrimp",
            "s3://ab/",
            "s3://my-backups/a b/",
            "s3://-x-/",
        ] {
            assert_eq!(re(s), check_destination(s).is_ok(), "{s}");
        }
    }

    fn regex_lite_match(s: &str) -> bool {
        regex::Regex::new(DESTINATION_PATTERN).unwrap().is_match(s)
    }

    #[test]
    fn the_crd_rule_is_the_pattern() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_string(&crate::crd::Agent::crd()).unwrap();
        assert!(
            crd.contains(&format!(
                "self.destination.matches('{DESTINATION_PATTERN}')"
            )),
            "the CEL rule on spec.backup differs from DESTINATION_PATTERN"
        );
    }
}
