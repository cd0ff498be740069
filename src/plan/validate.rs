//! Validate: what the CRD schema cannot express — time zones, cron expressions Kubernetes
//! accepts, providers without an endpoint, env var clashes — and the referenced secret values.
//! Pure functions; every problem names the field or object and what to do.

use crate::crd::common::parse_duration;
use std::collections::BTreeMap;
use std::fmt;

use kube::ResourceExt;

use super::resolve::{Reader, Resolved, gateway_secret_uses, secret_uses};
use crate::consts::{
    COMPONENT_BACKUP, ENV_AGENT, ENV_GATEWAY_TOKEN, ENV_GATEWAY_URL, ENV_POD_NAMESPACE,
};
use crate::crd::backup::{BackupSpec, KEEP_MAX, check_destination, check_endpoint, check_region};
use crate::crd::{Agent, Channel, Cron, SecretKeyRef};
use crate::plan::build::deployment::secret_env;
use crate::secrets::{SecretDigest, SecretProblem};

/// Why an Agent cannot be rolled out as specified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A referenced Secret key is unusable. Carries no value.
    Secret {
        field: String,
        reference: SecretKeyRef,
        problem: SecretProblem,
    },
    /// A spec field is invalid.
    Spec { field: String, message: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Secret {
                field,
                reference,
                problem,
            } => write!(
                f,
                "{reference} ({field}): {}; put the real value in the Secret",
                problem.describe()
            ),
            Problem::Spec { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

impl Problem {
    pub fn is_secret(&self) -> bool {
        matches!(self, Problem::Secret { .. })
    }
}

/// What validation found usable; [`super::plan`] makes the [`super::AgentPlan`] of it.
#[derive(Debug)]
pub struct Validated {
    pub channels: Vec<Channel>,
    /// Valid Crons only; invalid ones are reported on their own status and left out.
    pub crons: Vec<Cron>,
    /// Crons left out, with the reason.
    pub skipped_crons: Vec<(String, String)>,
    pub secret_digest: String,
}

pub fn validate(resolved: &Resolved) -> Result<Validated, Vec<Problem>> {
    let agent = &*resolved.agent;
    let mut problems = validate_agent_spec(agent, &resolved.channels);
    let mut digest = SecretDigest::default();
    // The backup Job's keys are told in the backup's own condition (see [`backup_problems`]):
    // the gateway does not read them, so they neither hold it back nor roll its pod.
    for u in gateway_secret_uses(agent, &resolved.channels) {
        match resolved.secrets.0.get(&u.reference) {
            Some(Ok(value)) => digest.add(&u.reference.name, &u.reference.key, value),
            Some(Err(problem)) => problems.push(Problem::Secret {
                field: u.field,
                reference: u.reference,
                problem: *problem,
            }),
            None => problems.push(Problem::Secret {
                field: u.field,
                reference: u.reference,
                problem: SecretProblem::SecretMissing,
            }),
        }
    }
    // Two uses of one key are one problem.
    problems.dedup();
    if !problems.is_empty() {
        return Err(problems);
    }
    let (crons, skipped_crons) =
        runnable_crons(resolved.crons.iter().cloned(), agent, &resolved.channels);
    Ok(Validated {
        channels: resolved.channels.clone(),
        crons,
        skipped_crons,
        secret_digest: digest.finish(),
    })
}

/// What is wrong with the Secret keys of `spec.backup`: the backups fail until it is fixed,
/// while the gateway goes on as it is.
pub fn backup_problems(resolved: &Resolved) -> Vec<Problem> {
    let mut problems: Vec<Problem> = secret_uses(&resolved.agent, &resolved.channels)
        .into_iter()
        .filter(|u| u.reader == Reader::Backup)
        .filter_map(|u| {
            let problem = match resolved.secrets.0.get(&u.reference) {
                Some(Ok(_)) => return None,
                Some(Err(p)) => *p,
                None => SecretProblem::SecretMissing,
            };
            Some(Problem::Secret {
                field: u.field,
                reference: u.reference,
                problem,
            })
        })
        .collect();
    problems.dedup();
    problems
}

/// Environment variables a Secret key must not become.
const RESERVED_ENV: &[&str] = &[
    ENV_GATEWAY_TOKEN,
    ENV_POD_NAMESPACE,
    ENV_AGENT,
    ENV_GATEWAY_URL,
    "PATH",
    "HOME",
    "USER",
    "HOSTNAME",
    "TZ",
    "LANG",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
];

/// Checks of the Agent spec beyond the schema.
pub fn validate_agent_spec(agent: &Agent, channels: &[Channel]) -> Vec<Problem> {
    let spec = &agent.spec;
    let mut problems = Vec::new();
    let mut spec_problem = |field: &str, message: String| {
        problems.push(Problem::Spec {
            field: field.into(),
            message,
        })
    };
    if spec.gateway.sets_both_exposures() {
        // The CRD refuses this at apply; files read without the API server come here.
        spec_problem(
            "spec.gateway.expose",
            "set exactly one of expose.ingress or expose.tailscale".into(),
        );
    }
    if let Some(Err(e)) = spec
        .gateway
        .base_path()
        .map(crate::crd::agent::check_base_path)
    {
        spec_problem("spec.gateway.controlUi.basePath", e);
    }
    if let Some(Err(e)) = spec
        .identity
        .persona
        .as_deref()
        .map(crate::crd::agent::check_persona)
    {
        spec_problem("spec.identity.persona", e);
    }
    if let Some(Err(e)) = spec
        .model
        .timeout_seconds
        .map(crate::crd::agent::check_model_timeout)
    {
        spec_problem("spec.model.timeoutSeconds", e);
    }
    if let Err(e) = check_time_zone(&spec.user_timezone) {
        spec_problem("spec.userTimezone", e);
    }
    if let Some(h) = &spec.heartbeat
        && parse_duration(&h.every).is_none()
    {
        spec_problem(
            "spec.heartbeat.every",
            format!(
                "`{}` is not a duration such as 30m, 1h or 0m (off)",
                h.every
            ),
        );
    }
    if let Some(b) = &spec.backup {
        check_backup(b, &mut spec_problem);
    }
    if let Some(a) = spec.alerts.as_ref().filter(|a| a.enabled)
        && !channels
            .iter()
            .any(|c| c.name_any() == a.deliver.channel_ref)
    {
        spec_problem(
            "spec.alerts.deliver.channelRef",
            format!(
                "Channel {} does not exist or does not belong to Agent {}",
                a.deliver.channel_ref,
                agent.name_any()
            ),
        );
    }
    let has_base_url = spec.model.base_url.is_some();
    for (i, model) in std::iter::once(&spec.model.primary)
        .chain(&spec.model.fallbacks)
        .enumerate()
    {
        let field = if i == 0 {
            "spec.model.primary".to_string()
        } else {
            format!("spec.model.fallbacks[{}]", i - 1)
        };
        let provider = model.split('/').next().unwrap_or_default();
        if !matches!(provider, "zai" | "z.ai" | "z-ai") && !has_base_url {
            spec_problem(
                &field,
                format!(
                    "provider `{provider}` has no built-in endpoint; set spec.model.baseUrl to its OpenAI-compatible URL or use zai/…"
                ),
            );
        }
    }
    // Two different Secret keys must not land in one environment variable, nor on one the
    // container already sets or the system relies on.
    let fields: BTreeMap<SecretKeyRef, String> = gateway_secret_uses(agent, channels)
        .into_iter()
        .map(|u| (u.reference, u.field))
        .collect();
    let field_of = |r: &SecretKeyRef| {
        fields
            .get(r)
            .cloned()
            .unwrap_or_else(|| "secret references".into())
    };
    let mut by_env: BTreeMap<String, SecretKeyRef> = BTreeMap::new();
    for (env, r) in secret_env(agent, channels) {
        if env != ENV_GATEWAY_TOKEN && RESERVED_ENV.contains(&env.as_str()) {
            spec_problem(
                &field_of(&r),
                format!(
                    "{r} would become environment variable {env}, which is reserved; rename the key"
                ),
            );
        }
        if let Some(other) = by_env.get(&env)
            && other != &r
        {
            spec_problem(
                &field_of(&r),
                format!(
                    "{other} and {r} both become environment variable {env}; rename one of the keys"
                ),
            );
        }
        by_env.insert(env, r);
    }
    problems
}

/// What the schema says of `spec.backup`, for files read without the API server, and what it
/// cannot say (a schedule that never runs, a time zone that does not exist).
fn check_backup(b: &BackupSpec, problem: &mut impl FnMut(&str, String)) {
    if let Err(e) = check_schedule(&b.schedule) {
        problem("spec.backup.schedule", e);
    }
    if let Some(Err(e)) = b.time_zone.as_deref().map(check_time_zone) {
        problem("spec.backup.timeZone", e);
    }
    if let Err(e) = check_destination(&b.destination) {
        problem("spec.backup.destination", e);
    }
    if !(1..=KEEP_MAX).contains(&b.keep) {
        problem(
            "spec.backup.keep",
            format!("{} is out of range: keep 1 to {KEEP_MAX} backups", b.keep),
        );
    }
    if let Some(Err(e)) = b.endpoint.as_deref().map(check_endpoint) {
        problem("spec.backup.endpoint", e);
    }
    if let Some(Err(e)) = b.region.as_deref().map(check_region) {
        problem("spec.backup.region", e);
    }
    let creds = &b.credentials_secret_ref;
    for (field, key) in [
        ("accessKeyIdKey", &creds.access_key_id_key),
        ("secretAccessKeyKey", &creds.secret_access_key_key),
    ] {
        let ok = !key.is_empty()
            && key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c));
        if !ok {
            problem(
                &format!("spec.backup.credentialsSecretRef.{field}"),
                format!("`{key}` is not a Secret key (letters, digits, - . and _)"),
            );
        }
    }
}

