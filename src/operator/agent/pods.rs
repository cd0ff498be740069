//! Why the gateway pod is not running, in words: read off the newest pod's scheduling condition,
//! container statuses and state claim (pure), so that GatewayAvailable and Exposed name the real
//! cause (an image that cannot be pulled, a crash loop and its last message, an unschedulable pod,
//! a claim left Pending) instead of a generic "minimum availability" or a guess.

use k8s_openapi::api::core::v1::{
    ContainerStateTerminated, ContainerStatus, PersistentVolumeClaim, Pod,
};

use crate::consts::{CONTAINER_GATEWAY, CONTAINER_TAILSCALE};

/// Read only while the gateway is not rolled out, so a healthy Agent costs no pod list.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    /// The gateway's pods (by its selector labels).
    pub pods: Vec<Pod>,
    /// The gateway's state claim.
    pub claim: Option<PersistentVolumeClaim>,
}

/// One thing that keeps the pod from running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trouble {
    /// The condition reason.
    pub reason: &'static str,
    /// The container at fault; `None` when the whole pod is (scheduling, volume, eviction).
    pub container: Option<String>,
    pub message: String,
}

/// What the newest pod shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// The pod looked at, for `kubectl describe pod`.
    pub pod: Option<String>,
    /// Most telling first: the pod, then its containers in their order.
    pub troubles: Vec<Trouble>,
    /// Containers that run or have run (so their logs exist).
    pub started: Vec<String>,
}

impl Diagnosis {
    /// Troubles that stop the container `name`: its own and the pod's.
    pub fn blocking<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Trouble> + 'a {
        self.troubles
            .iter()
            .filter(move |t| t.container.as_deref().is_none_or(|c| c == name))
    }
    pub fn has_started(&self, name: &str) -> bool {
        self.started.iter().any(|c| c == name)
    }
}

/// Kubelet reasons for an image it cannot get.
const IMAGE_PULL: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
    "SignatureValidationFailed",
];
/// Waiting reasons that are progress, not trouble.
const STARTING: &[&str] = &["ContainerCreating", "PodInitializing"];
/// Kubelet termination messages can be long (the tail of a log); status keeps one line of them.
const MAX_QUOTE: usize = 300;

/// The field that sets a container's image, for advice.
fn image_field(container: &str) -> &'static str {
    match container {
        CONTAINER_GATEWAY => "spec.gateway.image",
        CONTAINER_TAILSCALE => "spec.gateway.expose.tailscale.image",
        _ => "its image",
    }
}

/// The last non-empty line, shortened: the newest log line is usually the error.
fn quote(text: &str) -> Option<String> {
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    if line.chars().count() <= MAX_QUOTE {
        return Some(line.to_string());
    }
    let cut: String = line.chars().take(MAX_QUOTE).collect();
    Some(format!("{cut}…"))
}

fn newest(pods: &[Pod]) -> Option<&Pod> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .max_by_key(|p| p.metadata.creation_timestamp.clone())
}

/// Diagnoses the gateway's newest pod and its claim.
pub fn diagnose(facts: &PodFacts) -> Diagnosis {
    let pod = newest(&facts.pods);
    let status = pod.and_then(|p| p.status.clone()).unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let mut troubles = Vec::new();

    if let Some(t) = claim_trouble(facts.claim.as_ref(), phase) {
        troubles.push(t);
    } else if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        troubles.push(Trouble {
            reason: "Unschedulable",
            container: None,
            message: format!(
                "the pod cannot be scheduled: {}",
                c.message
                    .as_deref()
                    .and_then(quote)
                    .unwrap_or_else(|| c.reason.clone().unwrap_or_default())
            ),
        });
    }
    if phase == "Failed" {
        troubles.push(Trouble {
            reason: "PodFailed",
            container: None,
            message: format!(
                "the pod failed ({}): {}",
                status.reason.as_deref().unwrap_or("Failed"),
                status
                    .message
                    .as_deref()
                    .and_then(quote)
                    .unwrap_or_default()
            ),
        });
    }

    let images = |name: &str| {
        pod.and_then(|p| p.spec.as_ref())
            .and_then(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .chain(&s.containers)
                    .find(|c| c.name == name)
            })
            .and_then(|c| c.image.clone())
    };
    let statuses: Vec<&ContainerStatus> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    let mut started = Vec::new();
    for s in statuses {
        let ran = s.state.as_ref().is_some_and(|st| st.running.is_some())
            || s.last_state
                .as_ref()
                .is_some_and(|st| st.terminated.is_some())
            || s.restart_count > 0;
        if ran {
            started.push(s.name.clone());
        }
        if let Some(t) = container_trouble(s, images(&s.name)) {
            troubles.push(t);
        }
    }
    Diagnosis {
        pod: pod.and_then(|p| p.metadata.name.clone()),
        troubles,
        started,
    }
}

/// A claim still Pending keeps a pod that is not running from starting.
fn claim_trouble(claim: Option<&PersistentVolumeClaim>, phase: &str) -> Option<Trouble> {
    let claim = claim?;
    let pending = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
    if !pending || phase != "Pending" {
        return None;
    }
    let name = claim.metadata.name.clone().unwrap_or_default();
    let class = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .map_or("the default storage class".to_string(), |c| {
            format!("storage class {c}")
        });
    Some(Trouble {
        reason: "VolumePending",
        container: None,
        message: format!(
            "PersistentVolumeClaim {name} is Pending: no volume from {class} is bound to it yet \
             (is a provisioner installed and is the class right? see kubectl describe pvc {name})"
        ),
    })
}

fn exit(t: &ContainerStateTerminated) -> String {
    let mut out = format!("exit code {}", t.exit_code);
    if let Some(r) = t.reason.as_deref().filter(|r| !r.is_empty()) {
        out.push_str(&format!(" ({r})"));
    }
    if let Some(m) = t.message.as_deref().and_then(quote) {
        out.push_str(&format!(": {m}"));
    }
    out
}

fn container_trouble(s: &ContainerStatus, spec_image: Option<String>) -> Option<Trouble> {
    let waiting = s.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref().unwrap_or_default();
    let kubelet = waiting.message.as_deref().and_then(quote);
    let name = &s.name;
    let (reason, message) = if IMAGE_PULL.contains(&reason) {
        let image = spec_image.unwrap_or_else(|| s.image.clone());
        (
            "ImagePullFailed",
            format!(
                "container {name} cannot pull image {image} ({reason}{}); check the image name and \
                 tag ({}) and that the node can reach the registry",
                kubelet.map(|m| format!(": {m}")).unwrap_or_default(),
                image_field(name)
            ),
        )
    } else if reason == "CrashLoopBackOff" {
        let last = s
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .map_or("no exit recorded".to_string(), exit);
        (
            "CrashLoopBackOff",
            format!(
                "container {name} keeps crashing (CrashLoopBackOff); last {last}; see kubectl logs \
                 --previous -c {name}"
            ),
        )
    } else if reason.is_empty() || STARTING.contains(&reason) {
        return None;
    } else {
        (
            "ContainerNotStarting",
            format!(
                "container {name} cannot start ({reason}{})",
                kubelet.map(|m| format!(": {m}")).unwrap_or_default()
            ),
        )
    };
    Some(Trouble {
        reason,
        container: Some(name.clone()),
        message,
    })
}
