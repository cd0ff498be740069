//! The kinds the cluster tools read, and the one place a kind named by the model is accepted,
//! refused (Secrets, whatever the spelling) or rejected (anything not on the list).

use crate::gateway::tools::ToolError;

/// A kind the assistant may read. There is deliberately no catch-all: what is not here cannot
/// be reached, so no spelling of a request gets to Secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pods,
    Deployments,
    StatefulSets,
    DaemonSets,
    Jobs,
    CronJobs,
    Services,
    Ingresses,
    Nodes,
    PersistentVolumeClaims,
    Events,
    Namespaces,
    ConfigMaps,
}

pub const SECRETS_REFUSED: &str = "secrets are never readable by the assistant";

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Pods,
        Kind::Deployments,
        Kind::StatefulSets,
        Kind::DaemonSets,
        Kind::Jobs,
        Kind::CronJobs,
        Kind::Services,
        Kind::Ingresses,
        Kind::Nodes,
        Kind::PersistentVolumeClaims,
        Kind::Events,
        Kind::Namespaces,
        Kind::ConfigMaps,
    ];

    /// The resource name, as in RBAC rules and the `kind` argument's schema.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Deployments => "deployments",
            Kind::StatefulSets => "statefulsets",
            Kind::DaemonSets => "daemonsets",
            Kind::Jobs => "jobs",
            Kind::CronJobs => "cronjobs",
            Kind::Services => "services",
            Kind::Ingresses => "ingresses",
            Kind::Nodes => "nodes",
            Kind::PersistentVolumeClaims => "persistentvolumeclaims",
            Kind::Events => "events",
            Kind::Namespaces => "namespaces",
            Kind::ConfigMaps => "configmaps",
        }
    }

    /// The object's kind, as in `involvedObject.kind` of its events.
    pub fn camel(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::Deployments => "Deployment",
            Kind::StatefulSets => "StatefulSet",
            Kind::DaemonSets => "DaemonSet",
            Kind::Jobs => "Job",
            Kind::CronJobs => "CronJob",
            Kind::Services => "Service",
            Kind::Ingresses => "Ingress",
            Kind::Nodes => "Node",
            Kind::PersistentVolumeClaims => "PersistentVolumeClaim",
            Kind::Events => "Event",
            Kind::Namespaces => "Namespace",
            Kind::ConfigMaps => "ConfigMap",
        }
    }

    /// One object of the kind, in messages ("no pod x in namespace y").
    pub fn singular(self) -> &'static str {
        match self {
            Kind::PersistentVolumeClaims => "persistentvolumeclaim",
            Kind::Ingresses => "ingress",
            other => other.plural().strip_suffix('s').unwrap_or(other.plural()),
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Nodes | Kind::Namespaces)
    }

    /// The kind the model named: plural, singular, kubectl's short name or the object's kind, in
    /// any case. Secrets are refused before anything else is looked at.
    pub fn parse(given: &str) -> Result<Kind, ToolError> {
        let k = given.trim().to_ascii_lowercase();
        if k.contains("secret") {
            return Err(ToolError::Refused(SECRETS_REFUSED.into()));
        }
        let short = match k.as_str() {
            "po" => Some(Kind::Pods),
            "deploy" => Some(Kind::Deployments),
            "sts" => Some(Kind::StatefulSets),
            "ds" => Some(Kind::DaemonSets),
            "cj" => Some(Kind::CronJobs),
            "svc" => Some(Kind::Services),
            "ing" => Some(Kind::Ingresses),
            "no" => Some(Kind::Nodes),
            "pvc" | "pvcs" => Some(Kind::PersistentVolumeClaims),
            "ev" => Some(Kind::Events),
            "ns" => Some(Kind::Namespaces),
            "cm" => Some(Kind::ConfigMaps),
            _ => None,
        };
        short
            .or_else(|| {
                Kind::ALL.into_iter().find(|kind| {
                    k == kind.plural() || k == kind.singular() || k == kind.camel().to_lowercase()
                })
            })
            .ok_or_else(|| {
                ToolError::BadArguments(format!(
                    "kind `{}` is not readable; use one of: {}",
                    given.trim(),
                    Kind::ALL.map(Kind::plural).join(", ")
                ))
            })
    }
}

