//! The connect handshake, decided purely: from the `connect` params, the challenge nonce and
//! the clock to the device that may go on to auth and the pairing gate, or the refusal (error
//! frame and close code) in Clawdbot's words, with a clear reason where Clawdbot has none.

use serde_json::json;

use crate::protocol::connect::{ConnectParams, ROLE_NODE, ROLE_OPERATOR, SIGNATURE_SKEW_MS};
use crate::protocol::device::{self, SignedConnect};
use crate::protocol::frames::{ErrorShape, PROTOCOL_VERSION, codes};

/// WebSocket close codes used here.
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_RESTART: u16 = 1012;

/// A refusal: the error answered to `connect` (when there is a request to answer) and the close.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: Option<Box<ErrorShape>>,
    pub code: u16,
    pub reason: String,
}

impl Refusal {
    /// Refused with `message` both as the error and (cut to fit a close frame) as the reason.
    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            reason: close_reason(&message),
            error: Some(Box::new(ErrorShape::new(code, message))),
            code: CLOSE_POLICY,
        }
    }

    /// Closed without an answer (there is no request id to answer).
    pub fn close(code: u16, reason: &str) -> Self {
        Self {
            error: None,
            code,
            reason: close_reason(reason),
        }
    }
}

/// A close reason fits in 123 bytes; like Clawdbot, cut at 120 on a character boundary.
pub fn close_reason(text: &str) -> String {
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// A device that proved it holds its key, for this connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Proven {
    pub device_id: String,
    /// Normalised: raw key, unpadded base64url.
    pub public_key: String,
    pub role: String,
    pub scopes: Vec<String>,
}

