//! The layering rules, checked on the source: the gateway never reaches into the operator;
//! the plan is pure (no client, no I/O); shared layers point at neither process; the exposure
//! is decided in one place; the gateway's sibling modules use each other in one direction only
//! (no circles).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

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
fn the_node_host_imports_neither_the_gateway_nor_the_operator() {
    let found = offenders("node", &["crate::gateway", "crate::operator", "crate::cli"]);
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
    for module in ["crd", "util", "patrol", "protocol", "exec"] {
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

/// The names a path names after its leading `super::`/`crate::…::`: the first identifier, or
/// the first of each item of a `{…}` group.
fn first_names(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let (mut depth, mut items, mut item) = (0, Vec::new(), String::new());
    for c in group.chars() {
        match c {
            '}' if depth == 0 => break,
            ',' if depth == 0 => items.push(std::mem::take(&mut item)),
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if !(c == ',' && depth == 0) {
            item.push(c);
        }
    }
    items.push(item);
    items.iter().map(|i| ident(i)).collect()
}

/// For each module of the folder `src/<dir>` (a file `x.rs` or a folder `x/`), the sibling
/// modules its code outside tests names, through `super::` up to the folder or through
/// `crate::<dir>::`.
fn sibling_uses(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let absolute = format!("{}::", dir.replace('/', "::"));
    let mut siblings = BTreeMap::new();
    for entry in std::fs::read_dir(&root).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            siblings.insert(name, rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "mod" {
            siblings.insert(name, vec![path]);
        }
    }
    let path_start = Regex::new(r"(?:^|[^\w:])((?:super::)+|crate::)").unwrap();
    let mut uses = BTreeMap::new();
    for (name, files) in &siblings {
        let mut used = BTreeSet::new();
        for file in files {
            // How many `super::` lead from this file's module up to the folder.
            let rel = file.strip_prefix(&root).unwrap();
            let depth = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
            let text = std::fs::read_to_string(file).expect("readable source");
            let code = text
                .lines()
                .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            for found in path_start.captures_iter(&code) {
                let lead = found.get(1).unwrap();
                let rest = &code[lead.end()..];
                let rest = if lead.as_str() == "crate::" {
                    rest.strip_prefix(absolute.as_str())
                } else {
                    (lead.as_str().matches("super::").count() == depth).then_some(rest)
                };
                used.extend(
                    rest.map(first_names)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|n| n != name && siblings.contains_key(n)),
                );
            }
        }
        uses.insert(name.clone(), used);
    }
    uses
}

/// A circle in `uses`, as the modules along it, if there is one.
fn a_circle(uses: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in uses.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, uses, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    uses.keys()
        .find_map(|n| visit(n, uses, &mut Vec::new(), &mut done))
}

#[test]
fn the_gateways_sibling_modules_form_no_circle() {
    let gateway = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gateway");
    let mut dirs = vec![gateway.clone()];
    let mut at = 0;
    while at < dirs.len() {
        for entry in std::fs::read_dir(&dirs[at]).expect("readable source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        at += 1;
    }
    for dir in dirs {
        let dir = dir.strip_prefix(gateway.parent().unwrap()).unwrap();
        let dir = dir.to_string_lossy();
        let uses = sibling_uses(&dir);
        assert_eq!(a_circle(&uses), None, "{dir}: {uses:#?}");
    }
}

#[test]
fn the_sibling_check_sees_imports() {
    // `super::x`, a `crate::gateway::{…}` group, and the one direction between run and schedule.
    let cron = sibling_uses("gateway/cron");
    assert!(cron["schedule"].contains("run"), "{cron:#?}");
    assert!(cron["schedule"].contains("occurrence"), "{cron:#?}");
    assert!(!cron["run"].contains("schedule"), "{cron:#?}");
    let gateway = sibling_uses("gateway");
    assert!(gateway["api"].contains("cron"), "{gateway:#?}");
    assert!(gateway["api"].contains("telegram"), "{gateway:#?}");
    let circle = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(
        a_circle(&circle),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}
