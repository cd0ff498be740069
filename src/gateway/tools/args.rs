//! Reading a tool call's arguments: an object with known keys, each of the expected type, or
//! an error naming the field and what was expected — the model reads it and can correct itself.

use serde_json::{Map, Value};

use super::ToolError;

pub struct Args<'a> {
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Args<'a> {
    pub fn new(v: &'a Value) -> Self {
        Self { map: v.as_object() }
    }

    /// Refuses what is not an object, or has keys other than `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ToolError> {
        let map = self
            .map
            .ok_or_else(|| ToolError::BadArguments("the arguments must be a JSON object".into()))?;
        match map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) if known.is_empty() => Err(ToolError::BadArguments(format!(
                "unknown argument `{k}`; this tool takes none"
            ))),
            Some(k) => Err(ToolError::BadArguments(format!(
                "unknown argument `{k}`; expected {}",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }
}

/// A required, non-empty string argument.
pub fn text_arg(args: &Args, key: &str) -> Result<String, ToolError> {
    match args.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(_) => Err(ToolError::BadArguments(format!(
            "`{key}` must be a non-empty string"
        ))),
        None => Err(ToolError::BadArguments(format!("`{key}` is required"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_field_and_what_is_expected() {
        let v = json!({"node": "desk", "cmd": "ls"});
        let a = Args::new(&v);
        let e = a.only(&["node", "command"]).unwrap_err().to_string();
        assert!(e.contains("`cmd`") && e.contains("node, command"), "{e}");
        assert!(
            text_arg(&a, "command")
                .unwrap_err()
                .to_string()
                .contains("`command` is required")
        );
        let v = json!({"node": 3});
        assert!(
            text_arg(&Args::new(&v), "node")
                .unwrap_err()
                .to_string()
                .contains("non-empty string")
        );
        let v = json!([1]);
        assert!(
            Args::new(&v)
                .only(&[])
                .unwrap_err()
                .to_string()
                .contains("JSON object")
        );
        let v = json!({"x": 1});
        assert!(
            Args::new(&v)
                .only(&[])
                .unwrap_err()
                .to_string()
                .contains("takes none")
        );
        assert_eq!(
            text_arg(&Args::new(&json!({"node": " desk "})), "node").unwrap(),
            "desk"
        );
    }
}
