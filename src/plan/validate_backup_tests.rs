//! Validation tests of `spec.backup`: its fields, its Secret keys told apart from the
//! gateway's, and the CronJob name it takes.

use super::tests::{example, real_secrets, resolved};
use super::*;
use crate::crd::SecretKeyRef;
use crate::manifests::Manifests;

/// The example with `spec.backup` (credentials in Secret `s3`) and a token of its own, so two
/// resolutions give the same digest.
fn with_backup(backup: serde_json::Value, s3: Option<(&str, &str)>) -> Manifests {
    let mut m = example();
    real_secrets(&mut m);
    m.agents[0].spec.gateway.auth_token_secret_ref =
        Some(SecretKeyRef::new("shrimp-secrets", "telegram-bot-token"));
    m.agents[0].spec.backup = Some(serde_json::from_value(backup).unwrap());
    if let Some((id, secret)) = s3 {
        let mut s = m.secrets[0].clone();
        s.metadata.name = Some("s3".into());
        s.string_data = Some(
            [
                ("AWS_ACCESS_KEY_ID".to_string(), id.to_string()),
                ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
            ]
            .into(),
        );
        m.secrets.push(s);
    }
    m
}

fn backup(extra: serde_json::Value) -> serde_json::Value {
    let mut b = serde_json::json!({
        "schedule": "0 3 * * *",
        "destination": "s3://my-backups/shrimp/",
        "credentialsSecretRef": {"name": "s3"},
    });
    b.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    b
}

#[test]
fn backup_credentials_are_checked_apart_and_do_not_roll_the_gateway() {
    let key = (
        "AKIAEXAMPLEKEY123456",
        "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
    );
    let one = validate(&resolved(&with_backup(
        backup(serde_json::json!({})),
        Some(key),
    )))
    .unwrap();
    let rotated = (
        "AKIAOTHERKEY12345678",
        "another-secret-access-key-0123456789abcd",
    );
    let two = validate(&resolved(&with_backup(
        backup(serde_json::json!({})),
        Some(rotated),
    )))
    .unwrap();
    assert_eq!(
        one.secret_digest, two.secret_digest,
        "only the backup Job reads them: rotating them must not restart the gateway"
    );

    // Missing or a placeholder: told as the backup's problem, not the gateway's.
    let missing = resolved(&with_backup(backup(serde_json::json!({})), None));
    assert!(validate(&missing).is_ok(), "the gateway is not held back");
    let text: Vec<String> = backup_problems(&missing)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text[0].starts_with("Secret s3 key AWS_ACCESS_KEY_ID (spec.backup.credentialsSecretRef): "),
        "{text:#?}"
    );
    let placeholder = with_backup(
        backup(serde_json::json!({})),
        Some(("CHANGE_ME", "CHANGE_ME")),
    );
    let text = backup_problems(&resolved(&placeholder))[0].to_string();
    assert!(
        text.contains("spec.backup.credentialsSecretRef") && text.contains("placeholder"),
        "{text}"
    );
    assert!(
        backup_problems(&resolved(&with_backup(
            backup(serde_json::json!({})),
            Some(key)
        )))
        .is_empty()
    );
}

#[test]
fn bad_backup_fields_are_named() {
    let m = with_backup(
        backup(serde_json::json!({
            "schedule": "0 0 30 2 *",
            "timeZone": "Mars/Olympus",
            "destination": "s3://my-backups/shrimp",
            "endpoint": "minio:9000",
            "region": "EU West",
            "keep": 0,
            "credentialsSecretRef": {"name": "s3", "accessKeyIdKey": "key id"},
        })),
        None,
    );
    let fields: Vec<String> = validate_agent_spec(&m.agents[0], &m.channels)
        .into_iter()
        .map(|p| match p {
            Problem::Spec { field, .. } => field,
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "spec.backup.schedule",
            "spec.backup.timeZone",
            "spec.backup.destination",
            "spec.backup.keep",
            "spec.backup.endpoint",
            "spec.backup.region",
            "spec.backup.credentialsSecretRef.accessKeyIdKey"
        ]
    );
}

#[test]
fn a_cron_named_backup_is_left_out_while_the_agent_backs_up() {
    let key = (
        "AKIAEXAMPLEKEY123456",
        "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
    );
    let mut m = with_backup(backup(serde_json::json!({})), Some(key));
    m.crons[0].metadata.name = Some("backup".into());
    let v = validate(&resolved(&m)).unwrap();
    assert_eq!(v.crons.len(), 1);
    let (name, why) = &v.skipped_crons[0];
    assert_eq!(name, "backup");
    assert!(
        why.contains("CronJob shrimp-backup") && why.contains("rename the Cron"),
        "{why}"
    );

    m.agents[0].spec.backup = None;
    assert_eq!(validate(&resolved(&m)).unwrap().crons.len(), 2);
}
