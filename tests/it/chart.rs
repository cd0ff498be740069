//! The chart agrees with the code: its version and image are the binary's, and the operator's
//! Deployment passes the arguments and environment the binary reads. (Rendering, linting and
//! schema validation of the chart run in `make chart-check`, with helm.)

use serde_yaml::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap()
}

#[test]
fn chart_version_and_image_are_the_binarys() {
    let chart = yaml("charts/clawops/Chart.yaml");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(chart["version"].as_str(), Some(version));
    assert_eq!(chart["appVersion"].as_str(), Some(version));
    let values = yaml("charts/clawops/values.yaml");
    assert_eq!(
        values["image"]["repository"].as_str(),
        Some(clawops::consts::DEFAULT_IMAGE_REPO)
    );
    // An empty tag means appVersion, so the chart runs `clawops::default_image()`.
    assert_eq!(values["image"]["tag"].as_str(), Some(""));
    assert_eq!(
        format!(
            "{}:{}",
            values["image"]["repository"].as_str().unwrap(),
            version
        ),
        clawops::default_image()
    );
}

#[test]
fn the_deployment_uses_the_binarys_flags_and_env() {
    let deployment = read("charts/clawops/templates/deployment.yaml");
    for expected in [
        "- operator",
        "- --listen=0.0.0.0:",
        "- --leader-election",
        "- --namespace=",
        "name: POD_NAMESPACE",
        "name: CLAWOPS_GATEWAY_IMAGE",
        "name: CLAWOPS_LOG_FORMAT",
        "path: /healthz",
        "path: /readyz",
        "runAsUser: 65532",
    ] {
        assert!(
            deployment.contains(expected),
            "deployment.yaml lacks {expected}"
        );
    }
    assert_eq!(clawops::consts::RUN_AS_USER, 65532);
    // Every flag and variable the template sets is one the binary knows.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["operator", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for known in [
        "--listen",
        "--leader-election",
        "--namespace",
        "POD_NAMESPACE",
        "CLAWOPS_GATEWAY_IMAGE",
    ] {
        assert!(
            help.contains(known),
            "`clawops operator --help` lacks {known}:\n{help}"
        );
    }
}

#[test]
fn values_schema_knows_every_value() {
    let schema: serde_json::Value =
        serde_json::from_str(&read("charts/clawops/values.schema.json")).unwrap();
    let values = yaml("charts/clawops/values.yaml");
    for key in values.as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(
            schema["properties"].get(key).is_some(),
            "values.schema.json lacks {key}"
        );
    }
    assert_eq!(schema["additionalProperties"], false);
}
