//! Device pairing, kept in the state dir as Clawdbot keeps it: `devices/pending.json` (requests
//! by id, expiring after 5 minutes) and `devices/paired.json` (devices by id, with a token per
//! role). Approval mints the device's token; revoking it refuses the device until it pairs again.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::util::hex;
use crate::util::state_dir::{StateDir, StateError};

pub const PENDING_FILE: &str = "devices/pending.json";
pub const PAIRED_FILE: &str = "devices/paired.json";
/// A request not approved within this time is forgotten; the device asks again on its next try.
pub const PENDING_TTL_MS: i64 = 300_000;
/// At most this many requests wait at once: a flood of new keys cannot grow the file.
pub const MAX_PENDING: usize = 32;

pub use super::devices::{DeviceToken, PairedDevice, PendingDevice};

/// What a connecting device is, as the pairing gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Paired for this role with this key.
    Paired(Box<PairedDevice>),
    /// Not paired (or its key or role changed): a request waits under this id.
    Pending { request_id: String, created: bool },
    /// Too many requests wait already.
    Full,
    /// Not paired, and its address may not ask again yet.
    Limited,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "no pending request {0}; `clawops nodes list` shows the current ones (requests expire after 5 minutes)"
    )]
    UnknownRequest(String),
    #[error("no paired device {0}; `clawops nodes list` shows them")]
    UnknownDevice(String),
}

type Pending = BTreeMap<String, PendingDevice>;
type Paired = BTreeMap<String, PairedDevice>;

/// Both files, read once and then kept in memory (the gateway owns them): a connect looks a
/// device up without reading or parsing anything.
#[derive(Default)]
struct Cache {
    loaded: bool,
    pending: Pending,
    paired: Paired,
}

/// The pairing store. One lock serialises read-modify-write of both files; every change is
/// written through before it is answered, except a token's last-used time, which is kept in
/// memory and written with the next change (losing it in a crash loses nothing else).
pub struct PairingStore {
    state: StateDir,
    cache: Mutex<Cache>,
}

/// A fresh token: 16 random bytes as 32 lowercase hex characters, as Clawdbot mints them.
fn new_token() -> String {
    hex(&rand::random::<[u8; 16]>())
}

enum Changed {
    Pending,
    Paired,
    Both,
}

impl PairingStore {
    pub fn new(state: StateDir) -> Self {
        Self {
            state,
            cache: Mutex::default(),
        }
    }

    /// Runs `f` on both maps under the lock (loading them first, pruning expired requests), and
    /// writes what it says it changed. A failed write drops the cache, so memory never runs
    /// ahead of the files.
    fn with<T, E: From<StateError>>(
        &self,
        now_ms: i64,
        f: impl FnOnce(&mut Pending, &mut Paired) -> Result<(T, Option<Changed>), E>,
    ) -> Result<T, E> {
        let mut c = self.cache.lock().expect("pairing lock");
        if !c.loaded {
            c.pending = self.state.read(PENDING_FILE)?.unwrap_or_default();
            c.paired = read_paired(&self.state)?;
            c.loaded = true;
        }
        c.pending.retain(|_, r| now_ms - r.ts <= PENDING_TTL_MS);
        let Cache {
            pending, paired, ..
        } = &mut *c;
        let (out, changed) = f(pending, paired)?;
        let written = match changed {
            None => Ok(()),
            Some(Changed::Pending) => self.state.write(PENDING_FILE, &c.pending),
            Some(Changed::Paired) => self.state.write(PAIRED_FILE, &c.paired),
            Some(Changed::Both) => self
                .state
                .write(PAIRED_FILE, &c.paired)
                .and_then(|_| self.state.write(PENDING_FILE, &c.pending)),
        };
        if let Err(e) = written {
            c.loaded = false;
            return Err(e.into());
        }
        Ok(out)
    }

    /// Whether the device is paired for `role` with this key and a live token.
    fn is_paired(paired: &Paired, request: &PendingDevice) -> Option<PairedDevice> {
        paired
            .get(&request.device_id)
            .filter(|d| {
                d.public_key == request.public_key
                    && d.roles.contains(&request.role)
                    && d.token(&request.role).is_some()
            })
            .cloned()
    }

    /// A device approved with this key and role whose tokens stayed out of the backup it was
    /// restored from (a revoked token stays on record, so a revoked device is never this). It
    /// proved its key, which is what its approval was for: it gets a new token, and a token it
    /// sends from before cannot be checked and is not held against it.
    fn restored_without_token(paired: &Paired, device: &str, public_key: &str, role: &str) -> bool {
        paired.get(device).is_some_and(|d| {
            d.public_key == public_key
                && d.roles.iter().any(|r| r == role)
                && !d.tokens.contains_key(role)
        })
    }

    /// Whether `device`, proven with `public_key`, awaits a new token for `role` after a restore
    /// (see [`Self::restored_without_token`]).
    pub fn awaits_token(&self, device: &str, public_key: &str, role: &str, now_ms: i64) -> bool {
        self.with::<_, StateError>(now_ms, |_, paired| {
            Ok((
                Self::restored_without_token(paired, device, public_key, role),
                None,
            ))
        })
        .unwrap_or(false)
    }

