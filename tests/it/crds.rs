//! The CRDs: `crds/` matches the code, the schema documents every field and rejects what it can.

use regex::Regex;
use serde_json::Value;

fn crds() -> Vec<Value> {
    clawops::crd::all()
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect()
}

fn crd(kind: &str) -> Value {
    crds()
        .into_iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)
        .unwrap()
}

fn schema(kind: &str) -> Value {
    crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn generated_files_match_the_code() {
    for (path, content) in clawops::generate::files() {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&path);
        let on_disk = std::fs::read_to_string(&full).unwrap_or_default();
        assert!(
            on_disk == content,
            "{} is out of date: run `make generate` and commit",
            path.display()
        );
    }
}

#[test]
fn crds_directory_matches_the_code() {
    let dir = format!("{}/crds", env!("CARGO_MANIFEST_DIR"));
    for c in clawops::crd::all() {
        let path = format!("{dir}/{}", clawops::crd::file_name(&c));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == clawops::crd::to_yaml(&c),
            "{path} is out of date: run `make crds` and commit"
        );
    }
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 4, "crds/ holds exactly the four CRDs");
}

#[test]
fn names_scope_categories_status_and_columns() {
    for (kind, short, column) in [
        ("Agent", "ag", "URL"),
        ("Channel", "chan", "Bot"),
        ("Cron", "crn", "Schedule"),
        ("NodePairing", "np", "Phase"),
    ] {
        let c = crd(kind);
        assert_eq!(c["spec"]["group"], "clawops.dev");
        assert_eq!(c["spec"]["scope"], "Namespaced");
        assert_eq!(
            c["spec"]["names"]["categories"],
            serde_json::json!(["claw"])
        );
        assert_eq!(c["spec"]["names"]["shortNames"], serde_json::json!([short]));
        let v = &c["spec"]["versions"][0];
        assert_eq!(v["name"], "v1alpha1");
        assert!(
            v["subresources"]["status"].is_object(),
            "{kind} has a status subresource"
        );
        let cols: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(
            cols.contains(&"Ready") && cols.contains(&column) && cols.contains(&"Age"),
            "{kind}: {cols:?}"
        );
    }
}

/// Every property below `spec` has a description, so `kubectl explain` teaches the user.
fn assert_described(node: &Value, path: &str) {
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let p = format!("{path}.{name}");
            assert!(
                child
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| !d.is_empty()),
                "{p} has no description"
            );
            assert_described(child, &p);
        }
    }
    if let Some(items) = node.get("items") {
        assert_described(items, path);
    }
}

#[test]
fn every_spec_field_is_described() {
    for kind in ["Agent", "Channel", "Cron", "NodePairing"] {
        let s = schema(kind);
        assert_described(&s["properties"]["spec"], &format!("{kind}.spec"));
    }
    let expose =
        &schema("Agent")["properties"]["spec"]["properties"]["gateway"]["properties"]["expose"];
    let doc = expose["description"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        doc.contains("exactly one of `ingress` or `tailscale`"),
        "{doc}"
    );
}

