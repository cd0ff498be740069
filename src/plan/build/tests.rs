//! Builder tests on the example Agents.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, EnvVar};
use kube::ResourceExt;
use serde_json::Value;

use super::*;
use crate::crd::agent::{TailscaleExpose, TailscaleMode};
use crate::manifests::Manifests;

pub(super) fn example(file: &str) -> Manifests {
    Manifests::from_files(
        &[format!(
            "{}/manifests/examples/{file}",
            env!("CARGO_MANIFEST_DIR")
        )],
        "claw",
    )
    .unwrap()
}

pub(super) fn build_from(m: &Manifests, digest: &str) -> GatewayObjects {
    let mut resolved = crate::plan::resolve::assemble(
        Arc::new(m.agents[0].clone()),
        m.channels.clone(),
        m.crons.clone(),
        |_| None,
    );
    resolved.skip_secret_checks();
    let mut plan = crate::plan::plan(&resolved, crate::plan::RunsIn::Cluster).unwrap();
    plan.secret_digest = digest.into();
    build_all(&plan, "img:1")
}

pub(super) fn env<'a>(c: &'a Container, name: &str) -> &'a EnvVar {
    c.env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

fn config(o: &GatewayObjects) -> Value {
    serde_json::from_str(&o.config_map.data.as_ref().unwrap()["gateway.json"]).unwrap()
}

#[test]
fn deployment_is_single_replica_recreate_probed_and_restricted() {
    let o = build_from(&example("shrimp.yaml"), "d1");
    let d = o.deployment.spec.as_ref().unwrap();
    assert_eq!(d.replicas, Some(1));
    assert_eq!(
        d.strategy.as_ref().unwrap().type_.as_deref(),
        Some("Recreate")
    );
    let pod = d.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("shrimp-gateway"));
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("img:1"));
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 18789);
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(path(&c.liveness_probe), "/healthz");
    assert_eq!(path(&c.readiness_probe), "/readyz");
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert!(limits.contains_key("memory"));
    // Secrets only through secretKeyRef, named as standalone mode reads them.
    for (name, secret, key) in [
        ("TELEGRAM_BOT_TOKEN", "shrimp-secrets", "telegram-bot-token"),
        ("ZAI_API_KEY", "shrimp-secrets", "zai-api-key"),
        ("CLAWOPS_GATEWAY_TOKEN", "shrimp-gateway-token", "token"),
    ] {
        let e = env(c, name);
        assert!(e.value.is_none());
        let r = e
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), (secret, key));
    }
    // The config directory is mounted whole (no subPath), state on the PVC.
    let mounts = c.volume_mounts.as_ref().unwrap();
    assert!(mounts.iter().all(|m| m.sub_path.is_none()));
    let vols = pod.volumes.as_ref().unwrap();
    assert_eq!(
        vols.iter()
            .find(|v| v.name == "state")
            .unwrap()
            .persistent_volume_claim
            .as_ref()
            .unwrap()
            .claim_name,
        "shrimp-gateway-state"
    );
}

/// The hash of config and Secret data on the gateway's pod template.
pub(super) fn config_hash(o: &GatewayObjects) -> String {
    o.deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[crate::consts::ANNOTATION_CONFIG_HASH]
        .clone()
}

#[test]
fn content_hash_follows_config_and_secret_data() {
    let m = example("shrimp.yaml");
    let hash = config_hash;
    let a = hash(&build_from(&m, "digest-a"));
    assert_eq!(a, hash(&build_from(&m, "digest-a")), "stable");
    assert_ne!(
        a,
        hash(&build_from(&m, "digest-b")),
        "secret data change rolls the pod"
    );
    let mut m2 = m.clone();
    m2.agents[0].spec.identity.persona = Some("different".into());
    assert_ne!(
        a,
        hash(&build_from(&m2, "digest-a")),
        "config change rolls the pod"
    );
}

