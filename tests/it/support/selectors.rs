//! Label and field selectors as the API server reads them, for the fake: label selectors with
//! equality and set terms (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`), field
//! selectors with `=`, `==` and `!=` on the fields each kind supports (others are refused with
//! the API server's "field label not supported").

use serde_json::Value;

/// Splits on commas outside parentheses.
fn terms(selector: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&selector[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn set(values: &str) -> Option<Vec<&str>> {
    let inner = values.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(str::trim).collect())
}

/// Whether `obj`'s labels match `selector`, or why the selector is not one.
pub fn labels_match(obj: &Value, selector: &str) -> Result<bool, String> {
    let labels = &obj["metadata"]["labels"];
    let label = |k: &str| labels[k].as_str();
    let unparsable = |t: &str| format!("unable to parse requirement: {t:?}");
    for t in terms(selector) {
        let ok = if let Some((k, v)) = t.split_once("!=") {
            label(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            if !valid_key(k.trim()) {
                return Err(unparsable(t));
            }
            label(k.trim()) == Some(v.trim())
        } else if let Some((k, vs)) = t.split_once(" notin ") {
            let vs = set(vs).ok_or_else(|| unparsable(t))?;
            label(k.trim()).is_none_or(|l| !vs.contains(&l))
        } else if let Some((k, vs)) = t.split_once(" in ") {
            let vs = set(vs).ok_or_else(|| unparsable(t))?;
            label(k.trim()).is_some_and(|l| vs.contains(&l))
        } else if let Some(k) = t.strip_prefix('!') {
            if !valid_key(k) {
                return Err(unparsable(t));
            }
            label(k).is_none()
        } else if valid_key(t) {
            label(t).is_some()
        } else {
            return Err(unparsable(t));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The fields a kind can be selected by, besides `metadata.name` and `metadata.namespace`, and
/// where each lives in the object.
fn fields_of(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "Event" => &[
            ("involvedObject.kind", "/involvedObject/kind"),
            ("involvedObject.namespace", "/involvedObject/namespace"),
            ("involvedObject.name", "/involvedObject/name"),
            ("involvedObject.uid", "/involvedObject/uid"),
            ("involvedObject.apiVersion", "/involvedObject/apiVersion"),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath"),
            ("reason", "/reason"),
            ("reportingComponent", "/reportingComponent"),
            ("source", "/source/component"),
            ("type", "/type"),
        ],
        "Secret" => &[("type", "/type")],
        "Pod" => &[
            ("spec.nodeName", "/spec/nodeName"),
            ("spec.restartPolicy", "/spec/restartPolicy"),
            ("spec.schedulerName", "/spec/schedulerName"),
            ("spec.serviceAccountName", "/spec/serviceAccountName"),
            ("status.phase", "/status/phase"),
            ("status.podIP", "/status/podIP"),
        ],
        "Node" => &[("spec.unschedulable", "/spec/unschedulable")],
        "Namespace" => &[("status.phase", "/status/phase")],
        _ => &[],
    }
}

/// Whether `obj` matches the field `selector`, or the API server's refusal of it. A field the
/// object lacks compares as the empty string, as the API server's field sets do.
pub fn fields_match(obj: &Value, selector: &str) -> Result<bool, String> {
    let kind = obj["kind"].as_str().unwrap_or_default();
    for t in terms(selector) {
        let (field, negate, want) = if let Some((f, v)) = t.split_once("!=") {
            (f, true, v)
        } else if let Some((f, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            (f, false, v)
        } else {
            return Err(format!("invalid selector: '{t}'; can't understand '{t}'"));
        };
        let pointer = match field {
            "metadata.name" => "/metadata/name",
            "metadata.namespace" => "/metadata/namespace",
            f => fields_of(kind)
                .iter()
                .find(|(name, _)| *name == f)
                .map(|(_, p)| *p)
                .ok_or_else(|| format!("field label not supported: {f}"))?,
        };
        let actual = match obj.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        };
        if (actual == want) == negate {
            return Ok(false);
        }
    }
    Ok(true)
}

#[test]
fn selectors_read_like_the_api_servers() {
    let obj = serde_json::json!({"kind": "Event", "metadata": {"name": "e", "labels": {"app": "web", "tier": "front"}},
        "involvedObject": {"kind": "Pod", "name": "web-1"}, "type": "Warning"});
    assert_eq!(labels_match(&obj, "app=web,tier!=back"), Ok(true));
    assert_eq!(labels_match(&obj, "app in (api, web),!canary"), Ok(true));
    assert_eq!(labels_match(&obj, "app notin (web)"), Ok(false));
    assert_eq!(labels_match(&obj, "tier"), Ok(true));
    assert!(labels_match(&obj, "app in web").is_err());
    assert_eq!(
        fields_match(&obj, "involvedObject.name=web-1,type=Warning"),
        Ok(true)
    );
    assert_eq!(fields_match(&obj, "involvedObject.kind!=Pod"), Ok(false));
    assert_eq!(fields_match(&obj, "metadata.name==e"), Ok(true));
    assert_eq!(
        fields_match(&obj, "spec.nodeName=n1"),
        Err("field label not supported: spec.nodeName".into())
    );
}
