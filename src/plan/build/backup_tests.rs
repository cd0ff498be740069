//! Builder tests of `spec.backup`: its CronJob, what its pod may reach, and what it is not.

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PodSpec;
use kube::ResourceExt;

use super::tests::{build_from, config_hash, env, example};
use crate::crd::backup::BackupSpec;
use crate::manifests::Manifests;

fn with_backup(extra: serde_json::Value) -> Manifests {
    let mut m = example("shrimp.yaml");
    let mut spec = serde_json::json!({
        "schedule": "0 3 * * *",
        "destination": "s3://my-backups/shrimp/",
        "endpoint": "http://minio.minio.svc:9000",
        "credentialsSecretRef": {"name": "shrimp-s3"},
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let b: BackupSpec = serde_json::from_value(spec).unwrap();
    m.agents[0].spec.backup = Some(b);
    m
}

fn pod(cj: &CronJob) -> &PodSpec {
    cj.spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

#[test]
fn the_backup_cron_job_asks_the_gateway_and_uploads_with_credentials_only_it_holds() {
    let o = build_from(&with_backup(serde_json::json!({"keep": 14})), "d");
    let cj = o.backup_cron_job.as_ref().expect("a backup CronJob");
    assert_eq!(cj.name_any(), "shrimp-backup");
    assert_eq!(cj.labels()["app.kubernetes.io/component"], "backup");
    let spec = cj.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "0 3 * * *");
    assert_eq!(
        spec.time_zone.as_deref(),
        Some("Asia/Shanghai"),
        "the Agent's userTimezone when the backup names none"
    );
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job.backoff_limit, Some(2), "a backup is safe to retry");
    let pod = pod(cj);
    let c = &pod.containers[0];
    assert_eq!(
        c.args.as_deref().unwrap(),
        [
            "backup",
            "create",
            "--to",
            "s3://my-backups/shrimp/",
            "--keep",
            "14",
            "--wait",
            "300"
        ]
    );
    let from_secret = |name: &str| {
        let r = env(c, name)
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap_or_else(|| panic!("{name} comes from a Secret"));
        (r.name.clone(), r.key.clone())
    };
    assert_eq!(
        from_secret("AWS_ACCESS_KEY_ID"),
        ("shrimp-s3".into(), "AWS_ACCESS_KEY_ID".into())
    );
    assert_eq!(
        from_secret("AWS_SECRET_ACCESS_KEY"),
        ("shrimp-s3".into(), "AWS_SECRET_ACCESS_KEY".into())
    );
    assert_eq!(
        from_secret("CLAWOPS_GATEWAY_TOKEN"),
        ("shrimp-gateway-token".into(), "token".into())
    );
    assert_eq!(
        env(c, "AWS_ENDPOINT_URL").value.as_deref(),
        Some("http://minio.minio.svc:9000")
    );
    assert_eq!(
        env(c, "CLAWOPS_GATEWAY_URL").value.as_deref(),
        Some("http://shrimp-gateway.claw.svc:18789")
    );
    assert!(
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .all(|e| e.name != "AWS_REGION"),
        "no region unless one is set"
    );
    // No Kubernetes API access: no token mounted.
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.service_account_name, None);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));

    // The gateway never gets the storage credentials.
    let gateway = &o
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert!(
        gateway
            .env
            .iter()
            .flatten()
            .all(|e| !e.name.starts_with("AWS_")),
        "{:?}",
        gateway.env
    );
    // Adding backups leaves the gateway's config (and so its pod) as it was; that rotating
    // the credentials does too is validate's test.
    let without = build_from(&example("shrimp.yaml"), "d");
    assert_eq!(config_hash(&o), config_hash(&without));
}

#[test]
fn options_reach_the_job_and_the_network_policy_admits_it() {
    let o = build_from(
        &with_backup(serde_json::json!({
            "timeZone": "Europe/Berlin",
            "region": "auto",
            "includeSecrets": true,
            "suspend": true,
            "credentialsSecretRef": {"name": "r2", "accessKeyIdKey": "id", "secretAccessKeyKey": "secret"},
        })),
        "d",
    );
    let cj = o.backup_cron_job.as_ref().unwrap();
    let spec = cj.spec.as_ref().unwrap();
    assert_eq!(spec.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(spec.suspend, Some(true));
    let c = &pod(cj).containers[0];
    assert_eq!(
        c.args.as_ref().unwrap().last().unwrap(),
        "--include-secrets"
    );
    assert_eq!(env(c, "AWS_REGION").value.as_deref(), Some("auto"));
    let key = |name: &str| {
        env(c, name)
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap()
            .key
            .clone()
    };
    assert_eq!(key("AWS_ACCESS_KEY_ID"), "id");
    assert_eq!(key("AWS_SECRET_ACCESS_KEY"), "secret");

    let components: Vec<String> = o.network_policy.unwrap().spec.unwrap().ingress.unwrap()[0]
        .from
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|p| p.pod_selector.as_ref())
        .map(|s| s.match_labels.as_ref().unwrap()["app.kubernetes.io/component"].clone())
        .collect();
    assert_eq!(components, ["cron", "backup"]);

    let plain = build_from(&example("shrimp.yaml"), "d");
    assert!(plain.backup_cron_job.is_none());
    let peers = plain.network_policy.unwrap().spec.unwrap().ingress.unwrap()[0]
        .from
        .clone()
        .unwrap();
    assert!(
        peers
            .iter()
            .all(|p| p.pod_selector.as_ref().is_none_or(
                |s| s.match_labels.as_ref().unwrap()["app.kubernetes.io/component"] != "backup"
            )),
        "backup pods are admitted only with spec.backup"
    );
}
