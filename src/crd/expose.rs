//! `spec.gateway.expose`, as the user writes it: an Ingress or a Tailscale exposure, each with
//! its options. What it means for the builders is [`super::Exposure`].

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// Exposure: exactly one of `ingress` or `tailscale`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.ingress) != has(self.tailscale)").message("set exactly one of expose.ingress or expose.tailscale"))]
#[serde(rename_all = "camelCase")]
pub struct Expose {
    /// Expose through an Ingress (Traefik on k3s by default) with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressExpose>,
    /// Expose on a Tailscale tailnet as `https://<hostname>.<tailnet>.ts.net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tailscale: Option<TailscaleExpose>,
}

/// Ingress exposure.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressExpose {
    /// Host name the Ingress answers for, e.g. `shrimp.example.com`.
    #[schemars(
        regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]([-a-z0-9]*[a-z0-9])?$"),
        length(max = 253)
    )]
    pub host: String,
    /// IngressClass to use.
    #[serde(default = "default_ingress_class")]
    pub class_name: String,
    /// TLS for the host; omit to serve plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTls>,
    /// Extra annotations for the Ingress (e.g. Traefik middlewares).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Namespaces where the ingress controller runs; the NetworkPolicy admits them.
    #[serde(default = "default_controller_namespaces")]
    pub controller_namespaces: Vec<String>,
}

fn default_ingress_class() -> String {
    "traefik".into()
}

fn default_controller_namespaces() -> Vec<String> {
    vec!["kube-system".into()]
}

/// TLS: exactly one of `clusterIssuer` (cert-manager) or `secretName` (existing certificate).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.clusterIssuer) != has(self.secretName)").message("set exactly one of tls.clusterIssuer or tls.secretName"))]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// cert-manager ClusterIssuer that issues the certificate into `<agent>-gateway-tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_issuer: Option<String>,
    /// An existing `kubernetes.io/tls` Secret in the Agent's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// Tailscale exposure.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.mode != 'sidecar' || has(self.authKeySecretRef)").message("tailscale.authKeySecretRef is required with mode sidecar"))]
#[serde(rename_all = "camelCase")]
pub struct TailscaleExpose {
    /// Machine name on the tailnet: the URL becomes `https://<hostname>.<tailnet>.ts.net`.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub hostname: String,
    /// `sidecar` runs the official Tailscale container in the gateway pod (userspace, state in a
    /// Secret, serve HTTPS 443); `operator` asks an installed Tailscale Kubernetes operator.
    #[serde(default)]
    pub mode: TailscaleMode,
    /// Secret key holding a Tailscale auth key (sidecar mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_secret_ref: Option<SecretKeyRef>,
    /// Also publish on the public internet with Tailscale Funnel.
    #[serde(default)]
    pub funnel: bool,
    /// Image of the Tailscale sidecar; defaults to a pinned release (see the README), so a pod
    /// runs the version it was tested with. Set a newer tag here to upgrade.
    #[serde(default = "default_tailscale_image")]
    pub image: String,
}

/// Tailscale exposure mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TailscaleMode {
    #[default]
    Sidecar,
    Operator,
}

fn default_tailscale_image() -> String {
    crate::consts::TAILSCALE_IMAGE.into()
}
