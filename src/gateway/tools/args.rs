//! The arguments of a tool call, checked before anything runs: every field known, of the right
//! type, names and namespaces as Kubernetes allows them, numbers clamped. A refusal names the
//! field and what it expects, so the model can correct itself.

use serde_json::{Map, Value};

use crate::gateway::tools::ToolError;

/// Longest label selector passed through; real ones are far shorter.
pub const SELECTOR_MAX: usize = 256;

/// A call's arguments, with the fields the tool takes.
#[derive(Debug)]
pub struct Args<'a> {
    tool: &'a str,
    map: &'a Map<String, Value>,
}

fn bad(msg: String) -> ToolError {
    ToolError::BadArguments(msg)
}

impl<'a> Args<'a> {
    /// `args` as the arguments of `tool`, which takes only `fields`.
    pub fn new(tool: &'a str, args: &'a Value, fields: &[&str]) -> Result<Self, ToolError> {
        let map = match args {
            Value::Object(m) => m,
            _ => return Err(bad(format!("{tool} takes a JSON object of arguments"))),
        };
        if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            let takes = if fields.is_empty() {
                "no arguments".to_string()
            } else {
                fields.join(", ")
            };
            return Err(bad(format!(
                "unknown argument `{unknown}`; {tool} takes {takes}"
            )));
        }
        Ok(Self { tool, map })
    }

    /// A field's value; null counts as absent, as models send it for optional fields.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn missing(&self, field: &str) -> ToolError {
        bad(format!("{} needs `{field}`", self.tool))
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ToolError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(other) => Err(bad(format!(
                "`{field}` must be a string, not {}",
                type_of(other)
            ))),
        }
    }

    pub fn str(&self, field: &str) -> Result<&'a str, ToolError> {
        self.opt_str(field)?.ok_or_else(|| self.missing(field))
    }

    /// An object name (DNS-1123 subdomain, as pod, node and ConfigMap names are).
    pub fn name(&self, field: &str) -> Result<&'a str, ToolError> {
        self.opt_name(field)?.ok_or_else(|| self.missing(field))
    }

    pub fn opt_name(&self, field: &str) -> Result<Option<&'a str>, ToolError> {
        let v = self.opt_str(field)?;
        match v {
            Some(n) if !is_subdomain(n) => Err(bad(format!(
                "`{field}` must be a Kubernetes object name (lowercase letters, digits, '-' and '.'), not {n:?}"
            ))),
            _ => Ok(v),
        }
    }

    /// A namespace (DNS-1123 label).
    pub fn namespace(&self, field: &str) -> Result<Option<&'a str>, ToolError> {
        self.opt_label(field, "namespace")
    }

    /// A DNS-1123 label, such as a namespace or a container name.
    pub fn opt_label(&self, field: &str, what: &str) -> Result<Option<&'a str>, ToolError> {
        let v = self.opt_str(field)?;
        match v {
            Some(n) if !is_label(n) => Err(bad(format!(
                "`{field}` must be a {what} name (lowercase letters, digits and '-', at most 63), not {n:?}"
            ))),
            _ => Ok(v),
        }
    }

    /// A label selector, passed to the API server as it is (it knows the syntax), but bounded.
    pub fn selector(&self, field: &str) -> Result<Option<&'a str>, ToolError> {
        let v = self.opt_str(field)?;
        match v {
            Some(s) if s.len() > SELECTOR_MAX => Err(bad(format!(
                "`{field}` is longer than {SELECTOR_MAX} characters"
            ))),
            _ => Ok(v),
        }
    }

    /// A whole number, `default` when absent, clamped to `min..=max`.
    pub fn count(&self, field: &str, default: u32, min: u32, max: u32) -> Result<u32, ToolError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Number(n)) => {
                let v = n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .ok_or_else(|| bad(format!("`{field}` must be a whole number, not {n}")))?;
                Ok(v.clamp(min as i64, max as i64) as u32)
            }
            Some(other) => Err(bad(format!(
                "`{field}` must be a whole number ({min} to {max}), not {}",
                type_of(other)
            ))),
        }
    }

    pub fn flag(&self, field: &str) -> Result<bool, ToolError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(bad(format!(
                "`{field}` must be true or false, not {}",
                type_of(other)
            ))),
        }
    }
}

