//! Frames of the gateway protocol v3: `req`, `res` and `event`, JSON text messages. Clawdbot's
//! client drops any frame with an unknown key or an explicit `null` where a field is optional,
//! so absent fields are left out, never sent as `null`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u32 = 3;

/// Error codes of `res.error.code`.
pub mod codes {
    pub const NOT_LINKED: &str = "NOT_LINKED";
    pub const NOT_PAIRED: &str = "NOT_PAIRED";
    pub const AGENT_TIMEOUT: &str = "AGENT_TIMEOUT";
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
}

/// One frame on the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Frame {
    Req(Request),
    Res(Response),
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub id: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorShape>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorShape {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl ErrorShape {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
            retryable: None,
            retry_after_ms: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl Frame {
    pub fn ok(id: &str, payload: Value) -> Self {
        Frame::Res(Response {
            id: id.into(),
            ok: true,
            payload: Some(payload),
            error: None,
        })
    }

    pub fn err(id: &str, error: ErrorShape) -> Self {
        Frame::Res(Response {
            id: id.into(),
            ok: false,
            payload: None,
            error: Some(error),
        })
    }

    pub fn event(event: &str, payload: Value) -> Self {
        Frame::Event(Event {
            event: event.into(),
            payload: Some(payload),
            seq: None,
        })
    }

    pub fn req(id: &str, method: &str, params: Value) -> Self {
        Frame::Req(Request {
            id: id.into(),
            method: method.into(),
            params: Some(params),
        })
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("frames serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_fields_are_left_out_not_sent_as_null() {
        let text = Frame::ok("1", json!({"a": 1})).to_text();
        assert_eq!(
            text,
            r#"{"type":"res","id":"1","ok":true,"payload":{"a":1}}"#
        );
        let text =
            Frame::err("2", ErrorShape::new(codes::NOT_PAIRED, "pairing required")).to_text();
        assert_eq!(
            text,
            r#"{"type":"res","id":"2","ok":false,"error":{"code":"NOT_PAIRED","message":"pairing required"}}"#
        );
        let text = Frame::event("tick", json!({"ts": 5})).to_text();
        assert_eq!(
            text,
            r#"{"type":"event","event":"tick","payload":{"ts":5}}"#
        );
    }

    #[test]
    fn frames_read_back_and_unknown_keys_are_refused() {
        let f: Frame = serde_json::from_str(
            r#"{"type":"req","id":"x","method":"node.invoke.result","params":{"ok":true}}"#,
        )
        .unwrap();
        assert!(matches!(f, Frame::Req(ref r) if r.method == "node.invoke.result"));
        assert!(
            serde_json::from_str::<Frame>(r#"{"type":"req","id":"x","method":"m","extra":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Frame>(r#"{"type":"bogus","id":"x"}"#).is_err());
    }
}