/// Splits `crons` into the runnable ones and the others, with why each was left out.
pub fn runnable_crons(
    crons: impl IntoIterator<Item = Cron>,
    agent: &Agent,
    channels: &[Channel],
) -> (Vec<Cron>, Vec<(String, String)>) {
    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    for c in crons {
        match validate_cron(&c, agent, channels) {
            Ok(()) => runnable.push(c),
            Err(why) => skipped.push((c.name_any(), why)),
        }
    }
    (runnable, skipped)
}

/// A Cron is runnable when Kubernetes accepts its schedule, its time zone exists and it
/// delivers to a Channel of the same Agent.
pub fn validate_cron(cron: &Cron, agent: &Agent, channels: &[Channel]) -> Result<(), String> {
    if agent.spec.backup.is_some() && cron.name_any() == COMPONENT_BACKUP {
        return Err(format!(
            "metadata.name: a Cron named {COMPONENT_BACKUP} would run as CronJob {}, which the backups of Agent {} (spec.backup) run as; rename the Cron",
            crate::plan::build::meta::backup_cron_job_name(agent),
            agent.name_any()
        ));
    }
    check_schedule(&cron.spec.schedule).map_err(|e| format!("spec.schedule: {e}"))?;
    match &cron.spec.time_zone {
        Some(tz) => check_time_zone(tz).map_err(|e| format!("spec.timeZone: {e}"))?,
        None => check_time_zone(&agent.spec.user_timezone).map_err(|e| {
            format!("the Agent's userTimezone (used when spec.timeZone is absent): {e}")
        })?,
    }
    if let Some(d) = &cron.spec.deliver
        && !channels.iter().any(|c| c.name_any() == d.channel_ref)
    {
        return Err(format!(
            "spec.deliver.channelRef: Channel {} does not exist or does not belong to Agent {}",
            d.channel_ref,
            agent.name_any()
        ));
    }
    Ok(())
}

