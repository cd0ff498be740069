//! The gateway Service, its exposure (Ingress, or Tailscale through its operator) and the
//! NetworkPolicy that admits only what the exposure needs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyIngressRule,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta;
use crate::consts::*;
use crate::crd::agent::{IngressExpose, TailscaleExpose};
use crate::crd::{Agent, Exposure};

/// Namespace where the Tailscale Kubernetes operator runs its proxies.
const TAILSCALE_OPERATOR_NAMESPACE: &str = "tailscale";

pub fn service(agent: &Agent) -> Service {
    Service {
        metadata: meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(meta::selector_labels(agent, COMPONENT_GATEWAY)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: agent.spec.gateway.port.into(),
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn backend(agent: &Agent) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: meta::gateway_name(agent),
            port: Some(ServiceBackendPort {
                number: Some(agent.spec.gateway.port.into()),
                name: None,
            }),
        }),
        resource: None,
    }
}

/// The Ingress for an Ingress exposure, or for Tailscale in `operator` mode (class
/// `tailscale`); none otherwise.
pub fn ingress(agent: &Agent, exposure: &Exposure) -> Option<Ingress> {
    match exposure {
        Exposure::Ingress(ing) => Some(web_ingress(agent, ing)),
        Exposure::TailscaleOperator(ts) => Some(tailscale_ingress(agent, ts)),
        Exposure::None | Exposure::TailscaleSidecar(_) => None,
    }
}

fn web_ingress(agent: &Agent, ing: &IngressExpose) -> Ingress {
    let mut annotations = ing.annotations.clone();
    let tls = ing.tls.as_ref().map(|tls| {
        let secret_name = match (&tls.cluster_issuer, &tls.secret_name) {
            (_, Some(name)) => name.clone(),
            (Some(issuer), None) => {
                annotations.insert("cert-manager.io/cluster-issuer".into(), issuer.clone());
                meta::tls_secret_name(agent)
            }
            (None, None) => meta::tls_secret_name(agent),
        };
        vec![IngressTLS {
            hosts: Some(vec![ing.host.clone()]),
            secret_name: Some(secret_name),
        }]
    });
    let mut metadata = meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY);
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(ing.class_name.clone()),
            tls,
            rules: Some(vec![IngressRule {
                host: Some(ing.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(agent.spec.gateway.base_path().unwrap_or("/").into()),
                        path_type: "Prefix".into(),
                        backend: backend(agent),
                    }],
                }),
            }]),
            default_backend: None,
        }),
        ..Default::default()
    }
}

fn tailscale_ingress(agent: &Agent, ts: &TailscaleExpose) -> Ingress {
    let mut metadata = meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY);
    if ts.funnel {
        metadata.annotations = Some(BTreeMap::from([(
            "tailscale.com/funnel".to_string(),
            "true".to_string(),
        )]));
    }
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some("tailscale".into()),
            default_backend: Some(backend(agent)),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec![ts.hostname.clone()]),
                secret_name: None,
            }]),
            rules: None,
        }),
        ..Default::default()
    }
}

fn namespaces_peer(names: Vec<String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".into(),
                operator: "In".into(),
                values: Some(names),
            }]),
            match_labels: None,
        }),
        ..Default::default()
    }
}

/// Admits the gateway port only from this Agent's Cron and backup pods, the ingress controller or Tailscale
/// operator namespaces its exposure needs, and the namespaces the user lists. The Tailscale
/// sidecar reaches the gateway over loopback and needs no rule. Egress stays open: the gateway
/// talks to Telegram, the model API and the Kubernetes API.
pub fn network_policy(agent: &Agent, exposure: &Exposure) -> Option<NetworkPolicy> {
    let np = &agent.spec.gateway.network_policy;
    if !np.enabled {
        return None;
    }
    let mut peers = vec![NetworkPolicyPeer {
        pod_selector: Some(meta::selector(agent, COMPONENT_CRON)),
        ..Default::default()
    }];
    if agent.spec.backup.is_some() {
        peers.push(NetworkPolicyPeer {
            pod_selector: Some(meta::selector(agent, COMPONENT_BACKUP)),
            ..Default::default()
        });
    }
    let mut namespaces: Vec<String> = np.allow_from_namespaces.clone();
    match exposure {
        Exposure::Ingress(ing) => namespaces.extend(ing.controller_namespaces.iter().cloned()),
        Exposure::TailscaleOperator(_) => namespaces.push(TAILSCALE_OPERATOR_NAMESPACE.into()),
        Exposure::None | Exposure::TailscaleSidecar(_) => {}
    }
    namespaces.sort();
    namespaces.dedup();
    if !namespaces.is_empty() {
        peers.push(namespaces_peer(namespaces));
    }
    Some(NetworkPolicy {
        metadata: meta::object_meta(agent, meta::gateway_name(agent), COMPONENT_GATEWAY),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(meta::selector(agent, COMPONENT_GATEWAY)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(peers),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(agent.spec.gateway.port.into())),
                    protocol: Some("TCP".into()),
                    end_port: None,
                }]),
            }]),
            egress: None,
        }),
    })
}

/// The in-cluster URL of the gateway Service.
pub fn service_url(agent: &Agent) -> String {
    use kube::ResourceExt;
    format!(
        "http://{}.{}.svc:{}",
        meta::gateway_name(agent),
        agent.namespace().unwrap_or_else(|| "default".into()),
        agent.spec.gateway.port
    )
}
