//! The tool-calling part of the chat-completions wire format, OpenAI-compatible as GLM speaks it
//! (reference §7): tool definitions sent in `tools`, the `tool_calls` of an assistant message
//! (arguments as a JSON string, or an object as GLM sometimes sends them), and the `tool`
//! message that answers one.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A tool the model may call: its name, what it is for, and a JSON Schema of its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Value,
}

impl ToolDef {
    /// The `tools[]` entry of a request.
    pub fn wire(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// One call the model asked for, as it goes back in the assistant message of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function() -> String {
    "function".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// The arguments as JSON text (an object the model sent is kept as its text).
    #[serde(deserialize_with = "text_or_object")]
    pub arguments: String,
}

fn text_or_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

impl ToolCall {
    pub fn name(&self) -> &str {
        &self.function.name
    }

    /// The arguments as a JSON object (empty text is no arguments), or why they are not one.
    pub fn args(&self) -> Result<Value, String> {
        let text = self.function.arguments.trim();
        if text.is_empty() {
            return Ok(json!({}));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err("the arguments must be a JSON object".into()),
            Err(e) => Err(format!("the arguments are not valid JSON: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_come_as_text_or_as_an_object() {
        let as_text: ToolCall = serde_json::from_value(json!({
            "id": "call_1", "type": "function",
            "function": {"name": "k8s_list", "arguments": "{\"kind\":\"pods\"}"}
        }))
        .unwrap();
        let as_object: ToolCall = serde_json::from_value(json!({
            "id": "call_1",
            "function": {"name": "k8s_list", "arguments": {"kind": "pods"}}
        }))
        .unwrap();
        assert_eq!(as_text.args().unwrap(), json!({"kind": "pods"}));
        assert_eq!(as_object.args().unwrap(), json!({"kind": "pods"}));
        assert_eq!(as_object.kind, "function");
        // It goes back to the model as text, as OpenAI-compatible APIs require.
        assert_eq!(
            serde_json::to_value(&as_object).unwrap()["function"]["arguments"],
            "{\"kind\":\"pods\"}"
        );
    }

    #[test]
    fn malformed_arguments_say_what_is_wrong() {
        let call = |a: &str| ToolCall {
            id: "c".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "x".into(),
                arguments: a.into(),
            },
        };
        assert_eq!(call("").args().unwrap(), json!({}));
        assert!(
            call("{kind:")
                .args()
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(call("[1]").args().unwrap_err().contains("JSON object"));
    }
}
