//! `clawops render` and `clawops crd` as a user runs them: the real binary, golden output.

use std::process::Command;

use regex::Regex;

fn clawops(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run clawops");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Generated tokens and the hashes over them differ on every run.
fn normalize(yaml: &str) -> String {
    Regex::new("[0-9a-f]{64}")
        .unwrap()
        .replace_all(yaml, "<sha256>")
        .into_owned()
}

fn golden(name: &str, actual: &str) {
    crate::support::golden(name, actual, "render::");
}

#[test]
fn render_of_the_ingress_example_matches_golden() {
    let (code, out, err) = clawops(&[
        "render",
        "-f",
        "manifests/examples/shrimp.yaml",
        "-n",
        "claw",
        "--gateway-image",
        "ghcr.io/clawops/clawops:golden",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("generated a new gateway token into Secret shrimp-gateway-token"),
        "{err}"
    );
    golden("shrimp.yaml", &normalize(&out));
    let kinds: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    for k in [
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "CronJob",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "CronJob").count(), 2);
}

#[test]
fn render_of_the_tailscale_example_matches_golden() {
    let (code, out, err) = clawops(&[
        "render",
        "-f",
        "manifests/examples/shrimp-tailscale.yaml",
        "-n",
        "claw",
        "--gateway-image",
        "ghcr.io/clawops/clawops:golden",
    ]);
    assert_eq!(code, 0, "{err}");
    golden("shrimp-tailscale.yaml", &normalize(&out));
    assert!(
        out.contains("name: TS_KUBE_SECRET")
            && out.contains("image: ghcr.io/tailscale/tailscale:v1.98.9")
    );
    assert!(!out.contains("kind: Ingress"));
}

#[test]
fn render_with_check_secrets_refuses_placeholders_and_names_keys() {
    let (code, out, err) = clawops(&[
        "render",
        "-f",
        "manifests/examples/shrimp.yaml",
        "--check-secrets",
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("Agent shrimp would be refused"), "{err}");
    assert!(
        err.contains("Secret shrimp-secrets key zai-api-key (spec.model.apiKeySecretRef)"),
        "{err}"
    );
    assert!(
        err.contains("Secret shrimp-secrets key telegram-bot-token"),
        "{err}"
    );
}

#[test]
fn render_errors_name_the_file_document_and_field() {
    let dir = std::env::temp_dir().join(format!("clawops-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: clawops.dev/v1alpha1\nkind: Channel\nmetadata: {name: t}\nspec:\n  agentRef: shrimp\n  telegram:\n    botTokenSecretRef: {name: s, key: k}\n    dmPolicy: sometimes\n",
    )
    .unwrap();
    let (code, _, err) = clawops(&["render", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.yaml: document 1")
            && err.contains("spec.telegram.dmPolicy")
            && err.contains("sometimes"),
        "{err}"
    );

    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
    )
    .unwrap();
    let (code, _, err) = clawops(&["render", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("kind Deployment (apiVersion apps/v1) is not one of"),
        "{err}"
    );
    let (code, _, err) = clawops(&["render", "-f", "does-not-exist.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("reading does-not-exist.yaml"), "{err}");
}

#[test]
fn crd_prints_the_four_crds() {
    let (code, out, _) = clawops(&["crd"]);
    assert_eq!(code, 0);
    for name in [
        "agents.clawops.dev",
        "channels.clawops.dev",
        "crons.clawops.dev",
        "nodepairings.clawops.dev",
    ] {
        assert!(out.contains(&format!("name: {name}")), "{name}");
    }
}

#[test]
fn a_bad_secret_value_is_reported_without_the_value() {
    let dir = std::env::temp_dir().join(format!("clawops-render-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("secret.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  pin: 987654321\n",
    )
    .unwrap();
    let (code, _, err) = clawops(&["render", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("stringData.pin") && err.contains("not shown"),
        "{err}"
    );
    assert!(!err.contains("987654321"), "the value leaked: {err}");
}
