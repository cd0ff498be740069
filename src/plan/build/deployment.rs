//! The gateway Deployment: one replica, `Recreate`, probes, restricted security, secrets only
//! through `secretKeyRef`, and a content hash that rolls the pod on any config or secret change.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvVar, HTTPGetAction,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::security::{container_security_context, pod_security_context};
use super::{env, meta, secrets, tailscale};
use crate::consts::*;
use crate::crd::{Agent, Channel, Exposure, SecretKeyRef};

/// Every Secret key the gateway container reads, with the environment variable it lands in.
/// The token has a fixed name; model and bot keys are named after their key, as standalone.
pub fn secret_env(agent: &Agent, channels: &[Channel]) -> Vec<(String, SecretKeyRef)> {
    let mut env = vec![(ENV_GATEWAY_TOKEN.to_string(), secrets::token_ref(agent))];
    if let Some(r) = &agent.spec.model.api_key_secret_ref {
        env.push((r.env_name(), r.clone()));
    }
    for c in channels {
        let r = &c.spec.telegram.bot_token_secret_ref;
        env.push((r.env_name(), r.clone()));
    }
    let mut seen = std::collections::BTreeSet::new();
    env.retain(|(name, r)| seen.insert((name.clone(), r.clone())));
    env
}

/// A container that exits with an error and wrote no termination message gets the tail of its
/// log as one, so the Agent's status can quote why it crashed.
pub const TERMINATION_FROM_LOGS: &str = "FallbackToLogsOnError";

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity("50m".into())),
            ("memory".into(), Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".into(),
            Quantity("256Mi".into()),
        )])),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Default::default()
    }
}

/// The gateway Deployment. `content_hash` covers config and referenced secret data.
pub fn deployment(
    agent: &Agent,
    channels: &[Channel],
    exposure: &Exposure,
    image: &str,
    content_hash: &str,
) -> Deployment {
    let gw = &agent.spec.gateway;
    let mut env: Vec<EnvVar> = secret_env(agent, channels)
        .iter()
        .map(|(n, r)| env::secret(n, r))
        .collect();
    env.push(env::value(ENV_AGENT, &agent.name_any()));
    env.push(env::field(ENV_POD_NAMESPACE, "metadata.namespace"));
    let gateway = Container {
        name: CONTAINER_GATEWAY.into(),
        image: Some(gw.image.clone().unwrap_or_else(|| image.to_string())),
        args: Some(
            [
                "gateway",
                "--config",
                &format!("{CONFIG_DIR}/{CONFIG_FILE}"),
                "--state-dir",
                STATE_DIR,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: gw.port.into(),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "state".into(),
                mount_path: STATE_DIR.into(),
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            },
        ]),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        startup_probe: Some(http_probe("/healthz", 2, 30)),
        resources: Some(gw.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(container_security_context(RUN_AS_USER)),
        termination_message_policy: Some(TERMINATION_FROM_LOGS.into()),
        ..Default::default()
    };
    let mut containers = vec![gateway];
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            // The whole directory, not a subPath: subPath mounts never see ConfigMap updates.
            config_map: Some(ConfigMapVolumeSource {
                name: meta::config_map_name(agent),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "state".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: meta::state_pvc_name(agent),
                read_only: None,
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        },
    ];
    if let Some(ts) = exposure.sidecar() {
        containers.push(tailscale::sidecar(agent, ts));
        volumes.extend(tailscale::volumes(agent));
    }
    let labels = meta::labels(agent, COMPONENT_GATEWAY);
    Deployment {
        metadata: meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY),
        spec: Some(DeploymentSpec {
            // Two pollers of one Telegram bot conflict (409), so never more than one pod.
            replicas: Some(1),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            }),
            selector: meta::selector(agent, COMPONENT_GATEWAY),
            revision_history_limit: Some(3),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        ANNOTATION_CONFIG_HASH.to_string(),
                        content_hash.to_string(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(meta::gateway_name(agent)),
                    security_context: Some(pod_security_context()),
                    containers,
                    volumes: Some(volumes),
                    termination_grace_period_seconds: Some(30),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
