//! The batch/v1 CronJobs: one per Cron, running `clawops cron run <name>` against the gateway,
//! and the backups of `spec.backup`, running `clawops backup create` against it.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::security::{container_security_context, pod_security_context};
use super::{env, meta, network, secrets};
use crate::consts::*;
use crate::crd::backup::BackupSpec;
use crate::crd::{Agent, Cron};

/// How long a backup Job waits for the gateway while it is not reachable or not ready.
pub const BACKUP_WAIT_SECONDS: u32 = 300;

/// What differs between the two kinds of scheduled Job.
struct Scheduled {
    name: String,
    labels: BTreeMap<String, String>,
    container: Container,
    schedule: String,
    time_zone: String,
    suspend: bool,
    backoff_limit: i32,
    active_deadline_seconds: i64,
    /// The pod's own identity, when it talks to the Kubernetes API.
    service_account: Option<String>,
}

pub fn cron_job(agent: &Agent, cron: &Cron, image: &str) -> CronJob {
    let mut labels = meta::labels(agent, COMPONENT_CRON);
    labels.insert(LABEL_CRON.into(), cron.name_any());
    let mut env = gateway_env(agent);
    env.push(env::value(ENV_AGENT, &agent.name_any()));
    env.push(env::field(ENV_POD_NAMESPACE, "metadata.namespace"));
    scheduled(
        agent,
        Scheduled {
            name: meta::cron_job_name(agent, &cron.name_any()),
            labels,
            container: container(
                agent,
                image,
                "cron",
                vec![
                    "cron".into(),
                    "run".into(),
                    cron.name_any(),
                    "--record".into(),
                ],
                env,
                "64Mi",
            ),
            schedule: cron.spec.schedule.clone(),
            time_zone: cron
                .spec
                .time_zone
                .clone()
                .unwrap_or_else(|| agent.spec.user_timezone.clone()),
            suspend: cron.spec.suspend,
            // No second pod: `clawops cron run` already waits for the gateway, and a rerun
            // would deliver a second report or error notice.
            backoff_limit: 0,
            active_deadline_seconds: 900,
            // Its own narrow identity: it records a failed run on its Cron (see
            // rbac::cron_role).
            service_account: Some(meta::cron_runner_name(agent)),
        },
    )
}

/// The CronJob of `spec.backup`: the Job asks the gateway for a backup over its API and
/// uploads it with the credentials only it holds (the gateway never sees them).
pub fn backup_cron_job(agent: &Agent, backup: &BackupSpec, image: &str) -> CronJob {
    let creds = &backup.credentials_secret_ref;
    let mut env = gateway_env(agent);
    env.push(env::secret("AWS_ACCESS_KEY_ID", &creds.access_key_id()));
    env.push(env::secret(
        "AWS_SECRET_ACCESS_KEY",
        &creds.secret_access_key(),
    ));
    if let Some(endpoint) = &backup.endpoint {
        env.push(env::value("AWS_ENDPOINT_URL", endpoint));
    }
    if let Some(region) = &backup.region {
        env.push(env::value("AWS_REGION", region));
    }
    let mut args: Vec<String> = vec![
        "backup".into(),
        "create".into(),
        "--to".into(),
        backup.destination.clone(),
        "--keep".into(),
        backup.keep.to_string(),
        "--wait".into(),
        BACKUP_WAIT_SECONDS.to_string(),
    ];
    if backup.include_secrets {
        args.push("--include-secrets".into());
    }
    scheduled(
        agent,
        Scheduled {
            name: meta::backup_cron_job_name(agent),
            labels: meta::labels(agent, COMPONENT_BACKUP),
            // The archive is held in memory on its way from the gateway to the storage.
            container: container(agent, image, COMPONENT_BACKUP, args, env, "256Mi"),
            schedule: backup.schedule.clone(),
            time_zone: backup
                .time_zone
                .clone()
                .unwrap_or_else(|| agent.spec.user_timezone.clone()),
            suspend: backup.suspend,
            // A backup is safe to take again: each is a new object, and `keep` counts them.
            backoff_limit: 2,
            active_deadline_seconds: 1800,
            service_account: None,
        },
    )
}

/// The gateway's URL and token, and which Secret key the token comes from (for a refused
/// token's message, never the token).
fn gateway_env(agent: &Agent) -> Vec<EnvVar> {
    let token = secrets::token_ref(agent);
    vec![
        env::value(ENV_GATEWAY_URL, &network::service_url(agent)),
        env::secret(ENV_GATEWAY_TOKEN, &token),
        env::value(ENV_GATEWAY_TOKEN_FROM, &token.to_string()),
    ]
}

fn container(
    agent: &Agent,
    image: &str,
    name: &str,
    args: Vec<String>,
    env: Vec<EnvVar>,
    memory_limit: &str,
) -> Container {
    Container {
        name: name.into(),
        image: Some(
            agent
                .spec
                .gateway
                .image
                .clone()
                .unwrap_or_else(|| image.to_string()),
        ),
        args: Some(args),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("10m".into())),
                ("memory".into(), Quantity("16Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".into(),
                Quantity(memory_limit.into()),
            )])),
            ..Default::default()
        }),
        security_context: Some(container_security_context(RUN_AS_USER)),
        ..Default::default()
    }
}

fn scheduled(agent: &Agent, s: Scheduled) -> CronJob {
    let mut metadata = meta::object_meta(agent, s.name, &s.labels[LABEL_COMPONENT]);
    metadata.labels = Some(s.labels.clone());
    CronJob {
        metadata,
        spec: Some(CronJobSpec {
            schedule: s.schedule,
            time_zone: Some(s.time_zone),
            suspend: Some(s.suspend),
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(300),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    backoff_limit: Some(s.backoff_limit),
                    active_deadline_seconds: Some(s.active_deadline_seconds),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(s.labels),
                            ..Default::default()
                        }),
                        spec: Some(PodSpec {
                            restart_policy: Some("Never".into()),
                            automount_service_account_token: Some(s.service_account.is_some()),
                            service_account_name: s.service_account,
                            security_context: Some(pod_security_context()),
                            containers: vec![s.container],
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
            },
        }),
        ..Default::default()
    }
}
