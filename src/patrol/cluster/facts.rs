//! The little the patrol keeps of each object: pages of full objects are reduced to these as
//! they arrive, so a 10,000-pod cluster costs megabytes, not the size of its API objects.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ContainerStateTerminated, Event, Node, PersistentVolumeClaim, Pod,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

#[derive(Clone, Debug, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    /// The Ready condition: None when the node reports none.
    pub ready: Option<bool>,
    pub ready_reason: String,
    pub ready_since: Option<DateTime<Utc>>,
    /// Pressure conditions that are True: MemoryPressure, DiskPressure, PIDPressure.
    pub pressures: Vec<String>,
    pub unschedulable: bool,
    pub cpu_milli: u64,
    pub memory_bytes: u64,
}

impl From<Node> for NodeFacts {
    fn from(n: Node) -> Self {
        let name = n.name_any();
        let status = n.status.unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let ready = conditions.iter().find(|c| c.type_ == "Ready");
        let alloc = status.allocatable.unwrap_or_default();
        Self {
            name,
            ready: ready.map(|c| c.status == "True"),
            ready_reason: ready
                .and_then(|c| c.reason.clone().or(c.message.clone()))
                .unwrap_or_default(),
            ready_since: ready.and_then(|c| c.last_transition_time.as_ref().map(|t| utc(&t.0))),
            pressures: conditions
                .iter()
                .filter(|c| c.type_.ends_with("Pressure") && c.status == "True")
                .map(|c| c.type_.clone())
                .collect(),
            unschedulable: n.spec.and_then(|s| s.unschedulable).unwrap_or(false),
            cpu_milli: alloc.get("cpu").map(cpu_milli).unwrap_or(0),
            memory_bytes: alloc.get("memory").map(bytes).unwrap_or(0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerFacts {
    pub name: String,
    pub waiting_reason: Option<String>,
    pub waiting_message: Option<String>,
    pub last_terminated_reason: Option<String>,
    pub last_terminated_at: Option<DateTime<Utc>>,
    pub restarts: i32,
}

impl ContainerFacts {
    pub fn crash_looping(&self) -> bool {
        self.waiting_reason.as_deref() == Some("CrashLoopBackOff")
    }

    /// When it was last OOM-killed, if that was within `window` before `now`.
    pub fn oom_killed_within(
        &self,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Option<DateTime<Utc>> {
        self.last_terminated_at.filter(|t| {
            self.last_terminated_reason.as_deref() == Some("OOMKilled") && now - *t <= window
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub created: Option<DateTime<Utc>>,
    /// Why the scheduler has not placed it, when it says.
    pub unschedulable: Option<String>,
    pub cpu_request_milli: u64,
    pub memory_request_bytes: u64,
    pub containers: Vec<ContainerFacts>,
}

impl PodFacts {
    /// The command to read a container's crashed run.
    pub fn previous_logs(&self, c: &ContainerFacts) -> String {
        format!(
            "kubectl -n {} logs {} -c {} --previous",
            self.namespace, self.name, c.name
        )
    }

    /// What to do about a container killed for memory.
    pub fn raise_memory(&self, c: &ContainerFacts) -> String {
        format!(
            "kubectl -n {} describe pod {} and raise resources.limits.memory of container {}",
            self.namespace, self.name, c.name
        )
    }

    /// Whether it still holds its node's resources.
    pub fn is_active(&self) -> bool {
        !matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }
}

impl From<Pod> for PodFacts {
    fn from(p: Pod) -> Self {
        let namespace = p.namespace().unwrap_or_default();
        let name = p.name_any();
        let created = p.metadata.creation_timestamp.as_ref().map(|t| utc(&t.0));
        let spec = p.spec.unwrap_or_default();
        let status = p.status.unwrap_or_default();
        let (mut cpu, mut mem) = (0, 0);
        for c in &spec.containers {
            if let Some(req) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
                cpu += req.get("cpu").map(cpu_milli).unwrap_or(0);
                mem += req.get("memory").map(bytes).unwrap_or(0);
            }
        }
        let unschedulable = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| c.message.clone().unwrap_or_else(|| "not scheduled".into()));
        let containers = status
            .init_container_statuses
            .into_iter()
            .flatten()
            .chain(status.container_statuses.into_iter().flatten())
            .map(|c| {
                let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
                // A container that is not restarted (a Job's, restartPolicy Never) keeps its
                // exit in `state`; one that is, in `lastState`. The latest counts.
                let finished = |t: &&ContainerStateTerminated| t.finished_at.as_ref().map(|f| f.0);
                let last = [
                    c.state.as_ref().and_then(|s| s.terminated.as_ref()),
                    c.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
                ]
                .into_iter()
                .flatten()
                .max_by_key(finished);
                ContainerFacts {
                    name: c.name.clone(),
                    waiting_reason: waiting.and_then(|w| w.reason.clone()),
                    waiting_message: waiting.and_then(|w| w.message.clone()),
                    last_terminated_reason: last.and_then(|t| t.reason.clone()),
                    last_terminated_at: last
                        .and_then(|t| t.finished_at.as_ref().map(|t| utc(&t.0))),
                    restarts: c.restart_count,
                }
            })
            .collect();
        Self {
            namespace,
            name,
            node: spec.node_name,
            phase: status.phase.unwrap_or_default(),
            created,
            unschedulable,
            cpu_request_milli: cpu,
            memory_request_bytes: mem,
            containers,
        }
    }
}

/// A Deployment, StatefulSet or DaemonSet: how many replicas it wants and how many serve.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadFacts {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub desired: i32,
    pub available: i32,
}

impl From<Deployment> for WorkloadFacts {
    fn from(d: Deployment) -> Self {
        Self {
            kind: "deployment",
            namespace: d.namespace().unwrap_or_default(),
            name: d.name_any(),
            desired: d.spec.and_then(|s| s.replicas).unwrap_or(1),
            available: d.status.and_then(|s| s.available_replicas).unwrap_or(0),
        }
    }
}

impl From<StatefulSet> for WorkloadFacts {
    fn from(s: StatefulSet) -> Self {
        Self {
            kind: "statefulset",
            namespace: s.namespace().unwrap_or_default(),
            name: s.name_any(),
            desired: s.spec.and_then(|s| s.replicas).unwrap_or(1),
            available: s.status.and_then(|s| s.ready_replicas).unwrap_or(0),
        }
    }
}

impl From<DaemonSet> for WorkloadFacts {
    fn from(d: DaemonSet) -> Self {
        let status = d.status.clone().unwrap_or_default();
        Self {
            kind: "daemonset",
            namespace: d.namespace().unwrap_or_default(),
            name: d.name_any(),
            desired: status.desired_number_scheduled,
            available: status.number_available.unwrap_or(0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PvcFacts {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub created: Option<DateTime<Utc>>,
}

impl From<PersistentVolumeClaim> for PvcFacts {
    fn from(p: PersistentVolumeClaim) -> Self {
        Self {
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
            created: p.metadata.creation_timestamp.as_ref().map(|t| utc(&t.0)),
            phase: p.status.and_then(|s| s.phase).unwrap_or_default(),
        }
    }
}

/// A Warning event: what happened to which object, how often, and when last.
#[derive(Clone, Debug, PartialEq)]
pub struct EventFacts {
    pub reason: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub count: u32,
    pub last: Option<DateTime<Utc>>,
    pub message: String,
}

impl EventFacts {
    /// Only Warning events are kept (the API is asked for them, but not every server filters).
    pub fn from_warning(e: Event) -> Option<Self> {
        if e.type_.as_deref() != Some("Warning") {
            return None;
        }
        let last = event_last_seen(&e);
        let count = event_count(&e);
        let o = e.involved_object;
        Some(Self {
            reason: e.reason.unwrap_or_default(),
            kind: o.kind.unwrap_or_default(),
            namespace: o.namespace.or(e.metadata.namespace).unwrap_or_default(),
            name: o.name.unwrap_or_default(),
            count,
            last,
            message: e.message.unwrap_or_default(),
        })
    }
}

/// When an event last happened: the series' last observation, else the newest time it carries
/// (clients of both event APIs fill different fields).
pub fn event_last_seen(e: &Event) -> Option<DateTime<Utc>> {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| utc(&t.0)))
        .or(e.last_timestamp.as_ref().map(|t| utc(&t.0)))
        .or(e.event_time.as_ref().map(|t| utc(&t.0)))
        .or(e.first_timestamp.as_ref().map(|t| utc(&t.0)))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| utc(&t.0)))
}

/// How often an event happened (at least once).
pub fn event_count(e: &Event) -> u32 {
    let series = e.series.as_ref().and_then(|s| s.count);
    series.or(e.count).unwrap_or(1).max(1) as u32
}

/// A certificate's expiry, from a TLS Secret or a cert-manager Certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct CertFacts {
    /// `secret` or `certificate`.
    pub source: &'static str,
    pub namespace: String,
    pub name: String,
    pub not_after: Option<DateTime<Utc>>,
    /// Why the expiry is unknown, or a cert-manager Certificate's not-Ready message.
    pub problem: Option<String>,
    /// For a Certificate: the Secret it writes (so that Secret is not reported twice).
    pub secret_name: Option<String>,
}

/// A Kubernetes time as chrono's.
pub fn utc(t: &Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32).unwrap_or_default()
}

/// Millicores of a CPU quantity (`2`, `250m`, `123456789n`, `1.5`); 0 when unreadable.
pub fn cpu_milli(q: &Quantity) -> u64 {
    let s = q.0.trim();
    let (num, scale) = match s.char_indices().last() {
        Some((i, 'n')) => (&s[..i], 1e-6),
        Some((i, 'u')) => (&s[..i], 1e-3),
        Some((i, 'm')) => (&s[..i], 1.0),
        _ => (s, 1000.0),
    };
    num.parse::<f64>().map(|n| (n * scale) as u64).unwrap_or(0)
}

/// Bytes of a memory quantity (`128974848`, `129e6`, `123Mi`, `1G`, `512Ki`); 0 when unreadable.
pub fn bytes(q: &Quantity) -> u64 {
    let s = q.0.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("m", 1e-3),
    ];
    let (num, mult) = SUFFIXES
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((s, 1.0));
    num.parse::<f64>().map(|n| (n * mult) as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let q = |s: &str| Quantity(s.into());
        assert_eq!(cpu_milli(&q("2")), 2000);
        assert_eq!(cpu_milli(&q("250m")), 250);
        assert_eq!(cpu_milli(&q("1.5")), 1500);
        assert_eq!(cpu_milli(&q("123456789n")), 123);
        assert_eq!(cpu_milli(&q("garbage")), 0);
        assert_eq!(bytes(&q("512Ki")), 524288);
        assert_eq!(bytes(&q("1Gi")), 1073741824);
        assert_eq!(bytes(&q("129e6")), 129_000_000);
        assert_eq!(bytes(&q("1G")), 1_000_000_000);
        assert_eq!(bytes(&q("100")), 100);
    }
}