/// Checks `params` in Clawdbot's order: protocol, role, device identity, clock, nonce, key,
/// signature. Auth and the pairing gate come after, with the store.
pub fn check(params: &ConnectParams, nonce: &str, now_ms: i64) -> Result<Proven, Refusal> {
    if let Some(problem) = params.schema_problem() {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            format!("invalid connect params: {problem}"),
        ));
    }
    if !params.speaks_our_protocol() {
        return Err(Refusal {
            error: Some(Box::new(
                ErrorShape::new(codes::INVALID_REQUEST, "protocol mismatch")
                    .with_details(json!({ "expectedProtocol": PROTOCOL_VERSION })),
            )),
            code: CLOSE_PROTOCOL,
            reason: "protocol mismatch".into(),
        });
    }
    let role = params.role.clone().unwrap_or_else(|| ROLE_OPERATOR.into());
    if role != ROLE_NODE && role != ROLE_OPERATOR {
        return Err(Refusal::invalid(codes::INVALID_REQUEST, "invalid role"));
    }
    if role == ROLE_OPERATOR {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            "operator connections are not served on this socket; use the gateway's /api",
        ));
    }
    let Some(d) = &params.device else {
        return Err(Refusal::invalid(
            codes::NOT_PAIRED,
            "device identity required",
        ));
    };
    let key = device::parse_public_key(&d.public_key)
        .map_err(|_| Refusal::invalid(codes::INVALID_REQUEST, "device public key invalid"))?;
    if device::device_id(&key) != d.id {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            "device identity mismatch",
        ));
    }
    if (now_ms - d.signed_at).abs() > SIGNATURE_SKEW_MS {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            format!(
                "device signature expired: signedAt is {} s from the gateway's clock (at most 600 s allowed); check the node's clock",
                (now_ms - d.signed_at).abs() / 1000
            ),
        ));
    }
    // The nonce proves the signature was made for this connection: a recorded connect cannot
    // be replayed. Clawdbot lets local clients skip it; here every client echoes it.
    let sent_nonce = match d.nonce.as_deref() {
        None | Some("") => {
            return Err(Refusal::invalid(
                codes::INVALID_REQUEST,
                "device nonce required",
            ));
        }
        Some(n) => n,
    };
    if sent_nonce != nonce {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            "device nonce mismatch",
        ));
    }
    let scopes = params.scopes.clone().unwrap_or_default();
    let signed = SignedConnect {
        device_id: &d.id,
        client_id: &params.client.id,
        client_mode: &params.client.mode,
        role: &role,
        scopes: &scopes,
        signed_at_ms: d.signed_at,
        token: params
            .auth
            .as_ref()
            .and_then(|a| a.token.as_deref())
            .unwrap_or_default(),
        nonce: Some(sent_nonce),
    };
    if signed.verify(&key, &d.signature) != Ok(true) {
        return Err(Refusal::invalid(
            codes::INVALID_REQUEST,
            "device signature invalid",
        ));
    }
    Ok(Proven {
        device_id: d.id.clone(),
        public_key: device::encode_public_key(&key),
        role,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::connect::{ClientInfo, ConnectAuth, DeviceBlock};
    use ed25519_dalek::SigningKey;

    const NOW: i64 = 1_737_800_000_000;

    fn params(key: &SigningKey, nonce: &str, token: &str, signed_at: i64) -> ConnectParams {
        let id = device::device_id(&key.verifying_key());
        let scopes: Vec<String> = Vec::new();
        let signature = SignedConnect {
            device_id: &id,
            client_id: "node-host",
            client_mode: "node",
            role: "node",
            scopes: &scopes,
            signed_at_ms: signed_at,
            token,
            nonce: Some(nonce),
        }
        .sign(key);
        ConnectParams {
            min_protocol: 3,
            max_protocol: 3,
            client: ClientInfo {
                id: "node-host".into(),
                display_name: Some("desk".into()),
                version: "1".into(),
                platform: "linux".into(),
                device_family: None,
                model_identifier: None,
                mode: "node".into(),
                instance_id: None,
            },
            caps: None,
            commands: Some(vec!["system.run".into()]),
            permissions: None,
            path_env: None,
            role: Some("node".into()),
            scopes: Some(scopes),
            device: Some(DeviceBlock {
                id,
                public_key: device::encode_public_key(&key.verifying_key()),
                signature,
                signed_at,
                nonce: Some(nonce.into()),
            }),
            auth: Some(ConnectAuth {
                token: Some(token.into()),
                password: None,
            }),
            locale: None,
            user_agent: None,
        }
    }

    fn reason(r: Result<Proven, Refusal>) -> String {
        let r = r.expect_err("refused");
        r.error.map(|e| e.message).unwrap_or(r.reason)
    }

    #[test]
    fn a_well_signed_connect_proves_its_device() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let p = check(&params(&key, "n1", "tok", NOW), "n1", NOW + 5).unwrap();
        // The reference's vector: seed 0x07 × 32.
        assert_eq!(
            p.device_id,
            "fe812c12f3ab4ce6ac5db69ac352f906cb1b11ef43fb33e252ef7ff552263889"
        );
        assert_eq!(p.public_key, "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw");
        assert_eq!(p.role, "node");
    }

    #[test]
    fn clawdbots_own_signature_verifies() {
        // Signed by Clawdbot 2026.1.24's device-auth.js over its v2 example string.
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut p = params(
            &key,
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "s3cret",
            1_737_800_000_000,
        );
        p.device.as_mut().unwrap().signature =
            "kT1Z9A2pGiT3cFYqPisyy7KdZqCJrfh0lRagfPzqOwFJNudL7MkpoxgzU-2iuHE7oTK01hpSUpvPfRr_y8O7CA".into();
        assert!(check(&p, "0f8fad5b-d9cb-469f-a165-70867728950e", NOW).is_ok());
    }

    #[test]
    fn each_bad_connect_is_refused_with_its_own_reason() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let good = params(&key, "n1", "tok", NOW);
        assert_eq!(reason(check(&good, "n2", NOW)), "device nonce mismatch");
        assert!(reason(check(&good, "n1", NOW + 900_000)).starts_with("device signature expired"));
        let mut p = good.clone();
        p.device.as_mut().unwrap().nonce = None;
        assert_eq!(reason(check(&p, "n1", NOW)), "device nonce required");
        let mut p = good.clone();
        p.auth.as_mut().unwrap().token = Some("other".into());
        assert_eq!(reason(check(&p, "n1", NOW)), "device signature invalid");
        let mut p = good.clone();
        p.device.as_mut().unwrap().id = "0".repeat(64);
        assert_eq!(reason(check(&p, "n1", NOW)), "device identity mismatch");
        let mut p = good.clone();
        p.device.as_mut().unwrap().public_key = "short".into();
        assert_eq!(reason(check(&p, "n1", NOW)), "device public key invalid");
        let mut p = good.clone();
        p.device = None;
        let r = check(&p, "n1", NOW).unwrap_err();
        assert_eq!(r.error.unwrap().code, codes::NOT_PAIRED);
        let mut p = good.clone();
        p.min_protocol = 4;
        p.max_protocol = 4;
        let r = check(&p, "n1", NOW).unwrap_err();
        assert_eq!(
            (r.code, r.reason.as_str()),
            (CLOSE_PROTOCOL, "protocol mismatch")
        );
        let mut p = good.clone();
        p.role = Some("admin".into());
        assert_eq!(reason(check(&p, "n1", NOW)), "invalid role");
        let mut p = good;
        p.client.mode = "god".into();
        assert!(reason(check(&p, "n1", NOW)).starts_with("invalid connect params: client.mode"));
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 120 && long.starts_with(&cut));
    }
}
