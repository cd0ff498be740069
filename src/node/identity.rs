//! The node's identity: its Ed25519 key in `identity/device.json` (Clawdbot's format, so a
//! key can move between the two) and the device token the gateway gave it at approval, in
//! `identity/device-auth.json`. Both 0600 in the node's state dir.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::protocol::device;
use crate::util::state_dir::{StateDir, StateError};

pub const DEVICE_FILE: &str = "identity/device.json";
pub const AUTH_FILE: &str = "identity/device-auth.json";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "{path}: {what}; move the file away to make a new identity (the node must then be approved again)"
    )]
    Invalid { path: String, what: String },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceFile {
    version: u32,
    device_id: String,
    public_key_pem: String,
    private_key_pem: String,
    created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredToken {
    pub token: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    version: u32,
    device_id: String,
    tokens: BTreeMap<String, StoredToken>,
}

/// The node's key and id.
pub struct Identity {
    pub key: SigningKey,
    pub device_id: String,
}

impl Identity {
    /// The first 12 characters of the id, as logs and the CLI show it.
    pub fn short_id(&self) -> &str {
        &self.device_id[..12]
    }
}

/// Reads the identity, creating it on first use.
pub fn load_or_create(state: &StateDir) -> Result<Identity, IdentityError> {
    let path = state.path().join(DEVICE_FILE).display().to_string();
    match state.read::<DeviceFile>(DEVICE_FILE) {
        Ok(Some(f)) => {
            let key = device::parse_private_key_pem(&f.private_key_pem).map_err(|e| {
                IdentityError::Invalid {
                    path: path.clone(),
                    what: e.to_string(),
                }
            })?;
            let device_id = device::device_id(&key.verifying_key());
            if device_id != f.device_id {
                return Err(IdentityError::Invalid {
                    path,
                    what: "deviceId is not the SHA-256 of its key".into(),
                });
            }
            Ok(Identity { key, device_id })
        }
        Ok(None) => {
            let key = device::generate_key();
            let device_id = device::device_id(&key.verifying_key());
            state.write(
                DEVICE_FILE,
                &DeviceFile {
                    version: 1,
                    device_id: device_id.clone(),
                    public_key_pem: device::public_key_pem(&key.verifying_key()),
                    private_key_pem: device::private_key_pem(&key),
                    created_at_ms: chrono::Utc::now().timestamp_millis(),
                },
            )?;
            Ok(Identity { key, device_id })
        }
        Err(StateError::Corrupt { source, .. }) => Err(IdentityError::Invalid {
            path,
            what: format!("not a device identity ({source})"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The device token stored for `role`, if it was issued to this identity.
pub fn stored_token(state: &StateDir, id: &Identity, role: &str) -> Option<StoredToken> {
    let f: AuthFile = state.read(AUTH_FILE).ok().flatten()?;
    (f.device_id == id.device_id)
        .then(|| f.tokens.get(role).cloned())
        .flatten()
}

/// Stores (or with `None` forgets) the device token for `role`.
pub fn store_token(
    state: &StateDir,
    id: &Identity,
    role: &str,
    token: Option<StoredToken>,
) -> Result<(), StateError> {
    let mut f: AuthFile = state
        .read(AUTH_FILE)
        .ok()
        .flatten()
        .filter(|f: &AuthFile| f.device_id == id.device_id)
        .unwrap_or_else(|| AuthFile {
            version: 1,
            device_id: id.device_id.clone(),
            tokens: BTreeMap::new(),
        });
    match token {
        Some(t) => f.tokens.insert(role.into(), t),
        None => f.tokens.remove(role),
    };
    state.write(AUTH_FILE, &f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state() -> StateDir {
        StateDir::open(std::env::temp_dir().join(format!(
            "clawops-node-id-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        )))
        .unwrap()
    }

    #[test]
    fn the_identity_is_made_once_kept_private_and_read_back() {
        let s = state();
        let a = load_or_create(&s).unwrap();
        let b = load_or_create(&s).unwrap();
        assert_eq!(a.device_id, b.device_id);
        assert_eq!(a.key.as_bytes(), b.key.as_bytes());
        let mode = std::fs::metadata(s.path().join(DEVICE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let raw: serde_json::Value = s.read(DEVICE_FILE).unwrap().unwrap();
        assert!(
            raw["publicKeyPem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }

    #[test]
    fn a_damaged_identity_is_an_error_not_a_silent_new_key() {
        let s = state();
        std::fs::create_dir_all(s.path().join("identity")).unwrap();
        std::fs::write(s.path().join(DEVICE_FILE), "{").unwrap();
        let err = load_or_create(&s).err().unwrap().to_string();
        assert!(
            err.contains("device.json") && err.contains("move the file away"),
            "{err}"
        );
    }

    #[test]
    fn tokens_belong_to_their_identity() {
        let s = state();
        let id = load_or_create(&s).unwrap();
        let t = StoredToken {
            token: "abc".into(),
            role: "node".into(),
            scopes: vec![],
            updated_at_ms: 1,
        };
        store_token(&s, &id, "node", Some(t.clone())).unwrap();
        assert_eq!(stored_token(&s, &id, "node"), Some(t));
        let other = Identity {
            key: device::generate_key(),
            device_id: "f".repeat(64),
        };
        assert_eq!(stored_token(&s, &other, "node"), None);
        store_token(&s, &id, "node", None).unwrap();
        assert_eq!(stored_token(&s, &id, "node"), None);
    }
}