fn type_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A DNS-1123 label: 1 to 63 lowercase letters, digits and '-', starting and ending with a
/// letter or digit.
pub fn is_label(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&s.len())
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || c == '-')
}

/// A DNS-1123 subdomain: labels joined by '.', at most 253 characters.
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bad_args(r: Result<impl std::fmt::Debug, ToolError>) -> String {
        match r {
            Err(ToolError::BadArguments(m)) => m,
            other => panic!("expected BadArguments, got {other:?}"),
        }
    }

    #[test]
    fn names_and_namespaces_are_dns_1123() {
        for ok in ["web", "web-1", "a.b-c.d", "0abc"] {
            assert!(is_subdomain(ok), "{ok}");
        }
        for no in [
            "", "../etc", "Web", "a/b", "-a", "a-", "a..b", "a b", "pods?x=1",
        ] {
            assert!(!is_subdomain(no), "{no}");
        }
        assert!(is_label("kube-system"));
        assert!(!is_label("a.b"));
        assert!(!is_label(&"a".repeat(64)));
        let v = json!({"name": "../secrets", "namespace": "kube.system"});
        let a = Args::new("k8s_get", &v, &["name", "namespace"]).unwrap();
        assert!(bad_args(a.name("name")).contains("`name`"));
        assert!(bad_args(a.namespace("namespace")).contains("`namespace`"));
    }

    #[test]
    fn unknown_missing_and_mistyped_fields_are_named() {
        let v = json!({"kind": "pods", "verb": "delete"});
        let m = bad_args(Args::new("k8s_list", &v, &["kind", "limit"]));
        assert!(m.contains("`verb`") && m.contains("kind, limit"), "{m}");
        assert!(bad_args(Args::new("k8s_list", &json!([1]), &[])).contains("JSON object"));
        let v = json!({"kind": 3, "limit": "ten", "previous": "yes", "name": null});
        let a = Args::new("t", &v, &["kind", "limit", "previous", "name"]).unwrap();
        assert!(bad_args(a.str("kind")).contains("`kind` must be a string, not the number 3"));
        assert!(bad_args(a.count("limit", 50, 1, 200)).contains("`limit` must be a whole number"));
        assert!(bad_args(a.flag("previous")).contains("true or false"));
        assert!(bad_args(a.name("name")).contains("t needs `name`"));
    }

    #[test]
    fn counts_are_clamped() {
        let a = |v: Value| {
            let args = json!({ "limit": v });
            Args::new("t", &args, &["limit"])
                .unwrap()
                .count("limit", 50, 1, 200)
        };
        assert_eq!(a(Value::Null), Ok(50));
        assert_eq!(a(json!(0)), Ok(1));
        assert_eq!(a(json!(-5)), Ok(1));
        assert_eq!(a(json!(20)), Ok(20));
        assert_eq!(a(json!(20.0)), Ok(20));
        assert_eq!(a(json!(10_000)), Ok(200));
        assert!(a(json!(2.5)).is_err());
    }

    #[test]
    fn selectors_are_capped() {
        let long = json!({"labelSelector": "a=".repeat(200)});
        let a = Args::new("t", &long, &["labelSelector"]).unwrap();
        assert!(bad_args(a.selector("labelSelector")).contains("256"));
        let ok = json!({"labelSelector": "app in (web,api),tier!=cache"});
        let a = Args::new("t", &ok, &["labelSelector"]).unwrap();
        assert_eq!(
            a.selector("labelSelector").unwrap(),
            Some("app in (web,api),tier!=cache")
        );
    }
}