#[test]
fn gateway_config_names_env_vars_never_values() {
    let o = build_from(&example("shrimp.yaml"), "digest-that-must-not-appear");
    let c = config(&o);
    assert_eq!(c["agent"]["model"]["primary"], "zai/glm-4.7");
    assert_eq!(c["agent"]["model"]["apiKeyEnv"], "ZAI_API_KEY");
    assert_eq!(c["agent"]["maxConcurrent"], 1);
    assert_eq!(c["agent"]["heartbeat"]["every"], "0m");
    assert_eq!(c["agent"]["userTimezone"], "Asia/Shanghai");
    assert_eq!(c["agent"]["timeFormat"], "24");
    assert_eq!(c["gateway"]["auth"]["tokenEnv"], "CLAWOPS_GATEWAY_TOKEN");
    assert_eq!(c["gateway"]["publicUrl"], "https://shrimp.example.com");
    assert_eq!(
        c["channels"][0]["telegram"]["botTokenEnv"],
        "TELEGRAM_BOT_TOKEN"
    );
    assert_eq!(c["channels"][0]["telegram"]["dmPolicy"], "pairing");
    assert_eq!(c["channels"][0]["telegram"]["groupPolicy"], "disabled");
    assert_eq!(c["crons"].as_array().unwrap().len(), 2);
    assert_eq!(c["crons"][0]["deliver"]["to"], "123456789");
    assert_eq!(c["kubernetes"]["namespace"], "claw");
    let text = &o.config_map.data.as_ref().unwrap()["gateway.json"];
    assert!(!text.contains("digest-that-must-not-appear"));
    // The gateway reads it back with unknown fields refused.
    let parsed: crate::plan::gateway_config::GatewayConfig = serde_json::from_str(text).unwrap();
    assert_eq!(parsed.agent.id, "shrimp");
}

#[test]
fn ingress_uses_traefik_and_cert_manager_or_a_given_secret() {
    let mut m = example("shrimp.yaml");
    let o = build_from(&m, "d");
    let ing = o.ingress.unwrap();
    let spec = ing.spec.as_ref().unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("traefik"));
    assert_eq!(
        ing.annotations()["cert-manager.io/cluster-issuer"],
        "letsencrypt-prod"
    );
    let tls = &spec.tls.as_ref().unwrap()[0];
    assert_eq!(tls.secret_name.as_deref(), Some("shrimp-gateway-tls"));
    assert_eq!(tls.hosts, Some(vec!["shrimp.example.com".to_string()]));
    let rule = &spec.rules.as_ref().unwrap()[0];
    let backend = rule.http.as_ref().unwrap().paths[0]
        .backend
        .service
        .as_ref()
        .unwrap();
    assert_eq!(
        (backend.name.as_str(), backend.port.as_ref().unwrap().number),
        ("shrimp-gateway", Some(18789))
    );

    let tls = m.agents[0]
        .spec
        .gateway
        .expose
        .as_mut()
        .unwrap()
        .ingress
        .as_mut()
        .unwrap()
        .tls
        .as_mut()
        .unwrap();
    tls.cluster_issuer = None;
    tls.secret_name = Some("my-cert".into());
    // Under a path prefix, the Ingress routes only the prefix.
    m.agents[0].spec.gateway.control_ui = Some(crate::crd::agent::ControlUiSpec {
        base_path: Some("/clawops".into()),
    });
    let ing = build_from(&m, "d").ingress.unwrap();
    let path = &ing.spec.as_ref().unwrap().rules.as_ref().unwrap()[0]
        .http
        .as_ref()
        .unwrap()
        .paths[0];
    assert_eq!(
        (path.path.as_deref(), path.path_type.as_str()),
        (Some("/clawops"), "Prefix")
    );
    assert!(ing.metadata.annotations.is_none());
    assert_eq!(
        ing.spec.unwrap().tls.unwrap()[0].secret_name.as_deref(),
        Some("my-cert")
    );
}

#[test]
fn tailscale_sidecar_is_userspace_with_state_secret_and_serve_config() {
    let o = build_from(&example("shrimp-tailscale.yaml"), "d");
    assert!(o.ingress.is_none());
    let pod = o
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let ts = pod
        .containers
        .iter()
        .find(|c| c.name == "tailscale")
        .expect("sidecar");
    assert_eq!(env(ts, "TS_USERSPACE").value.as_deref(), Some("true"));
    assert_eq!(
        env(ts, "TS_KUBE_SECRET").value.as_deref(),
        Some("shrimp-tailscale-state")
    );
    assert_eq!(env(ts, "TS_HOSTNAME").value.as_deref(), Some("shrimp"));
    assert_eq!(
        env(ts, "TS_SERVE_CONFIG").value.as_deref(),
        Some("/etc/tailscale/serve.json")
    );
    let key = env(ts, "TS_AUTHKEY")
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("shrimp-secrets", "tailscale-auth-key")
    );
    assert_eq!(
        o.tailscale_state.as_ref().unwrap().name_any(),
        "shrimp-tailscale-state"
    );
    assert!(
        o.tailscale_serve.as_ref().unwrap().data.as_ref().unwrap()["serve.json"]
            .contains("http://127.0.0.1:18789")
    );
    // The Role lets containerboot use exactly its state Secret.
    let rules = o.role.rules.as_ref().unwrap();
    let secret_rule = rules
        .iter()
        .find(|r| {
            r.resources
                .as_ref()
                .unwrap()
                .contains(&"secrets".to_string())
        })
        .unwrap();
    assert_eq!(
        secret_rule.resource_names,
        Some(vec!["shrimp-tailscale-state".to_string()])
    );
    assert!(!secret_rule.verbs.contains(&"create".to_string()));
    // The sidecar's loopback is a trusted proxy.
    assert!(
        config(&o)["gateway"]["trustedProxies"]
            .as_array()
            .unwrap()
            .contains(&"127.0.0.1".into())
    );
    // Traffic arrives over loopback: the NetworkPolicy admits only the Cron pods.
    let np = o.network_policy.unwrap().spec.unwrap();
    let from = np.ingress.unwrap()[0].from.clone().unwrap();
    assert_eq!(from.len(), 1);
    assert!(from[0].pod_selector.is_some());
}

