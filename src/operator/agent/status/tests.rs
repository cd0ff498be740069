//! The status decision from typed fixtures: what the Deployment and the gateway pod show, and
//! the conditions a user reads in `kubectl describe agent`.

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;
use crate::crd::agent::{Expose, TailscaleExpose, TailscaleMode};
use crate::crd::{AgentSpec, SecretKeyRef};

const TS_IMAGE: &str = "ghcr.io/tailscale/tailscale:v9.9.9-typo";

fn agent(tailscale: bool) -> Agent {
    let mut spec: AgentSpec = serde_json::from_value(serde_json::json!({
        "identity": {"name": "shrimp"},
        "model": {"primary": "zai/glm-4.7"},
    }))
    .unwrap();
    if tailscale {
        spec.gateway.expose = Some(Expose {
            ingress: None,
            tailscale: Some(TailscaleExpose {
                hostname: "shrimp".into(),
                mode: TailscaleMode::Sidecar,
                auth_key_secret_ref: Some(SecretKeyRef {
                    name: "ts".into(),
                    key: "authkey".into(),
                }),
                funnel: false,
                image: TS_IMAGE.into(),
            }),
        });
    }
    let mut a = Agent::new("shrimp", spec);
    a.metadata.namespace = Some("claw".into());
    a
}

/// A Deployment whose one pod is not available, as the Deployment controller reports it.
fn unavailable() -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("shrimp-gateway".into()),
            generation: Some(1),
            ..Default::default()
        },
        status: Some(DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(1),
            updated_replicas: Some(1),
            unavailable_replicas: Some(1),
            conditions: Some(vec![DeploymentCondition {
                type_: "Available".into(),
                status: "False".into(),
                reason: Some("MinimumReplicasUnavailable".into()),
                message: Some("Deployment does not have minimum availability.".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn available() -> Deployment {
    let mut d = unavailable();
    let s = d.status.as_mut().unwrap();
    s.available_replicas = Some(1);
    s.ready_replicas = Some(1);
    s.unavailable_replicas = None;
    s.conditions = None;
    d
}

fn running(name: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image: format!("{name}:image"),
        ready: true,
        started: Some(true),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting(name: &str, reason: &str, message: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image: format!("{name}:image"),
        ready: false,
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: (!message.is_empty()).then(|| message.into()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The gateway's pod with these container statuses (and the images its spec names).
fn pod(name: &str, statuses: Vec<ContainerStatus>) -> Pod {
    let containers = statuses
        .iter()
        .map(|s| Container {
            name: s.name.clone(),
            image: Some(if s.name == CONTAINER_TAILSCALE {
                TS_IMAGE.into()
            } else {
                "ghcr.io/clawops/clawops:0.1.0".into()
            }),
            ..Default::default()
        })
        .collect();
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time("2026-11-21T00:00:00Z".parse().unwrap())),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers,
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            container_statuses: Some(statuses),
            ..Default::default()
        }),
    }
}

fn unscheduled(message: &str) -> Pod {
    let mut p = pod("shrimp-gateway-7d9f-abcde", vec![]);
    let s = p.status.as_mut().unwrap();
    s.container_statuses = None;
    s.conditions = Some(vec![PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some(message.into()),
        ..Default::default()
    }]);
    p
}

fn claim(phase: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("shrimp-gateway-state".into()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            storage_class_name: Some("local-path".into()),
            ..Default::default()
        }),
        status: Some(PersistentVolumeClaimStatus {
            phase: Some(phase.into()),
            ..Default::default()
        }),
    }
}

fn observed(deployment: Deployment, pods: Vec<Pod>, claim_phase: &str) -> Observed {
    let rolled = status::rolled_out(&deployment);
    Observed {
        deployment: Some(deployment),
        // As the observe step does: pods are read only while the gateway is not rolled out.
        pods: (!rolled).then(|| PodFacts {
            pods,
            claim: Some(claim(claim_phase)),
        }),
        ..Default::default()
    }
}

fn cond<'a>(d: &'a Decision, type_: &str) -> &'a Cond {
    d.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

use super as status;

