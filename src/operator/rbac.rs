//! The operator's own ClusterRole: what it does, each rule with its reason, plus what it holds
//! only so that it may grant it (Kubernetes lets a subject create a Role or binding only with
//! every permission in it). The chart's `templates/clusterrole.yaml` is generated from this
//! (`make generate`), and a test holds it to the requests the operator makes.

use std::fmt::Write as _;

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::plan::build::rbac;

/// One rule of the operator's own and why it is needed.
pub struct Need {
    pub groups: &'static [&'static str],
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub why: &'static str,
}

/// What the operator does itself.
pub const NEEDS: &[Need] = &[
    Need {
        groups: &["clawops.dev"],
        resources: &["agents", "channels", "crons"],
        verbs: &["get", "list", "watch"],
        why: "reconciles Agents and resolves and watches each Agent's Channels and Crons",
    },
    Need {
        groups: &["clawops.dev"],
        resources: &["nodepairings"],
        verbs: &["list", "watch"],
        why: "watches each Agent's NodePairings",
    },
    Need {
        groups: &["clawops.dev"],
        resources: &["agents"],
        verbs: &["patch"],
        why: "adds and removes its finalizer, which deletes the Agent's ClusterRoleBinding",
    },
    Need {
        groups: &["clawops.dev"],
        resources: &[
            "agents/status",
            "channels/status",
            "crons/status",
            "nodepairings/status",
        ],
        verbs: &["patch"],
        why: "writes conditions, the URL and observed state",
    },
    Need {
        groups: &[""],
        resources: &["secrets"],
        verbs: &["get", "list", "watch", "create", "delete"],
        why: "checks the Secrets an Agent references (get) and watches those labelled \
              app.kubernetes.io/part-of=clawops; creates the gateway token and Tailscale state \
              Secrets once; prunes the state Secret when Tailscale is dropped",
    },
    Need {
        groups: &[""],
        resources: &["configmaps"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "applies gateway.json (server-side apply, which needs create for a new object), watches it, prunes what the spec dropped",
    },
    Need {
        groups: &[""],
        resources: &["services"],
        verbs: &["get", "list", "watch", "create", "patch"],
        why: "applies and watches the gateway Service",
    },
    Need {
        groups: &[""],
        resources: &["serviceaccounts"],
        verbs: &["get", "create", "patch"],
        why: "applies the gateway's ServiceAccount",
    },
    Need {
        groups: &[""],
        resources: &["persistentvolumeclaims"],
        verbs: &["get", "create"],
        why: "creates the gateway's state volume claim once (never rewritten, never deleted), and reads whether it is still Pending while the gateway is not available",
    },
    Need {
        groups: &[""],
        resources: &["pods"],
        verbs: &["list"],
        why: "lists the gateway's pods, only while its Deployment is not available, to say why in the Agent's status (image pull, crash loop, unschedulable)",
    },
    Need {
        groups: &["apps"],
        resources: &["deployments"],
        verbs: &["get", "list", "watch", "create", "patch"],
        why: "applies the gateway Deployment and watches its rollout",
    },
    Need {
        groups: &["batch"],
        resources: &["cronjobs"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "applies one CronJob per Cron and one for spec.backup, watches them, reads the backup one's status, prunes those of removed Crons",
    },
    Need {
        groups: &["batch"],
        resources: &["jobs"],
        verbs: &["get"],
        why: "reads the Job of the backup CronJob's last run, to tell in the Agent's status how it went",
    },
    Need {
        groups: &["networking.k8s.io"],
        resources: &["ingresses"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        why: "applies the Ingress exposure, watches its load balancer status, prunes it when dropped",
    },
    Need {
        groups: &["networking.k8s.io"],
        resources: &["networkpolicies"],
        verbs: &["get", "list", "create", "patch", "delete"],
        why: "applies the gateway's NetworkPolicy, prunes it when dropped",
    },
    Need {
        groups: &["rbac.authorization.k8s.io"],
        resources: &["roles", "rolebindings"],
        verbs: &["get", "create", "patch"],
        why: "applies the gateway's Role and RoleBinding",
    },
    Need {
        groups: &["rbac.authorization.k8s.io"],
        resources: &["clusterroles"],
        verbs: &["get"],
        why: "checks that the chart's read-only clawops-cluster-reader (and, for tools.podLogs, clawops-pod-log-reader) ClusterRole exists before binding a gateway to it",
    },
    Need {
        groups: &["rbac.authorization.k8s.io"],
        resources: &["clusterrolebindings"],
        verbs: &["get", "create", "patch", "delete"],
        why: "binds a gateway with clusterAccess: read to it, and unbinds it",
    },
    Need {
        groups: &["events.k8s.io"],
        resources: &["events"],
        verbs: &["create", "patch"],
        why: "records what it applied or refused on the Agent",
    },
];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(owned(groups)),
        resources: Some(owned(resources)),
        verbs: owned(verbs),
        ..Default::default()
    }
}

/// The rules the operator grants: the gateway's Role (with the Tailscale sidecar, its largest
/// form), the Cron runner's Role (with a Cron) — names dropped, as the operator must hold them
/// for every Agent — and the cluster reader, in that order.
pub fn granted_rules() -> Vec<PolicyRule> {
    let (gateway, cron_runner) = granted_roles();
    let mut out = gateway;
    out.extend(cron_runner);
    out.extend(rbac::cluster_reader_role().rules.unwrap_or_default());
    out.extend(rbac::pod_log_reader_role().rules.unwrap_or_default());
    for r in &mut out {
        r.resource_names = None;
    }
    out
}

/// The rules of the gateway's and the Cron runner's Roles in their largest forms.
fn granted_roles() -> (Vec<PolicyRule>, Vec<PolicyRule>) {
    let agent: crate::crd::Agent = serde_json::from_value(serde_json::json!({
        "apiVersion": "clawops.dev/v1alpha1", "kind": "Agent",
        "metadata": {"name": "any", "namespace": "any"},
        "spec": {
            "identity": {"name": "any"},
            "model": {"primary": "zai/glm-4.7"},
            "gateway": {"expose": {"tailscale": {"hostname": "any", "mode": "sidecar",
                "authKeySecretRef": {"name": "any", "key": "any"}}}},
        },
    }))
    .expect("a minimal Agent deserializes");
    let cron: crate::crd::Cron = serde_json::from_value(serde_json::json!({
        "apiVersion": "clawops.dev/v1alpha1", "kind": "Cron",
        "metadata": {"name": "any", "namespace": "any"},
        "spec": {"agentRef": "any", "schedule": "@daily", "message": "any"},
    }))
    .expect("a minimal Cron deserializes");
    (
        rbac::role(&agent, &agent.spec.gateway.exposure())
            .rules
            .unwrap_or_default(),
        rbac::cron_role(&agent, &[cron]).rules.unwrap_or_default(),
    )
}

/// The whole ClusterRole's rules: the operator's needs, then what it holds to grant.
pub fn rules() -> Vec<PolicyRule> {
    NEEDS
        .iter()
        .map(|n| rule(n.groups, n.resources, n.verbs))
        .chain(granted_rules())
        .collect()
}

fn list(xs: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let quoted: Vec<String> = xs
        .into_iter()
        .map(|x| format!("\"{}\"", x.as_ref()))
        .collect();
    format!("[{}]", quoted.join(", "))
}

fn write_rule(out: &mut String, r: &PolicyRule) {
    let _ = writeln!(
        out,
        "  - apiGroups: {}\n    resources: {}\n    verbs: {}",
        list(r.api_groups.iter().flatten()),
        list(r.resources.iter().flatten()),
        list(&r.verbs)
    );
}

/// The chart's `templates/cluster-reader.yaml`: the read-only cluster view that gateways with
/// `clusterAccess: read` are bound to. The chart owns it so that uninstalling removes it.
pub fn cluster_reader_template() -> String {
    let mut out = String::from(
        "# Generated by `make generate` from src/plan/build/rbac.rs; do not edit.\n\
         # The read-only view of the cluster that the operator binds gateways with\n\
         # clusterAccess: read to (no write verb, no Secrets), and the pod log reader it binds\n\
         # only to those whose Agent sets tools.podLogs. The chart owns them, so uninstalling\n\
         # removes them; the operator only checks that they exist.\n\
         {{- if .Values.rbac.create }}\n",
    );
    for (i, role) in [rbac::cluster_reader_role(), rbac::pod_log_reader_role()]
        .iter()
        .enumerate()
    {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\n\
             kind: ClusterRole\n\
             metadata:\n  name: {}\n  labels:\n\
             {{{{- include \"clawops.labels\" . | nindent 4 }}}}\n\
             rules:\n",
            role.metadata.name.as_deref().unwrap_or_default()
        ));
        for r in role.rules.iter().flatten() {
            write_rule(&mut out, r);
        }
    }
    out.push_str("{{- end }}\n");
    out
}

/// The chart's `templates/clusterrole.yaml`: the rules with their reasons as comments.
pub fn helm_template() -> String {
    let mut out = String::from(
        "# Generated by `make generate` from src/operator/rbac.rs; do not edit.\n\
         # The operator's ClusterRole: every rule says why it is needed.\n\
         {{- if .Values.rbac.create }}\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: ClusterRole\n\
         metadata:\n  name: {{ include \"clawops.fullname\" . }}\n  labels:\n    {{- include \"clawops.labels\" . | nindent 4 }}\n\
         rules:\n",
    );
    for n in NEEDS {
        let _ = writeln!(out, "  # {}", n.why);
        write_rule(&mut out, &rule(n.groups, n.resources, n.verbs));
    }
    out.push_str(
        "  # Held only to grant them: Kubernetes lets the operator create the gateway's and the Cron\n  \
         # runner's Roles and bind clawops-cluster-reader only if it holds every permission in\n  \
         # them. The gateway's Role (clawops.dev reads and status, NodePairings watched and written,\n  \
         # Events, the Tailscale state Secret):\n",
    );
    let (gateway, cron_runner) = granted_roles();
    let granted = granted_rules();
    let cron_start = gateway.len();
    let reader_start = cron_start + cron_runner.len();
    for (i, r) in granted.iter().enumerate() {
        if i == cron_start {
            out.push_str(
                "  # The Cron runner's Role (its Agent's Crons' status, by name, and Events):\n",
            );
        }
        if i == reader_start {
            out.push_str("  # The read-only cluster view of clusterAccess: read (no Secrets):\n");
        }
        write_rule(&mut out, r);
    }
    out.push_str("{{- end }}\n");
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::ClusterRole;

    use super::*;

    #[test]
    fn the_role_holds_everything_it_grants_and_no_write_on_the_cluster_view() {
        let role = rules();
        for g in granted_rules() {
            assert!(role.contains(&g), "missing {g:?}");
        }
        for r in rbac::cluster_reader_role().rules.unwrap() {
            assert!(
                r.verbs
                    .iter()
                    .all(|v| ["get", "list", "watch"].contains(&v.as_str()))
            );
        }
        // Never a wildcard, never escalate/bind/impersonate.
        for r in &role {
            for v in &r.verbs {
                assert!(
                    !["*", "escalate", "bind", "impersonate"].contains(&v.as_str()),
                    "{r:?}"
                );
            }
            assert!(!r.resources.iter().flatten().any(|x| x == "*"), "{r:?}");
        }
    }

    #[test]
    fn the_template_has_a_reason_per_rule() {
        let t = helm_template();
        assert_eq!(t.matches("  - apiGroups:").count(), rules().len());
        for n in NEEDS {
            assert!(t.contains(&format!("  # {}\n", n.why)));
        }
        assert!(t.starts_with("# Generated by `make generate`"));
    }

    #[test]
    fn the_charts_cluster_reader_is_the_role_gateways_are_bound_to() {
        let t = cluster_reader_template();
        assert!(t.contains("{{- if .Values.rbac.create }}\n"));
        // Without the template lines, it is the role the operator binds, rule for rule.
        let plain: String = t
            .lines()
            .filter(|l| !l.trim_start().starts_with("{{"))
            .map(|l| format!("{l}\n"))
            .collect();
        let parsed: Vec<ClusterRole> = serde_yaml::Deserializer::from_str(&plain)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let roles = [rbac::cluster_reader_role(), rbac::pod_log_reader_role()];
        assert_eq!(parsed.len(), roles.len());
        for (parsed, role) in parsed.iter().zip(&roles) {
            assert_eq!(parsed.metadata.name, role.metadata.name);
            assert_eq!(parsed.rules, role.rules);
        }
        assert_eq!(
            parsed[0].metadata.name.as_deref(),
            Some(crate::consts::CLUSTER_READER_ROLE)
        );
        assert_eq!(
            parsed[1].metadata.name.as_deref(),
            Some(crate::consts::POD_LOG_READER_ROLE)
        );
    }
}
