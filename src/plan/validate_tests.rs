//! Validation tests: every bad input the schema cannot catch.

use std::sync::Arc;

use secrecy::SecretString;

use super::*;
use crate::crd::SecretKeyRef;
use crate::manifests::Manifests;
use crate::plan::resolve::{self, assemble, lookup};
use crate::secrets::SecretProblem;

pub(super) fn example() -> Manifests {
    Manifests::from_files(
        &[format!(
            "{}/manifests/examples/shrimp.yaml",
            env!("CARGO_MANIFEST_DIR")
        )],
        "claw",
    )
    .unwrap()
}

pub(super) fn real_secrets(m: &mut Manifests) {
    for s in &mut m.secrets {
        for v in s.string_data.as_mut().unwrap().values_mut() {
            *v = "a-real-looking-secret-value-0123456789".into();
        }
    }
}

pub(super) fn resolved(m: &Manifests) -> resolve::Resolved {
    assemble(
        Arc::new(m.agents[0].clone()),
        m.channels.clone(),
        m.crons.clone(),
        |n| {
            m.secrets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(n))
                .cloned()
        },
    )
}

#[test]
fn schedules_kubernetes_accepts() {
    for ok in [
        "0 9 1 JUL *",
        "0 9 * JUN-JUL SUN",
        "10 8 * * *",
        "*/5 * * * *",
        "0 9 * * MON-FRI",
        "@daily",
        "0 0 1 JAN *",
        "0 8 * * mon-fri",
        "0 0 29 2 *",
        "*/7 * * * 0",
    ] {
        assert_eq!(check_schedule(ok), Ok(()), "{ok}");
    }
    for bad in [
        "0 0 15W * *",
        "0 0 * * 5L",
        "10 8 * *",
        "0 10 8 * * *",
        "61 8 * * *",
        "0 0 L * *",
        "0 0 * * 5#2",
        "0 25 * * *",
        "30-10 * * * *",
        "0 0 30 2 *",
        "0 8 * * 7",
        "0 8 * * 1-7",
        "*/0 * * * *",
    ] {
        assert!(check_schedule(bad).is_err(), "{bad} should be refused");
    }
    assert!(check_schedule("10 8 * *").unwrap_err().contains("4 fields"));
    assert!(
        check_schedule("0 0 31 2 *")
            .unwrap_err()
            .contains("never runs")
    );
    assert!(
        check_schedule("0 8 * * 7")
            .unwrap_err()
            .contains("0 or SUN")
    );
}

#[test]
fn time_zones_and_durations() {
    assert!(check_time_zone("Asia/Shanghai").is_ok());
    assert!(check_time_zone("UTC").is_ok());
    assert!(
        check_time_zone("Mars/Olympus")
            .unwrap_err()
            .contains("Mars/Olympus")
    );
    assert_eq!(parse_duration("30m"), Some(1800));
    assert_eq!(parse_duration("0m"), Some(0));
    assert_eq!(parse_duration("2d"), Some(172800));
    assert_eq!(parse_duration("30x"), None);
    assert_eq!(parse_duration("m"), None);
}

#[test]
fn the_example_with_placeholders_is_refused_naming_every_key_and_no_value() {
    let m = example();
    let problems = validate(&resolved(&m)).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("key zai-api-key (spec.model.apiKeySecretRef)"))
    );
    assert!(
        text.iter()
            .any(|t| t.contains("key telegram-bot-token (Channel telegram"))
    );
    assert!(text.iter().all(|t| t.contains("placeholder")));
}

#[test]
fn the_example_with_real_secrets_is_valid_and_generates_a_token() {
    let mut m = example();
    real_secrets(&mut m);
    let r = resolved(&m);
    assert!(
        r.new_token.is_some(),
        "no token Secret yet: one is generated"
    );
    let v = validate(&r).unwrap();
    assert_eq!(v.crons.len(), 2);
    assert!(v.skipped_crons.is_empty());
    assert_eq!(v.secret_digest.len(), 64);
}