#[test]
fn tailscale_operator_mode_uses_a_tailscale_ingress() {
    let mut m = example("shrimp-tailscale.yaml");
    let ts: &mut TailscaleExpose = m.agents[0]
        .spec
        .gateway
        .expose
        .as_mut()
        .unwrap()
        .tailscale
        .as_mut()
        .unwrap();
    ts.mode = TailscaleMode::Operator;
    ts.funnel = true;
    let o = build_from(&m, "d");
    let ing = o.ingress.unwrap();
    assert_eq!(
        ing.spec.as_ref().unwrap().ingress_class_name.as_deref(),
        Some("tailscale")
    );
    assert_eq!(ing.annotations()["tailscale.com/funnel"], "true");
    assert_eq!(
        o.deployment
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers
            .len(),
        1
    );
    assert!(o.tailscale_state.is_none());
    let np = o.network_policy.unwrap().spec.unwrap();
    let ns = np.ingress.unwrap()[0].from.as_ref().unwrap()[1]
        .namespace_selector
        .clone()
        .unwrap();
    assert_eq!(
        ns.match_expressions.unwrap()[0].values,
        Some(vec!["tailscale".to_string()])
    );
}

#[test]
fn network_policy_admits_cron_pods_and_the_ingress_controller_only() {
    let mut m = example("shrimp.yaml");
    let np = build_from(&m, "d").network_policy.unwrap().spec.unwrap();
    assert_eq!(np.policy_types, Some(vec!["Ingress".to_string()]));
    let rule = &np.ingress.unwrap()[0];
    assert_eq!(
        rule.ports.as_ref().unwrap()[0].port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(18789))
    );
    let from = rule.from.as_ref().unwrap();
    assert_eq!(
        from[0]
            .pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app.kubernetes.io/component"],
        "cron"
    );
    assert_eq!(
        from[1]
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap()[0]
            .values,
        Some(vec!["kube-system".to_string()])
    );
    m.agents[0].spec.gateway.network_policy.enabled = false;
    assert!(build_from(&m, "d").network_policy.is_none());
}

#[test]
fn cron_jobs_run_the_cron_against_the_gateway() {
    let mut m = example("shrimp.yaml");
    m.crons[1].spec.time_zone = None;
    let o = build_from(&m, "d");
    assert_eq!(o.cron_jobs.len(), 2);
    let evening = o
        .cron_jobs
        .iter()
        .find(|j| j.name_any() == "shrimp-evening-patrol")
        .unwrap();
    assert_eq!(evening.name_any(), "shrimp-evening-patrol");
    let spec = evening.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "10 20 * * *");
    assert_eq!(
        spec.time_zone.as_deref(),
        Some("Asia/Shanghai"),
        "falls back to the Agent's userTimezone"
    );
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(spec.successful_jobs_history_limit, Some(3));
    assert_eq!(spec.failed_jobs_history_limit, Some(3));
    let pod = spec
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let c = &pod.containers[0];
    assert_eq!(
        c.args,
        Some(vec![
            "cron".into(),
            "run".into(),
            "evening-patrol".into(),
            "--record".into()
        ])
    );
    assert_eq!(
        env(c, "CLAWOPS_GATEWAY_URL").value.as_deref(),
        Some("http://shrimp-gateway.claw.svc:18789")
    );
    assert_eq!(
        env(c, "CLAWOPS_GATEWAY_TOKEN")
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap()
            .name,
        "shrimp-gateway-token"
    );
    assert_eq!(
        env(c, "CLAWOPS_GATEWAY_TOKEN_FROM").value.as_deref(),
        Some("Secret shrimp-gateway-token key token")
    );
    assert_eq!(
        env(c, "POD_NAMESPACE")
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("metadata.namespace")
    );
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    // Its own identity, to record failed runs on its Cron; not the gateway's.
    assert_eq!(pod.service_account_name.as_deref(), Some("shrimp-cron"));
    assert_eq!(pod.automount_service_account_token, Some(true));
}

