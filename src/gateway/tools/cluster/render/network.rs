//! Services and Ingresses as text: type, addresses and ports; hosts, paths and their backends.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressServiceBackend};

use super::{Render, created, heading, name_of, pairs};

/// `80:30080/TCP,443/TCP`.
fn ports(s: &Service) -> String {
    let ports: Vec<String> = s
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            let node = p.node_port.map(|n| format!(":{n}")).unwrap_or_default();
            format!(
                "{}{node}/{}",
                p.port,
                p.protocol.as_deref().unwrap_or("TCP")
            )
        })
        .collect();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn lb_addresses(ingress: Option<&Vec<LoadBalancerIngress>>) -> Vec<String> {
    ingress
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
        .collect()
}

/// kubectl's EXTERNAL-IP: a load balancer's addresses (`<pending>` until it has one), the
/// external IPs, or an ExternalName's name.
fn external(s: &Service) -> String {
    let spec = s.spec.clone().unwrap_or_default();
    let lb = lb_addresses(
        s.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref()),
    );
    let mut ips = spec.external_ips.unwrap_or_default();
    match spec.type_.as_deref() {
        Some("ExternalName") => spec.external_name.unwrap_or_else(|| "<none>".into()),
        Some("LoadBalancer") if lb.is_empty() && ips.is_empty() => "<pending>".into(),
        _ => {
            ips.extend(lb);
            if ips.is_empty() {
                "<none>".into()
            } else {
                ips.join(",")
            }
        }
    }
}

impl Render for Service {
    const HEADER: &'static str = "NAMESPACE/NAME  TYPE  CLUSTER-IP  EXTERNAL-IP  PORTS  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let spec = self.spec.clone().unwrap_or_default();
        format!(
            "{}  {}  {}  {}  {}  {}",
            name_of(&self.metadata),
            spec.type_.as_deref().unwrap_or("ClusterIP"),
            spec.cluster_ip.as_deref().unwrap_or("<none>"),
            external(self),
            ports(self),
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("service", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let _ = write!(
            out,
            "\ntype: {}  clusterIP: {}  external: {}",
            spec.type_.as_deref().unwrap_or("ClusterIP"),
            spec.cluster_ip.as_deref().unwrap_or("<none>"),
            external(self)
        );
        match spec.selector.as_ref().filter(|s| !s.is_empty()) {
            Some(sel) => {
                let _ = write!(out, "\nselector: {}", pairs(sel));
            }
            None => out.push_str("\nselector: none (endpoints managed by hand)"),
        }
        for p in spec.ports.iter().flatten() {
            let target = p.target_port.as_ref().map(|t| match t {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i) => i.to_string(),
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
            });
            let _ = write!(
                out,
                "\nport {}{}/{} → {}{}",
                p.name
                    .as_deref()
                    .map(|n| format!("{n} "))
                    .unwrap_or_default(),
                p.port,
                p.protocol.as_deref().unwrap_or("TCP"),
                target.unwrap_or_else(|| p.port.to_string()),
                p.node_port
                    .map(|n| format!(" (nodePort {n})"))
                    .unwrap_or_default()
            );
        }
        if let Some(policy) = spec.external_traffic_policy.filter(|p| p != "Cluster") {
            let _ = write!(out, "\nexternalTrafficPolicy: {policy}");
        }
        out
    }
}

fn backend(b: Option<&IngressServiceBackend>) -> String {
    let Some(b) = b else {
        return "-".into();
    };
    let port = b
        .port
        .as_ref()
        .and_then(|p| p.number.map(|n| n.to_string()).or_else(|| p.name.clone()));
    format!("{}:{}", b.name, port.unwrap_or_else(|| "-".into()))
}

fn hosts(i: &Ingress) -> String {
    let hosts: Vec<&str> = i
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .map(|r| r.host.as_deref().unwrap_or("*"))
        .collect();
    if hosts.is_empty() {
        "*".into()
    } else {
        hosts.join(",")
    }
}

fn address(i: &Ingress) -> String {
    let lb = i
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref());
    let all: Vec<String> = lb
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or(i.hostname.clone()))
        .collect();
    if all.is_empty() {
        "<pending>".into()
    } else {
        all.join(",")
    }
}

fn class(i: &Ingress) -> &str {
    i.spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .unwrap_or("<none>")
}

impl Render for Ingress {
    const HEADER: &'static str = "NAMESPACE/NAME  CLASS  HOSTS  ADDRESS  PORTS  AGE";

    fn row(&self, now: DateTime<Utc>) -> String {
        let tls = self
            .spec
            .as_ref()
            .is_some_and(|s| s.tls.as_ref().is_some_and(|t| !t.is_empty()));
        format!(
            "{}  {}  {}  {}  {}  {}",
            name_of(&self.metadata),
            class(self),
            hosts(self),
            address(self),
            if tls { "80,443" } else { "80" },
            created(now, &self.metadata)
        )
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let mut out = heading("ingress", &self.metadata, now);
        let spec = self.spec.clone().unwrap_or_default();
        let _ = write!(out, "\nclass: {}  address: {}", class(self), address(self));
        if let Some(d) = &spec.default_backend {
            let _ = write!(out, "\ndefault backend: {}", backend(d.service.as_ref()));
        }
        for r in spec.rules.iter().flatten() {
            let host = r.host.as_deref().unwrap_or("*");
            for p in r.http.iter().flat_map(|h| &h.paths) {
                let _ = write!(
                    out,
                    "\n{host}{} ({}) → {}",
                    p.path.as_deref().unwrap_or("/"),
                    p.path_type,
                    backend(p.backend.service.as_ref())
                );
            }
        }
        // Which Secret holds the certificate is left out: no tool names Secrets.
        for t in spec.tls.iter().flatten() {
            let _ = write!(
                out,
                "\ntls: {}",
                t.hosts.as_deref().unwrap_or_default().join(",")
            );
        }
        out
    }
}
