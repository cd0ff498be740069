//! One batch/v1 CronJob per Cron: it runs `clawops cron run <name>` against the gateway.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::security::{container_security_context, pod_security_context};
use super::{env, meta, network, secrets};
use crate::consts::*;
use crate::crd::{Agent, Cron};

pub fn cron_job(agent: &Agent, cron: &Cron, image: &str) -> CronJob {
    let mut labels = meta::labels(agent, COMPONENT_CRON);
    labels.insert(LABEL_CRON.into(), cron.name_any());
    let mut metadata = meta::object_meta(
        agent,
        meta::cron_job_name(agent, &cron.name_any()),
        COMPONENT_CRON,
    );
    metadata.labels = Some(labels.clone());
    let token = secrets::token_ref(agent);
    let container = Container {
        name: "cron".into(),
        image: Some(
            agent
                .spec
                .gateway
                .image
                .clone()
                .unwrap_or_else(|| image.to_string()),
        ),
        args: Some(vec![
            "cron".into(),
            "run".into(),
            cron.name_any(),
            "--record".into(),
        ]),
        env: Some(vec![
            env::value(ENV_GATEWAY_URL, &network::service_url(agent)),
            env::secret(ENV_GATEWAY_TOKEN, &token),
            env::value(ENV_GATEWAY_TOKEN_FROM, &token.to_string()),
            env::value(ENV_AGENT, &agent.name_any()),
            env::field(ENV_POD_NAMESPACE, "metadata.namespace"),
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("10m".into())),
                ("memory".into(), Quantity("16Mi".into())),
            ])),
            limits: Some(BTreeMap::from([("memory".into(), Quantity("64Mi".into()))])),
            ..Default::default()
        }),
        security_context: Some(container_security_context(RUN_AS_USER)),
        ..Default::default()
    };
    CronJob {
        metadata,
        spec: Some(CronJobSpec {
            schedule: cron.spec.schedule.clone(),
            time_zone: Some(
                cron.spec
                    .time_zone
                    .clone()
                    .unwrap_or_else(|| agent.spec.user_timezone.clone()),
            ),
            suspend: Some(cron.spec.suspend),
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(300),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    // No second pod: `clawops cron run` already waits for the gateway, and a rerun
                    // would deliver a second report or error notice.
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(900),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels),
                            ..Default::default()
                        }),
                        spec: Some(PodSpec {
                            restart_policy: Some("Never".into()),
                            // Its own narrow identity: it records a failed run on its Cron
                            // (see rbac::cron_role).
                            service_account_name: Some(meta::cron_runner_name(agent)),
                            automount_service_account_token: Some(true),
                            security_context: Some(pod_security_context()),
                            containers: vec![container],
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