fn rules(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["rule"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cel_rules_enforce_exactly_one_and_required_pairs() {
    let gw = &schema("Agent")["properties"]["spec"]["properties"]["gateway"]["properties"];
    assert_eq!(
        rules(&gw["expose"]),
        vec!["has(self.ingress) != has(self.tailscale)"]
    );
    assert_eq!(
        rules(&gw["expose"]["properties"]["ingress"]["properties"]["tls"]),
        vec!["has(self.clusterIssuer) != has(self.secretName)"]
    );
    assert_eq!(
        rules(&gw["expose"]["properties"]["tailscale"]),
        vec!["self.mode != 'sidecar' || has(self.authKeySecretRef)"]
    );
    let tg = &schema("Channel")["properties"]["spec"]["properties"]["telegram"];
    assert_eq!(
        rules(tg),
        vec!["self.dmPolicy != 'open' || (has(self.allowFrom) && '*' in self.allowFrom)"]
    );
}

fn pattern(node: &Value) -> Regex {
    Regex::new(node["pattern"].as_str().expect("pattern")).unwrap()
}

#[test]
fn patterns_enums_and_ranges_reject_bad_values() {
    let cron = &schema("Cron")["properties"]["spec"]["properties"];
    let schedule = pattern(&cron["schedule"]);
    for ok in [
        "10 8 * * *",
        "*/15 0-6 1,15 * MON-FRI",
        "@daily",
        "59 23 31 12 6",
        "0 0 1 jan,Jul sun",
        "0 9 ? * 1-5/2",
        "00 08 01 01 00",
        "0,30 8-18/2 * * *",
    ] {
        assert!(schedule.is_match(ok), "{ok}");
        assert_eq!(
            clawops::plan::validate::check_schedule(ok),
            Ok(()),
            "the schema and the operator agree on {ok}"
        );
    }
    for bad in [
        "10 8 * *",
        "10 8 * * * *",
        "every day",
        "@sometimes",
        "",
        // Impossible values, field by field.
        "61 8 * * *",
        "0 24 * * *",
        "0 8 0 * *",
        "0 8 32 * *",
        "0 8 * 13 *",
        "0 8 * 0 *",
        "0 8 * * 7",
        "0 8 * FOO *",
        "0 8 * * MOND",
        // Steps of zero, steps after a single value, Quartz extensions, `?` outside the day fields.
        "*/0 * * * *",
        "5/15 * * * *",
        "0 0 L * *",
        "0 0 * * 5#2",
        "? 8 * * *",
        "0 8 * * 1,",
    ] {
        assert!(!schedule.is_match(bad), "{bad}");
    }
    let tz = pattern(&cron["timeZone"]);
    for ok in [
        "Asia/Shanghai",
        "UTC",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+8",
    ] {
        assert!(tz.is_match(ok), "{ok}");
    }
    for bad in ["asia/shanghai", "Asia Shanghai", "+08:00", "/etc/localtime"] {
        assert!(!tz.is_match(bad), "{bad}");
    }
    let to = pattern(&cron["deliver"]["properties"]["to"]);
    assert!(to.is_match("123456789") && to.is_match("-1001234567890") && !to.is_match("@owner"));

    let agent = &schema("Agent")["properties"]["spec"]["properties"];
    let model = pattern(&agent["model"]["properties"]["primary"]);
    assert!(
        model.is_match("zai/glm-4.7")
            && model.is_match("openai/gpt-4o")
            && !model.is_match("glm-4.7")
    );
    assert_eq!(agent["maxConcurrent"]["minimum"], 1.0);
    assert_eq!(agent["maxConcurrent"]["maximum"], 64.0);
    assert_eq!(
        agent["clusterAccess"]["enum"],
        serde_json::json!(["none", "read"])
    );
    assert_eq!(
        agent["timeFormat"]["enum"],
        serde_json::json!(["auto", "12", "24"])
    );
    assert_eq!(agent["gateway"]["properties"]["port"]["default"], 18789);
    assert_eq!(
        agent["gateway"]["properties"]["expose"]["properties"]["ingress"]["properties"]["className"]
            ["default"],
        "traefik"
    );
    assert_eq!(
        schema("Agent")["properties"]["spec"]["required"],
        serde_json::json!(["identity", "model"])
    );

    let tg = &schema("Channel")["properties"]["spec"]["properties"]["telegram"]["properties"];
    assert_eq!(
        tg["dmPolicy"]["enum"],
        serde_json::json!(["pairing", "allowlist", "open", "disabled"])
    );
    assert_eq!(tg["dmPolicy"]["default"], "pairing");
    assert_eq!(
        tg["groupPolicy"]["enum"],
        serde_json::json!(["disabled", "allowlist", "open"])
    );
    let allow = pattern(&tg["allowFrom"]["items"]);
    assert!(
        allow.is_match("*")
            && allow.is_match("123456789")
            && allow.is_match("@alice_bot")
            && !allow.is_match("alice")
    );

    let np = &schema("NodePairing")["properties"]["spec"]["properties"];
    assert!(!pattern(&np["nodeId"]).is_match("ABC"));
    assert_eq!(
        np["exec"]["properties"]["ask"]["enum"],
        serde_json::json!(["off", "on-miss", "always"])
    );
}

#[test]
fn names_that_would_break_generated_objects_are_rejected() {
    let root_rule = |kind: &str| rules(&schema(kind)).join(" ");
    let agent = root_rule("Agent");
    assert!(agent.contains("size(self.metadata.name) <= 63"), "{agent}");
    assert!(agent.contains("'^[a-z]([-a-z0-9]*[a-z0-9])?$'"), "{agent}");
    let cron = root_rule("Cron");
    assert!(
        cron.contains("size(self.metadata.name) <= 63")
            && cron.contains("'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
        "{cron}"
    );
    // The same patterns, checked here: the examples pass, names the API would refuse do not.
    let dns_label = Regex::new("^[a-z]([-a-z0-9]*[a-z0-9])?$").unwrap();
    assert!(
        dns_label.is_match("shrimp")
            && !dns_label.is_match("1shrimp")
            && !dns_label.is_match("my.agent")
    );
}

/// Formats the API server recognises (k8s.io/apiextensions-apiserver validation/formats.go, as
/// of Kubernetes 1.34, names without `-`) for strings, and the OpenAPI integer formats; any other
/// makes `kubectl apply` warn `unrecognized format`.
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "k8sshortname",
    "k8slongname",
];

/// Every `format` below `node` that the API server would not recognise, with its path.
fn unknown_formats(node: &Value, path: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(format) = map.get("format").and_then(Value::as_str) {
                let ok = match map.get("type").and_then(Value::as_str) {
                    Some("integer") => ["int32", "int64"].contains(&format),
                    Some("number") => ["float", "double"].contains(&format),
                    Some("string") => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
                    _ => false,
                };
                if !ok {
                    out.push(format!("{path}: {format}"));
                }
            }
            for (k, v) in map {
                unknown_formats(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unknown_formats(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn schemas_carry_only_formats_the_api_server_knows() {
    let mut unknown = Vec::new();
    for kind in ["Agent", "Channel", "Cron", "NodePairing"] {
        unknown_formats(&schema(kind), kind, &mut unknown);
    }
    assert!(unknown.is_empty(), "unrecognized formats: {unknown:#?}");
    // The walk finds formats at all: the Agent's port is an int32.
    let port =
        &schema("Agent")["properties"]["spec"]["properties"]["gateway"]["properties"]["port"];
    assert_eq!(port["format"], "int32", "{port}");
    let mut planted = Vec::new();
    unknown_formats(
        &serde_json::json!({"properties": {"n": {"type": "integer", "format": "uint16"}}}),
        "x",
        &mut planted,
    );
    assert_eq!(planted, ["x.properties.n: uint16"]);
}