/// Kinds whose events are worth asking for although the assistant cannot read the objects.
const EVENT_ONLY: &[(&str, &str)] = &[
    ("replicaset", "ReplicaSet"),
    ("rs", "ReplicaSet"),
    ("persistentvolume", "PersistentVolume"),
    ("pv", "PersistentVolume"),
    ("horizontalpodautoscaler", "HorizontalPodAutoscaler"),
    ("hpa", "HorizontalPodAutoscaler"),
];

/// The `involvedObject.kind` of events the model asks for: a readable kind, a few that only
/// appear in events, or a kind spelled as the API spells it (`Certificate`). Secrets' events
/// are refused like Secrets, so the rule stays one rule.
pub fn event_kind(given: &str) -> Result<String, ToolError> {
    match Kind::parse(given) {
        Ok(kind) => return Ok(kind.camel().to_string()),
        Err(refused @ ToolError::Refused(_)) => return Err(refused),
        Err(_) => {}
    }
    let k = given.trim();
    let lower = k.to_ascii_lowercase();
    let lower = lower.strip_suffix('s').unwrap_or(&lower);
    if let Some((_, camel)) = EVENT_ONLY.iter().find(|(name, _)| *name == lower) {
        return Ok(camel.to_string());
    }
    let spelled_as_api = k.len() <= 63
        && k.starts_with(|c: char| c.is_ascii_uppercase())
        && k.chars().all(|c| c.is_ascii_alphanumeric());
    if spelled_as_api {
        Ok(k.to_string())
    } else {
        Err(ToolError::BadArguments(format!(
            "kind `{k}` is not a kind; use one of: {}, or a kind as the API spells it (ReplicaSet)",
            Kind::ALL.map(Kind::plural).join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_kind_is_accepted() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.plural()), Ok(k));
            assert_eq!(Kind::parse(k.singular()), Ok(k));
            assert_eq!(Kind::parse(k.camel()), Ok(k));
            assert_eq!(Kind::parse(&k.plural().to_uppercase()), Ok(k));
        }
        assert_eq!(Kind::parse(" PVC "), Ok(Kind::PersistentVolumeClaims));
        assert_eq!(Kind::parse("pvcs"), Ok(Kind::PersistentVolumeClaims));
        assert_eq!(Kind::parse("svc"), Ok(Kind::Services));
        assert_eq!(Kind::parse("Ingress"), Ok(Kind::Ingresses));
    }

    #[test]
    fn secrets_are_refused_in_any_spelling() {
        for s in [
            "secrets",
            "secret",
            "Secret",
            "SECRETS",
            " secrets ",
            "v1/secrets",
            "sealedsecrets",
        ] {
            assert_eq!(
                Kind::parse(s),
                Err(ToolError::Refused(SECRETS_REFUSED.into())),
                "{s}"
            );
            assert!(matches!(event_kind(s), Err(ToolError::Refused(_))), "{s}");
        }
    }

    #[test]
    fn other_kinds_are_rejected_with_the_list() {
        for s in ["serviceaccounts", "roles", "", "pods/exec", "*"] {
            let Err(ToolError::BadArguments(m)) = Kind::parse(s) else {
                panic!("{s} accepted");
            };
            assert!(m.contains("pods, deployments"), "{m}");
        }
    }

    #[test]
    fn event_kinds() {
        assert_eq!(event_kind("pod").unwrap(), "Pod");
        assert_eq!(event_kind("replicasets").unwrap(), "ReplicaSet");
        assert_eq!(event_kind("HPA").unwrap(), "HorizontalPodAutoscaler");
        assert_eq!(event_kind("Certificate").unwrap(), "Certificate");
        assert!(event_kind("certificate x").is_err());
        assert!(event_kind("../pods").is_err());
    }
}
