//! The layering rules, checked on the source: the gateway never reaches into the operator;
//! the plan is pure (no client, no I/O); shared layers point at neither process; the exposure
//! is decided in one place.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The line without its comment and the text of its string literals (field names in messages
/// are not code).
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match (c, escaped) {
                ('\\', false) => escaped = true,
                ('"', false) => {
                    in_string = false;
                    out.push(c);
                }
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if chars.peek() == Some(&'/') => break,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Lines under `src/<module>` that mention any of `forbidden`, as `file:line: text`.
fn offenders(module: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut found = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line);
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_gateway_never_imports_the_operator() {
    let found = offenders("gateway", &["crate::operator", "clawops::operator"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn neither_process_imports_the_command_line() {
    for module in ["gateway", "operator"] {
        let found = offenders(module, &["crate::cli"]);
        assert!(found.is_empty(), "{module}: {found:#?}");
    }
}

#[test]
fn the_plan_holds_no_client_and_does_no_io() {
    let found = offenders(
        "plan",
        &[
            "crate::operator",
            "crate::gateway",
            "kube::Client",
            "Client,",
            "Api::",
            "Api<",
            "std::fs",
            "tokio",
            "reqwest",
            "async ",
            ".await",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn shared_layers_import_neither_process() {
    for module in ["crd", "util", "patrol", "protocol"] {
        let found = offenders(module, &["crate::operator", "crate::gateway"]);
        assert!(found.is_empty(), "{module}: {found:#?}");
    }
}

#[test]
fn the_exposure_is_decided_once() {
    // `crd::Exposure` decides it from `spec.gateway.expose`; everyone else matches on it.
    for module in ["plan", "operator", "gateway", "cli"] {
        let found = offenders(
            module,
            &[
                "expose.as_ref()",
                "expose.ingress",
                "expose.tailscale",
                "e.ingress",
                "e.tailscale",
                "== TailscaleMode",
                "!= TailscaleMode",
            ],
        );
        assert!(found.is_empty(), "{module}: {found:#?}");
    }
}

#[test]
fn the_check_sees_a_violation() {
    // The scanner itself: the operator does import the plan, so a rule against it would fire.
    assert!(!offenders("operator", &["crate::plan"]).is_empty());
    assert_eq!(
        code_of(r#"let f = "spec.gateway.expose.tailscale"; // e.ingress"#),
        r#"let f = ""; "#
    );
}
