//! Secrets the operator creates once: the generated gateway token and the Tailscale state.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use secrecy::{ExposeSecret, SecretString};

use super::meta;
use crate::consts::{COMPONENT_GATEWAY, TOKEN_KEY};
use crate::crd::{Agent, SecretKeyRef};

/// Where the gateway token lives: the Agent's own Secret or the generated one.
pub fn token_ref(agent: &Agent) -> SecretKeyRef {
    agent
        .spec
        .gateway
        .auth_token_secret_ref
        .clone()
        .unwrap_or_else(|| SecretKeyRef::new(meta::token_secret_name(agent), TOKEN_KEY))
}

/// The generated token Secret; created once and never rewritten, so the token is stable.
pub fn token_secret(agent: &Agent, token: &SecretString) -> Secret {
    Secret {
        metadata: meta::object_meta(agent, meta::token_secret_name(agent), COMPONENT_GATEWAY),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([(
            TOKEN_KEY.to_string(),
            token.expose_secret().to_string(),
        )])),
        ..Default::default()
    }
}

/// The empty Secret that containerboot keeps the Tailscale node state in (`TS_KUBE_SECRET`).
/// Pre-creating it lets the sidecar's Role omit `create` on Secrets.
pub fn tailscale_state_secret(agent: &Agent) -> Secret {
    Secret {
        metadata: meta::object_meta(agent, meta::tailscale_state_name(agent), "tailscale"),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}