#[test]
fn tailscale_image_pull_backoff_is_named_and_the_auth_key_is_not_blamed() {
    let a = agent(true);
    let kubelet = format!(
        "Back-off pulling image \"{TS_IMAGE}\": ErrImagePull: failed to pull and unpack image: not found"
    );
    let o = observed(
        unavailable(),
        vec![pod(
            "shrimp-gateway-7d9f-abcde",
            vec![
                running(CONTAINER_GATEWAY),
                waiting(CONTAINER_TAILSCALE, "ImagePullBackOff", &kubelet),
            ],
        )],
        "Bound",
    );
    let d = decide(&a, &[], &[], None, &o);

    let exposed = cond(&d, CONDITION_EXPOSED);
    assert!(!exposed.status);
    assert_eq!(exposed.reason, "ImagePullFailed");
    for part in [
        "container tailscale cannot pull image",
        TS_IMAGE,
        "not found",
        "spec.gateway.expose.tailscale.image",
    ] {
        assert!(
            exposed.message.contains(part),
            "{part}: {}",
            exposed.message
        );
    }
    assert!(
        !exposed.message.contains("auth key") && !exposed.message.contains("kubectl logs"),
        "a container that never started has no logs and no auth key problem: {}",
        exposed.message
    );

    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(available.reason, "ImagePullFailed");
    assert!(
        available.message.contains(TS_IMAGE)
            && available
                .message
                .contains("kubectl describe pod shrimp-gateway-7d9f-abcde")
            && !available.message.contains("minimum availability"),
        "{}",
        available.message
    );
    let ready = cond(&d, CONDITION_READY);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (false, "ImagePullFailed")
    );
}

#[test]
fn err_image_pull_of_the_gateway_container_names_its_image_and_field() {
    let a = agent(false);
    let o = observed(
        unavailable(),
        vec![pod(
            "shrimp-gateway-1",
            vec![waiting(
                CONTAINER_GATEWAY,
                "ErrImagePull",
                "rpc error: code = NotFound desc = failed to pull and unpack image \"ghcr.io/clawops/clawops:0.1.0\": not found",
            )],
        )],
        "Bound",
    );
    let d = decide(&a, &[], &[], None, &o);
    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(available.reason, "ImagePullFailed");
    for part in [
        "container gateway cannot pull image ghcr.io/clawops/clawops:0.1.0 (ErrImagePull",
        "code = NotFound",
        "spec.gateway.image",
    ] {
        assert!(
            available.message.contains(part),
            "{part}: {}",
            available.message
        );
    }
    // Without exposure the gateway's own trouble does not make Exposed false.
    assert!(cond(&d, CONDITION_EXPOSED).status);
}

#[test]
fn crash_loop_quotes_the_last_exit_and_its_last_log_line() {
    let a = agent(false);
    let mut crashing = waiting(
        CONTAINER_GATEWAY,
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=gateway",
    );
    crashing.restart_count = 3;
    crashing.last_state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 1,
            reason: Some("Error".into()),
            message: Some(
                "starting\nconfig loaded\nError: channel telegram: getMe failed: 401 Unauthorized\n"
                    .into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    });
    let o = observed(
        unavailable(),
        vec![pod("shrimp-gateway-1", vec![crashing])],
        "Bound",
    );
    let d = decide(&a, &[], &[], None, &o);
    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(available.reason, "CrashLoopBackOff");
    let m = &available.message;
    assert!(
        m.contains("container gateway keeps crashing")
            && m.contains(
                "exit code 1 (Error): Error: channel telegram: getMe failed: 401 Unauthorized"
            )
            && m.contains("kubectl logs --previous -c gateway"),
        "{m}"
    );
    assert!(!m.contains("config loaded"), "only the last line: {m}");
}