#[test]
fn a_provider_without_endpoint_is_refused_unless_base_url_is_set() {
    let mut m = example();
    m.agents[0].spec.model.fallbacks = vec!["openai/gpt-4o-mini".into()];
    let p = validate_agent_spec(&m.agents[0], &m.channels);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].to_string()
            .starts_with("spec.model.fallbacks[0]: provider `openai`"),
        "{}",
        p[0]
    );
    m.agents[0].spec.model.base_url = Some("https://llm.example.com/v1".into());
    assert!(validate_agent_spec(&m.agents[0], &m.channels).is_empty());
}

#[test]
fn two_secret_keys_in_one_env_var_are_refused() {
    let mut m = example();
    let mut second = m.channels[0].clone();
    second.metadata.name = Some("telegram-work".into());
    second.spec.telegram.bot_token_secret_ref =
        SecretKeyRef::new("work-secrets", "telegram-bot-token");
    m.channels.push(second);
    let p = validate_agent_spec(&m.agents[0], &m.channels);
    assert_eq!(p.len(), 1, "{p:?}");
    let t = p[0].to_string();
    assert!(
        t.starts_with("Channel telegram-work spec.telegram.botTokenSecretRef: "),
        "{t}"
    );
    assert!(
        t.contains("TELEGRAM_BOT_TOKEN") && t.contains("work-secrets") && t.contains("rename"),
        "{t}"
    );
}

#[test]
fn heartbeat_time_zone_base_path_and_timeout_errors_name_their_fields() {
    let mut m = example();
    m.agents[0].spec.heartbeat.as_mut().unwrap().every = "soon".into();
    m.agents[0].spec.user_timezone = "Asia/Atlantis".into();
    m.agents[0].spec.gateway.control_ui = Some(crate::crd::agent::ControlUiSpec {
        base_path: Some("/claw/../x".into()),
    });
    m.agents[0].spec.model.timeout_seconds = Some(2);
    m.agents[0].spec.identity.persona = Some("x".repeat(1 << 20));
    let text: Vec<String> = validate_agent_spec(&m.agents[0], &m.channels)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("spec.heartbeat.every: `soon`")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("spec.userTimezone: `Asia/Atlantis`")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("spec.gateway.controlUi.basePath: `/claw/../x`")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t == "spec.model.timeoutSeconds: 2 is out of range: use 5 to 3600 seconds"),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("spec.identity.persona: 1048576 characters; at most 32768")),
        "{text:?}"
    );
}

#[test]
fn invalid_crons_are_left_out_with_the_reason() {
    let mut m = example();
    real_secrets(&mut m);
    m.crons[0].spec.deliver.as_mut().unwrap().channel_ref = "whatsapp".into();
    m.crons[1].spec.schedule = "0 0 31 4 *".into();
    let v = validate(&resolved(&m)).unwrap();
    assert!(v.crons.is_empty());
    let reasons: Vec<String> = v
        .skipped_crons
        .iter()
        .map(|(n, w)| format!("{n}: {w}"))
        .collect();
    assert!(
        reasons.iter().any(|r| r
            .contains("morning-patrol: spec.deliver.channelRef: Channel whatsapp does not exist")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("evening-patrol: spec.schedule")),
        "{reasons:?}"
    );
}

#[test]
fn lookup_names_each_problem() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let secret = |v: &str| Secret {
        data: Some([("k".to_string(), ByteString(v.as_bytes().to_vec()))].into()),
        ..Default::default()
    };
    assert!(matches!(
        lookup(None, "k"),
        Err(SecretProblem::SecretMissing)
    ));
    assert!(matches!(
        lookup(Some(&secret("x")), "other"),
        Err(SecretProblem::KeyMissing)
    ));
    assert!(matches!(
        lookup(Some(&secret("")), "k"),
        Err(SecretProblem::Empty)
    ));
    assert!(matches!(
        lookup(Some(&secret("CHANGE_ME")), "k"),
        Err(SecretProblem::Placeholder)
    ));
    assert!(lookup(Some(&secret("a-real-looking-secret-value")), "k").is_ok());
    let _ = SecretString::from("x");
}