    /// Standalone, where the gateway's record approves devices: a device restored without its
    /// token (see [`Self::restored_without_token`]) is paired again with a new one. `None` for
    /// any other device. (In a cluster its NodePairing decides instead.)
    pub fn reissue(
        &self,
        request: &PendingDevice,
        now_ms: i64,
    ) -> Result<Option<PairedDevice>, StateError> {
        self.with(now_ms, |pending, paired| {
            let r = request;
            if !Self::restored_without_token(paired, &r.device_id, &r.public_key, &r.role) {
                return Ok((None, None));
            }
            let device = pair_in(pending, paired, r.clone(), now_ms);
            Ok((Some(device), Some(Changed::Both)))
        })
    }

    /// The gate for a device that proved its key: paired, or a (new or reused) pending request.
    /// Without `may_ask` (its address asked too often) no new request is made.
    pub fn gate(
        &self,
        request: PendingDevice,
        now_ms: i64,
        may_ask: bool,
    ) -> Result<Gate, StateError> {
        self.with(now_ms, |pending, paired| {
            if let Some(d) = Self::is_paired(paired, &request) {
                return Ok((Gate::Paired(Box::new(d)), None));
            }
            if let Some(r) = pending.values().find(|r| r.device_id == request.device_id) {
                let gate = Gate::Pending {
                    request_id: r.request_id.clone(),
                    created: false,
                };
                return Ok((gate, None));
            }
            if !may_ask {
                return Ok((Gate::Limited, None));
            }
            if pending.len() >= MAX_PENDING {
                return Ok((Gate::Full, None));
            }
            let request = PendingDevice {
                is_repair: paired.contains_key(&request.device_id),
                ts: now_ms,
                ..request
            };
            let id = request.request_id.clone();
            pending.insert(id.clone(), request);
            let gate = Gate::Pending {
                request_id: id,
                created: true,
            };
            Ok((gate, Some(Changed::Pending)))
        })
    }

    /// The public key a paired device proved, if it is paired.
    pub fn public_key(&self, device: &str) -> Option<String> {
        self.with(super::now_ms(), |_, paired| {
            Ok::<_, StateError>((paired.get(device).map(|d| d.public_key.clone()), None))
        })
        .ok()
        .flatten()
    }

    /// A paired device by id, unique id prefix or display name.
    pub fn device(&self, id: &str) -> Result<PairedDevice, StoreError> {
        self.with(super::now_ms(), |_, paired| {
            let key = find_device(paired, id)?;
            Ok((paired[&key].clone(), None))
        })
    }

    /// Pending requests and paired devices.
    pub fn list(&self, now_ms: i64) -> Result<(Vec<PendingDevice>, Vec<PairedDevice>), StateError> {
        self.with(now_ms, |pending, paired| {
            Ok((
                (
                    pending.values().cloned().collect(),
                    paired.values().cloned().collect(),
                ),
                None,
            ))
        })
    }

    /// Approves a pending request (by request id, or by device id or its prefix): the device
    /// becomes paired with a fresh token for its role.
    pub fn approve(&self, id: &str, now_ms: i64) -> Result<PairedDevice, StoreError> {
        self.with(now_ms, |pending, paired| {
            let key = find_request(pending, id)?;
            let request = pending.remove(&key).expect("found above");
            let existing = paired.get(&request.device_id).cloned();
            let device = paired_from(request, existing, now_ms);
            paired.insert(device.device_id.clone(), device.clone());
            Ok((device, Some(Changed::Both)))
        })
    }

    /// Pairs a device approved elsewhere (its NodePairing, in a cluster): kept as it is when it
    /// is paired already with a live token, else paired with a fresh one.
    pub fn pair(&self, request: PendingDevice, now_ms: i64) -> Result<PairedDevice, StoreError> {
        self.with(now_ms, |pending, paired| {
            if let Some(d) = Self::is_paired(paired, &request) {
                return Ok((d, None));
            }
            let device = pair_in(pending, paired, request, now_ms);
            Ok((device, Some(Changed::Both)))
        })
    }

    /// Rejects a pending request; the device may ask again.
    pub fn reject(&self, id: &str, now_ms: i64) -> Result<PendingDevice, StoreError> {
        self.with(now_ms, |pending, _| {
            let key = find_request(pending, id)?;
            let request = pending.remove(&key).expect("found above");
            Ok((request, Some(Changed::Pending)))
        })
    }

    /// Revokes a device's token for `role`: it is refused until approved again.
    pub fn revoke(
        &self,
        device: &str,
        role: &str,
        now_ms: i64,
    ) -> Result<PairedDevice, StoreError> {
        self.update_token(device, role, now_ms, |t| t.revoked_at_ms = Some(now_ms))
    }

    /// Replaces a device's token for `role` with a new one (the old one stops working).
    pub fn rotate(
        &self,
        device: &str,
        role: &str,
        now_ms: i64,
    ) -> Result<PairedDevice, StoreError> {
        self.update_token(device, role, now_ms, |t| {
            t.token = new_token();
            t.rotated_at_ms = Some(now_ms);
            t.revoked_at_ms = None;
        })
    }