#[test]
fn crash_looping_sidecar_is_reported_in_exposed_too() {
    let a = agent(true);
    let mut ts = waiting(CONTAINER_TAILSCALE, "CrashLoopBackOff", "");
    ts.restart_count = 5;
    ts.last_state = Some(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 137,
            reason: Some("OOMKilled".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let o = observed(
        unavailable(),
        vec![pod("p", vec![running(CONTAINER_GATEWAY), ts])],
        "Bound",
    );
    let d = decide(&a, &[], &[], None, &o);
    let exposed = cond(&d, CONDITION_EXPOSED);
    assert_eq!(exposed.reason, "CrashLoopBackOff");
    assert!(
        exposed.message.contains("exit code 137 (OOMKilled)"),
        "{}",
        exposed.message
    );
}

#[test]
fn an_unschedulable_pod_quotes_the_scheduler() {
    let a = agent(true);
    let why = "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
    let o = observed(unavailable(), vec![unscheduled(why)], "Bound");
    let d = decide(&a, &[], &[], None, &o);
    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(available.reason, "Unschedulable");
    assert!(
        available.message.contains(
            "the pod cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory"
        ),
        "{}",
        available.message
    );
    // The sidecar is held by the same pod-level trouble, and the auth key is not blamed.
    let exposed = cond(&d, CONDITION_EXPOSED);
    assert_eq!(exposed.reason, "Unschedulable");
    assert!(!exposed.message.contains("auth key"), "{}", exposed.message);
}

#[test]
fn a_pending_claim_is_named_with_its_storage_class() {
    let a = agent(false);
    let o = observed(
        unavailable(),
        vec![unscheduled(
            "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
        )],
        "Pending",
    );
    let d = decide(&a, &[], &[], None, &o);
    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(available.reason, "VolumePending");
    assert!(
        available
            .message
            .contains("PersistentVolumeClaim shrimp-gateway-state is Pending")
            && available.message.contains("storage class local-path")
            && available
                .message
                .contains("kubectl describe pvc shrimp-gateway-state"),
        "{}",
        available.message
    );
    // Reported once, not also as the scheduler's echo of it.
    assert_eq!(available.message.matches("cannot be scheduled").count(), 0);
}

#[test]
fn healthy_gateway_reads_no_pods_and_blames_nothing() {
    let a = agent(false);
    let o = observed(available(), vec![], "Bound");
    assert!(
        o.pods.is_none(),
        "a rolled-out Deployment needs no pod read"
    );
    let d = decide(&a, &[], &[], None, &o);
    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(
        (available.status, available.reason.as_str()),
        (true, "MinimumReplicasAvailable")
    );
    assert!(cond(&d, CONDITION_READY).status);

    // A pod that is only starting is not trouble either: the Deployment's words stand.
    let o = observed(
        unavailable(),
        vec![pod(
            "p",
            vec![waiting(CONTAINER_GATEWAY, "ContainerCreating", "")],
        )],
        "Bound",
    );
    let d = decide(&a, &[], &[], None, &o);
    let available = cond(&d, CONDITION_GATEWAY_AVAILABLE);
    assert_eq!(available.reason, "Unavailable");
    assert!(
        available.message.contains("minimum availability"),
        "{}",
        available.message
    );
}

#[test]
fn a_running_sidecar_that_has_not_joined_points_at_the_auth_key() {
    let a = agent(true);
    // Rolled out: every container is ready, so the sidecar runs and its logs exist.
    let d = decide(&a, &[], &[], None, &observed(available(), vec![], "Bound"));
    let exposed = cond(&d, CONDITION_EXPOSED);
    assert_eq!(exposed.reason, "TailscalePending");
    assert!(
        exposed.message.contains("check the auth key")
            && exposed
                .message
                .contains("kubectl logs deploy/shrimp-gateway -c tailscale"),
        "{}",
        exposed.message
    );
    // Still being created: neither the key nor the logs yet.
    let o = observed(
        unavailable(),
        vec![pod(
            "p",
            vec![
                waiting(CONTAINER_GATEWAY, "ContainerCreating", ""),
                waiting(CONTAINER_TAILSCALE, "ContainerCreating", ""),
            ],
        )],
        "Bound",
    );
    let exposed = cond(&decide(&a, &[], &[], None, &o), CONDITION_EXPOSED).clone();
    assert_eq!(exposed.reason, "TailscaleStarting");
    assert!(!exposed.message.contains("auth key"));
}

#[test]
fn a_replica_set_that_cannot_create_its_pod_says_why() {
    let a = agent(false);
    let mut d = unavailable();
    d.status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .push(DeploymentCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("pods \"shrimp-gateway-1\" is forbidden: exceeded quota: compute".into()),
            ..Default::default()
        });
    let decided = decide(&a, &[], &[], None, &observed(d, vec![], "Bound"));
    let available = cond(&decided, CONDITION_GATEWAY_AVAILABLE);
    assert!(
        available.message.contains("exceeded quota"),
        "{}",
        available.message
    );
}

#[test]
fn the_newest_live_pod_is_the_one_diagnosed() {
    let mut old = pod(
        "old",
        vec![waiting(CONTAINER_GATEWAY, "CrashLoopBackOff", "")],
    );
    old.metadata.deletion_timestamp = Some(Time("2026-11-21T01:00:00Z".parse().unwrap()));
    let mut new = pod(
        "new",
        vec![waiting(CONTAINER_GATEWAY, "ErrImagePull", "not found")],
    );
    new.metadata.creation_timestamp = Some(Time("2026-11-21T00:30:00Z".parse().unwrap()));
    let dx = pods::diagnose(&PodFacts {
        pods: vec![old, new],
        claim: None,
    });
    assert_eq!(dx.pod.as_deref(), Some("new"));
    assert_eq!(dx.troubles.len(), 1);
    assert_eq!(dx.troubles[0].reason, "ImagePullFailed");
}

#[test]
fn a_missing_cluster_reader_holds_ready_and_says_how_to_fix_it() {
    let a = agent(false);
    let mut o = observed(available(), vec![], "Bound");
    o.missing_cluster_roles = vec![CLUSTER_READER_ROLE];
    let d = decide(&a, &[], &[], None, &o);
    let ready = cond(&d, CONDITION_READY);
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (false, "ClusterReaderMissing")
    );
    assert!(
        ready.message.contains(CLUSTER_READER_ROLE)
            && ready.message.contains("clusterAccess: none")
            && ready.message.contains("chart"),
        "{}",
        ready.message
    );
    // The gateway itself is fine.
    assert!(cond(&d, CONDITION_GATEWAY_AVAILABLE).status);
}
