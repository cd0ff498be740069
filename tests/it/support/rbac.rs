//! What the operator did, as RBAC sees it: each recorded request turned into (API group,
//! resource[/subresource], verb), to hold the operator's ClusterRole to the requests it makes.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::fake_api::Recorded;

pub type Access = (String, String, String);

/// The RBAC view of one request: a server-side apply is authorized as `patch`, and as `create`
/// too, since it creates the object when it does not exist.
pub fn accesses(r: &Recorded) -> Vec<Access> {
    let a = access(r);
    if r.method == "PATCH" && r.content_type.starts_with("application/apply-patch") {
        vec![(a.0.clone(), a.1.clone(), "create".into()), a]
    } else {
        vec![a]
    }
}

/// The RBAC view of one request, as its verb alone.
pub fn access(r: &Recorded) -> Access {
    let segs: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, rest) = if segs[0] == "api" {
        ("", &segs[2..])
    } else {
        (segs[1], &segs[3..])
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        &rest[2..]
    } else {
        rest
    };
    let resource = match rest {
        [res, _name, sub, ..] => format!("{res}/{sub}"),
        [res, ..] => res.to_string(),
        [] => panic!("no resource in {}", r.path),
    };
    let named = rest.len() >= 2;
    let verb = match (r.method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) if r.query.contains("watch=true") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => panic!("unexpected method {m}"),
    };
    (group.to_string(), resource, verb.to_string())
}

/// Every (group, resource, verb) `rules` allow, expanded.
pub fn allowed(rules: &[PolicyRule]) -> BTreeSet<Access> {
    let mut out = BTreeSet::new();
    for rule in rules {
        for g in rule.api_groups.iter().flatten() {
            for res in rule.resources.iter().flatten() {
                for v in &rule.verbs {
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}