    fn update_token(
        &self,
        device: &str,
        role: &str,
        now_ms: i64,
        change: impl FnOnce(&mut DeviceToken),
    ) -> Result<PairedDevice, StoreError> {
        self.with(now_ms, |_, paired| {
            let key = find_device(paired, device)?;
            let d = paired.get_mut(&key).expect("found above");
            let token = d
                .tokens
                .get_mut(role)
                .ok_or_else(|| StoreError::UnknownDevice(format!("{device} (role {role})")))?;
            change(token);
            Ok((d.clone(), Some(Changed::Paired)))
        })
    }

    /// Whether `token` is `device`'s live token for `role`; records its use (in memory).
    pub fn verify_token(&self, device: &str, role: &str, token: &str, now_ms: i64) -> bool {
        self.with::<_, StateError>(now_ms, |_, paired| {
            let Some(t) = paired
                .get_mut(device)
                .and_then(|d| d.tokens.get_mut(role))
                .filter(|t| t.revoked_at_ms.is_none())
            else {
                return Ok((false, None));
            };
            let ok: bool =
                subtle::ConstantTimeEq::ct_eq(t.token.as_bytes(), token.as_bytes()).into();
            if ok {
                t.last_used_at_ms = Some(now_ms);
            }
            Ok((ok, None))
        })
        .unwrap_or(false)
    }
}

/// The paired devices on file. One without its token records — state restored by clawops
/// before backups kept them — cannot be told revoked or not: it is left out, and asks to pair
/// again when it next connects.
fn read_paired(state: &StateDir) -> Result<Paired, StateError> {
    let raw: BTreeMap<String, serde_json::Value> = state.read(PAIRED_FILE)?.unwrap_or_default();
    let mut paired = Paired::new();
    for (id, device) in raw {
        if device.get("tokens").is_none() {
            tracing::warn!(device = %crate::protocol::device::short_id(&id), "a paired device without token records (restored from an older backup): it pairs again");
            continue;
        }
        let device = serde_json::from_value(device).map_err(|source| StateError::Corrupt {
            path: state.path().join(PAIRED_FILE).display().to_string(),
            source,
        })?;
        paired.insert(id, device);
    }
    Ok(paired)
}

/// Pairs `request`'s device: its request goes, and it is paired with a fresh token.
fn pair_in(
    pending: &mut Pending,
    paired: &mut Paired,
    request: PendingDevice,
    now_ms: i64,
) -> PairedDevice {
    pending.retain(|_, r| r.device_id != request.device_id);
    let existing = paired.get(&request.device_id).cloned();
    let device = paired_from(request, existing, now_ms);
    paired.insert(device.device_id.clone(), device.clone());
    device
}

/// The paired device a request becomes: its roles and tokens kept when the key is the same,
/// and a fresh token for its role.
fn paired_from(
    request: PendingDevice,
    existing: Option<PairedDevice>,
    now_ms: i64,
) -> PairedDevice {
    let same_key = existing
        .as_ref()
        .filter(|d| d.public_key == request.public_key);
    let mut roles = same_key.map(|d| d.roles.clone()).unwrap_or_default();
    if !roles.contains(&request.role) {
        roles.push(request.role.clone());
    }
    let mut tokens = same_key.map(|d| d.tokens.clone()).unwrap_or_default();
    let previous = tokens.get(&request.role).map(|t| t.created_at_ms);
    tokens.insert(
        request.role.clone(),
        DeviceToken {
            token: new_token(),
            role: request.role.clone(),
            scopes: request.scopes.clone(),
            created_at_ms: previous.unwrap_or(now_ms),
            rotated_at_ms: previous.map(|_| now_ms),
            revoked_at_ms: None,
            last_used_at_ms: None,
        },
    );
    PairedDevice {
        device_id: request.device_id,
        public_key: request.public_key,
        display_name: request.display_name,
        platform: request.platform,
        client_id: request.client_id,
        client_mode: request.client_mode,
        role: request.role,
        roles,
        scopes: request.scopes,
        remote_ip: request.remote_ip,
        tokens,
        created_at_ms: existing.map_or(now_ms, |d| d.created_at_ms),
        approved_at_ms: now_ms,
    }
}

fn find_request(pending: &Pending, id: &str) -> Result<String, StoreError> {
    if pending.contains_key(id) {
        return Ok(id.to_string());
    }
    let hits: Vec<&String> = pending
        .iter()
        .filter(|(_, r)| !id.is_empty() && r.device_id.starts_with(id))
        .map(|(k, _)| k)
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(StoreError::UnknownRequest(id.into())),
    }
}

/// A paired device by id, unique id prefix, or display name.
fn find_device(paired: &Paired, id: &str) -> Result<String, StoreError> {
    if paired.contains_key(id) {
        return Ok(id.to_string());
    }
    let hits: Vec<&String> = paired
        .iter()
        .filter(|(k, d)| {
            (!id.is_empty() && k.starts_with(id)) || d.display_name.as_deref() == Some(id)
        })
        .map(|(k, _)| k)
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(StoreError::UnknownDevice(id.into())),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
