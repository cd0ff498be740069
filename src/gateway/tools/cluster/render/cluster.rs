//! Cluster-scoped objects as text: Nodes (readiness, roles, version, capacity, pressures,
//! taints) and Namespaces.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Namespace, Node};

use super::{Render, condition, created, heading, mib, name_of};
use crate::patrol::cluster::facts::{bytes, cpu_milli};

/// kubectl's node STATUS: `Ready`, `NotReady`, `Unknown`, with `,SchedulingDisabled`.
fn node_status(n: &Node) -> String {
    let ready = n
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .find(|c| c.type_ == "Ready");
    let mut s = match ready.map(|c| c.status.as_str()) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        s.push_str(",SchedulingDisabled");
    }
    s
}

fn roles(n: &Node) -> String {
    let roles: Vec<&str> = n
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn internal_ip(n: &Node) -> &str {
    n.status
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.as_str())
        .unwrap_or("-")
}

impl Render for Node {
    const HEADER: &'static str = "NAME  STATUS  ROLES  AGE  VERSION  INTERNAL-IP";

    fn row(&self, now: DateTime<Utc>) -> String {
        let version = self
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.as_str())
            .unwrap_or("-");
        format!(
            "{}  {}  {}  {}  {version}  {}",
            name_of(&self.metadata),
            node_status(self),
            roles(self),
            created(now, &self.metadata),
            internal_ip(self)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("node", &self.metadata, now);
        let st = self.status.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\nstatus: {}  roles: {}  internalIP: {}",
            node_status(self),
            roles(self),
            internal_ip(self)
        );
        if let Some(i) = &st.node_info {
            let _ = write!(
                out,
                "\nversion: {}  os: {} {} ({})  kernel: {}  runtime: {}",
                i.kubelet_version,
                i.operating_system,
                i.architecture,
                i.os_image,
                i.kernel_version,
                i.container_runtime_version
            );
        }
        for (what, list) in [("capacity", &st.capacity), ("allocatable", &st.allocatable)] {
            let Some(l) = list else { continue };
            let _ = write!(
                out,
                "\n{what}: cpu {}m, memory {}Mi, pods {}",
                l.get("cpu").map(cpu_milli).unwrap_or(0),
                mib(l.get("memory").map(bytes).unwrap_or(0)),
                l.get("pods").map(|q| q.0.as_str()).unwrap_or("-")
            );
        }
        // Ready is news when it is not True; the pressures when they are.
        let bad: Vec<String> = st
            .conditions
            .iter()
            .flatten()
            .filter(|c| (c.type_ == "Ready") != (c.status == "True"))
            .map(|c| {
                condition(
                    &c.type_,
                    &c.status,
                    c.reason.as_deref(),
                    c.message.as_deref(),
                )
            })
            .collect();
        if !bad.is_empty() {
            let _ = write!(out, "\nconditions: {}", bad.join("; "));
        }
        let taints: Vec<String> = self
            .spec
            .iter()
            .flat_map(|s| s.taints.iter().flatten())
            .map(|t| {
                let value = t
                    .value
                    .as_deref()
                    .map(|v| format!("={v}"))
                    .unwrap_or_default();
                format!("{}{value}:{}", t.key, t.effect)
            })
            .collect();
        if !taints.is_empty() {
            let _ = write!(out, "\ntaints: {}", taints.join(", "));
        }
        out
    }
}

impl Render for Namespace {
    const HEADER: &'static str = "NAME  STATUS  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        format!(
            "{}  {}  {}",
            name_of(&self.metadata),
            phase(self),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("namespace", &self.metadata, now);
        let _ = write!(out, "\nstatus: {}", phase(self));
        for c in self
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
        {
            if c.status == "True" {
                let _ = write!(
                    out,
                    "\n{}",
                    condition(
                        &c.type_,
                        &c.status,
                        c.reason.as_deref(),
                        c.message.as_deref()
                    )
                );
            }
        }
        out
    }
}

fn phase(n: &Namespace) -> &str {
    n.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Active")
}