#[test]
fn the_cron_runner_may_only_touch_its_agents_crons_status_and_create_events() {
    let m = example("shrimp.yaml");
    let o = build_from(&m, "d");
    let role = o.cron_role.rules.clone().unwrap();
    assert_eq!(role.len(), 2, "{role:?}");
    assert_eq!(role[0].api_groups, Some(vec!["clawops.dev".to_string()]));
    assert_eq!(role[0].resources, Some(vec!["crons/status".to_string()]));
    assert_eq!(role[0].verbs, ["get", "patch"]);
    assert_eq!(
        role[0].resource_names,
        Some(vec![
            "evening-patrol".to_string(),
            "morning-patrol".to_string()
        ])
    );
    assert_eq!(role[1].resources, Some(vec!["events".to_string()]));
    assert_eq!(role[1].verbs, ["create"]);
    let binding = &o.cron_role_binding;
    assert_eq!(binding.role_ref.name, "shrimp-cron");
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        ("shrimp-cron", Some("claw"))
    );
    assert_eq!(o.cron_service_account.name_any(), "shrimp-cron");
    // Without Crons no status rule at all: an empty resourceNames would mean every Cron.
    let none = rbac::cron_role(&m.agents[0], &[]).rules.unwrap();
    assert!(
        none.iter()
            .all(|r| r.resources != Some(vec!["crons/status".to_string()])),
        "{none:?}"
    );
}

#[test]
fn cluster_access_read_binds_a_read_only_role() {
    let mut m = example("shrimp.yaml");
    let crb = build_from(&m, "d").cluster_role_binding.unwrap();
    assert_eq!(crb.role_ref.name, "clawops-cluster-reader");
    assert_eq!(crb.subjects.unwrap()[0].namespace.as_deref(), Some("claw"));
    let role = rbac::cluster_reader_role();
    for r in role.rules.unwrap() {
        assert!(
            r.verbs
                .iter()
                .all(|v| ["get", "list", "watch"].contains(&v.as_str())),
            "{:?}",
            r.verbs
        );
    }
    m.agents[0].spec.cluster_access = crate::crd::agent::ClusterAccess::None;
    assert!(build_from(&m, "d").cluster_role_binding.is_none());
}

#[test]
fn pod_logs_are_readable_only_by_an_agent_that_opts_in() {
    let mut m = example("shrimp.yaml");
    assert!(
        build_from(&m, "d").pod_log_binding.is_none(),
        "off by default"
    );
    m.agents[0].spec.tools.pod_logs = true;
    let crb = build_from(&m, "d").pod_log_binding.unwrap();
    assert_eq!(crb.role_ref.name, "clawops-pod-log-reader");
    assert_ne!(
        crb.metadata.name,
        build_from(&m, "d")
            .cluster_role_binding
            .unwrap()
            .metadata
            .name
    );
    // The reader itself never reads logs, nor Secrets.
    let reader = rbac::cluster_reader_role().rules.unwrap();
    assert!(
        reader.iter().all(|r| {
            r.resources
                .iter()
                .flatten()
                .all(|x| x != "pods/log" && x != "secrets")
        }),
        "{reader:?}"
    );
    assert_eq!(rbac::pod_log_reader_role().rules.unwrap()[0].verbs, ["get"]);
    m.agents[0].spec.cluster_access = crate::crd::agent::ClusterAccess::None;
    assert!(
        build_from(&m, "d").pod_log_binding.is_none(),
        "needs clusterAccess: read"
    );
}

#[test]
fn objects_without_a_cluster_uid_carry_no_owner_reference_and_with_one_they_do() {
    let mut m = example("shrimp.yaml");
    assert!(
        build_from(&m, "d")
            .deployment
            .metadata
            .owner_references
            .is_none()
    );
    m.agents[0].metadata.uid = Some("u-1".into());
    let o = build_from(&m, "d");
    let owner = &o.deployment.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Agent", "u-1", Some(true))
    );
    assert_eq!(
        o.config_map.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "clawops-operator"
    );
    let _ = Arc::new(());
}