#[test]
fn secret_keys_named_like_reserved_variables_are_refused() {
    let mut m = example();
    m.agents[0].spec.model.api_key_secret_ref =
        Some(SecretKeyRef::new("shrimp-secrets", "pod-namespace"));
    let text: Vec<String> = validate_agent_spec(&m.agents[0], &m.channels)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("POD_NAMESPACE, which is reserved")
            && text[0].contains("key pod-namespace"),
        "{}",
        text[0]
    );
    m.agents[0].spec.model.api_key_secret_ref = Some(SecretKeyRef::new("shrimp-secrets", "path"));
    assert!(
        validate_agent_spec(&m.agents[0], &m.channels)[0]
            .to_string()
            .contains("PATH")
    );
}

#[test]
fn files_that_set_both_exposures_are_refused_as_the_crd_would() {
    let mut m = example();
    real_secrets(&mut m);
    m.agents[0].spec.gateway.expose = Some(
        serde_json::from_value(serde_json::json!({
            "ingress": {"host": "shrimp.example.com"},
            "tailscale": {"hostname": "shrimp", "mode": "operator"},
        }))
        .unwrap(),
    );
    let problems = validate(&resolved(&m)).unwrap_err();
    assert_eq!(
        problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["spec.gateway.expose: set exactly one of expose.ingress or expose.tailscale"]
    );
}

#[test]
fn the_plan_for_a_cluster_mirrors_and_trusts_the_sidecar_and_standalone_does_neither() {
    let mut m = Manifests::from_files(
        &[format!(
            "{}/manifests/examples/shrimp-tailscale.yaml",
            env!("CARGO_MANIFEST_DIR")
        )],
        "claw",
    )
    .unwrap();
    real_secrets(&mut m);
    let r = resolved(&m);
    let cluster = crate::plan::plan(&r, crate::plan::RunsIn::Cluster).unwrap();
    assert!(cluster.exposure.sidecar().is_some());
    let k = cluster
        .config
        .kubernetes
        .as_ref()
        .expect("mirrors in a cluster");
    assert_eq!(k.namespace, "claw");
    assert!(
        cluster
            .config
            .gateway
            .trusted_proxies
            .iter()
            .any(|p| p == "127.0.0.1")
    );
    let alone = crate::plan::plan(&r, crate::plan::RunsIn::Standalone).unwrap();
    assert!(alone.config.kubernetes.is_none());
    assert!(
        !alone
            .config
            .gateway
            .trusted_proxies
            .iter()
            .any(|p| p == "127.0.0.1")
    );
    assert_eq!(
        alone.config.agent, cluster.config.agent,
        "the agent is the same wherever it runs"
    );
}

proptest::proptest! {
    #![proptest_config(crate::util::fuzz::config())]
    /// The example CR YAML edited anywhere: read and validated, or refused naming the file and
    /// the document (or the field), never a panic.
    #[test]
    fn fuzz_cr_yaml(edits in crate::util::fuzz::edits()) {
        let seed = include_str!("../../manifests/examples/shrimp.yaml");
        let text = crate::util::fuzz::apply(seed, &edits);
        let mut m = Manifests::default();
        match m.add_yaml("shrimp.yaml", &text, "default") {
            Err(e) => proptest::prop_assert!(e.to_string().starts_with("shrimp.yaml: document "), "{e}"),
            Ok(()) => {
                for a in &m.agents {
                    for p in validate_agent_spec(a, &m.channels) {
                        proptest::prop_assert!(p.to_string().contains(':'), "{p}");
                    }
                }
                for c in &m.crons {
                    for a in &m.agents {
                        let _ = validate_cron(c, a, &m.channels);
                    }
                }
            }
        }
    }
}