/// A 5-field expression (or macro) that croner parses and Kubernetes CronJobs accept.
pub fn check_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if !s.starts_with('@') {
        let fields: Vec<&str> = s.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "`{s}` has {} fields; use 5: minute hour day-of-month month day-of-week",
                fields.len()
            ));
        }
        // `L` and `W` alone or after a number (`5L`, `15W`, `LW`); month names such as JUL
        // end in L and are fine.
        let quartz = |t: &str| {
            let stem = t.trim_end_matches(['L', 'W']);
            stem.len() < t.len() && stem.chars().all(|c| c.is_ascii_digit())
        };
        if fields
            .iter()
            .any(|f| f.contains('#') || f.split(['-', ',', '/']).any(quartz))
        {
            return Err(format!(
                "`{s}` uses L, W or #, which Kubernetes CronJobs do not support"
            ));
        }
    }
    let cron = s
        .parse::<croner::Cron>()
        .map_err(|e| format!("`{s}` is not a valid cron expression: {e}"))?;
    if !s.starts_with('@') && day_of_week_seven(s) {
        return Err(format!(
            "`{s}` uses day-of-week 7, which Kubernetes CronJobs refuse; write Sunday as 0 or SUN"
        ));
    }
    // Dates that never come (30 February): croner's search gives up. From a fixed instant, so
    // the answer does not depend on the day it is asked; 29 February is found within its search.
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(1_767_225_600, 0)
        .expect("2026-01-01 is a valid instant");
    cron.find_next_occurrence(&start, false)
        .map(|_| ())
        .map_err(|_| format!("`{s}` never runs: no date matches its day-of-month and month"))
}

/// Whether the day-of-week field names 7 as a value (not as a step).
fn day_of_week_seven(s: &str) -> bool {
    s.split_whitespace().nth(4).is_some_and(|dow| {
        dow.split(',')
            .flat_map(|item| item.split('/').next().unwrap_or_default().split('-'))
            .any(|v| v.parse::<u32>().is_ok_and(|n| n > 6))
    })
}

pub fn check_time_zone(tz: &str) -> Result<(), String> {
    tz.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| format!("`{tz}` is not an IANA time zone; use a name such as Asia/Shanghai, Europe/Berlin or UTC"))
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "validate_backup_tests.rs"]
mod backup_tests;
