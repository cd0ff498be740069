//! DM pairing, as upstream: an unknown sender gets an 8-character code once; the owner approves
//! it; the sender is allowed from then on. Pending requests expire after an hour, at most three
//! per channel. Both lists live in the state directory and survive restarts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::util::state_dir::{StateDir, StateError};

pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const CODE_LENGTH: usize = 8;
pub const PENDING_TTL: Duration = Duration::hours(1);
pub const PENDING_MAX: usize = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

impl SenderMeta {
    /// `@username`, else the name.
    pub fn label(&self) -> Option<String> {
        self.username.as_ref().map(|u| format!("@{u}")).or_else(|| {
            let name = [self.first_name.as_deref(), self.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!name.is_empty()).then_some(name)
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The sender's Telegram id (the chat id of a DM).
    pub id: String,
    pub code: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    #[serde(default)]
    pub meta: SenderMeta,
}

impl Request {
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.created_at + PENDING_TTL
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    requests: Vec<Request>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllowFile {
    version: u32,
    allow_from: Vec<String>,
}

/// What happened to an unknown sender's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new code: reply with it.
    Created(String),
    /// Already waiting for approval: no new reply.
    Pending,
    /// Three requests already wait: no reply.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(
        "no pending pairing request found for code {0}; `clawops pairing list` shows the pending ones (codes expire after an hour)"
    )]
    NotFound(String),
    #[error("{0} is not an approved sender; `clawops pairing list` shows how many there are")]
    NotApproved(String),
    #[error(transparent)]
    State(#[from] StateError),
}

struct Lists {
    pending: Vec<Request>,
    allowed: Vec<String>,
}

pub struct PairingStore {
    state: StateDir,
    pending_file: String,
    allow_file: String,
    lists: Mutex<Lists>,
}

/// Takes the live request with `code` (case-insensitively) out of the pending list.
fn take_pending(l: &mut Lists, code: &str, now: DateTime<Utc>) -> Result<Request, PairingError> {
    let wanted = code.trim().to_ascii_uppercase();
    let i = l
        .pending
        .iter()
        .position(|r| r.code == wanted && r.expires_at() > now)
        .ok_or_else(|| PairingError::NotFound(code.trim().to_string()))?;
    Ok(l.pending.remove(i))
}

fn new_code(taken: &[Request]) -> String {
    loop {
        let code: String = (0..CODE_LENGTH)
            .map(|_| CODE_ALPHABET[rand::random_range(0..CODE_ALPHABET.len())] as char)
            .collect();
        if !taken.iter().any(|r| r.code == code) {
            return code;
        }
    }
}

impl PairingStore {
    /// Opens the lists of channel `channel` (upstream's `credentials/telegram-pairing.json` and
    /// `telegram-allowFrom.json`, one pair per channel).
    pub fn open(state: StateDir, channel: &str) -> Result<Self, StateError> {
        let pending_file = format!("credentials/{channel}-pairing.json");
        let allow_file = format!("credentials/{channel}-allowFrom.json");
        let pending = state
            .read::<PendingFile>(&pending_file)?
            .unwrap_or_default()
            .requests;
        let allowed = state
            .read::<AllowFile>(&allow_file)?
            .unwrap_or_default()
            .allow_from;
        Ok(Self {
            state,
            pending_file,
            allow_file,
            lists: Mutex::new(Lists { pending, allowed }),
        })
    }

    pub async fn is_allowed(&self, sender: &str) -> bool {
        self.lists.lock().await.allowed.iter().any(|a| a == sender)
    }

    pub async fn allowed_count(&self) -> usize {
        self.lists.lock().await.allowed.len()
    }

    /// Records a message from an unknown sender.
    pub async fn request(
        &self,
        sender: &str,
        meta: SenderMeta,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StateError> {
        let mut l = self.lists.lock().await;
        l.pending.retain(|r| r.expires_at() > now);
        if let Some(r) = l.pending.iter_mut().find(|r| r.id == sender) {
            // Repeats keep the code and do not extend the expiry; nothing to save.
            r.last_seen_at = now;
            return Ok(Outcome::Pending);
        }
        if l.pending.len() >= PENDING_MAX {
            return Ok(Outcome::Full);
        }
        let code = new_code(&l.pending);
        let mut next = l.pending.clone();
        next.push(Request {
            id: sender.into(),
            code: code.clone(),
            created_at: now,
            last_seen_at: now,
            meta,
        });
        // Saved first: a code the store could not keep is never handed out.
        let (state, file, body) = (
            self.state.clone(),
            self.pending_file.clone(),
            PendingFile {
                version: 1,
                requests: next.clone(),
            },
        );
        tokio::task::spawn_blocking(move || state.write(&file, &body))
            .await
            .expect("pairing write")?;
        l.pending = next;
        let outcome = Outcome::Created(code);
        Ok(outcome)
    }

    /// Pending requests that have not expired.
    pub async fn pending(&self, now: DateTime<Utc>) -> Vec<Request> {
        self.lists
            .lock()
            .await
            .pending
            .iter()
            .filter(|r| r.expires_at() > now)
            .cloned()
            .collect()
    }

    /// Approves a code (case-insensitively): the sender joins the allow list.
    pub async fn approve(&self, code: &str, now: DateTime<Utc>) -> Result<Request, PairingError> {
        let mut l = self.lists.lock().await;
        let request = take_pending(&mut l, code, now)?;
        if !l.allowed.contains(&request.id) {
            l.allowed.push(request.id.clone());
        }
        self.save_allowed(&l)?;
        self.save_pending(&l)?;
        Ok(request)
    }

    /// Rejects a code: the request goes; the sender gets a new code if they write again.
    pub async fn reject(&self, code: &str, now: DateTime<Utc>) -> Result<Request, PairingError> {
        let mut l = self.lists.lock().await;
        let request = take_pending(&mut l, code, now)?;
        self.save_pending(&l)?;
        Ok(request)
    }

    /// The approved senders' ids.
    pub async fn allowed(&self) -> Vec<String> {
        self.lists.lock().await.allowed.clone()
    }

    /// Takes a sender off the allow list: their next message asks to pair again.
    pub async fn revoke(&self, sender: &str) -> Result<(), PairingError> {
        let mut l = self.lists.lock().await;
        let before = l.allowed.len();
        l.allowed.retain(|a| a != sender.trim());
        if l.allowed.len() == before {
            return Err(PairingError::NotApproved(sender.trim().to_string()));
        }
        self.save_allowed(&l)?;
        Ok(())
    }

    /// Adds what an import carried over: approved senders not approved yet, and pending
    /// requests still live from senders neither approved nor waiting, within the cap. Returns
    /// how many of each were added.
    pub async fn import(
        &self,
        state: &crate::api::PairingState,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StateError> {
        let mut l = self.lists.lock().await;
        let mut added = (0, 0);
        for a in &state.allowed {
            let a = a.trim();
            if !a.is_empty() && !l.allowed.iter().any(|x| x == a) {
                l.allowed.push(a.to_string());
                added.0 += 1;
            }
        }
        l.pending.retain(|r| r.expires_at() > now);
        for r in &state.pending {
            let known = l.allowed.contains(&r.id) || l.pending.iter().any(|p| p.id == r.id);
            if r.expires_at() > now && !known && l.pending.len() < PENDING_MAX {
                l.pending.push(r.clone());
                added.1 += 1;
            }
        }
        self.save_allowed(&l)?;
        self.save_pending(&l)?;
        Ok(added)
    }

    fn save_allowed(&self, l: &Lists) -> Result<(), StateError> {
        self.state.write(
            &self.allow_file,
            &AllowFile {
                version: 1,
                allow_from: l.allowed.clone(),
            },
        )
    }

    fn save_pending(&self, l: &Lists) -> Result<(), StateError> {
        self.state.write(
            &self.pending_file,
            &PendingFile {
                version: 1,
                requests: l.pending.clone(),
            },
        )
    }
}

/// The reply to an unknown sender: upstream's text, with our command.
pub fn pairing_reply(sender_id: &str, code: &str, channel: &str) -> String {
    format!(
        "clawops: access not configured.\n\nYour Telegram user id: {sender_id}\n\nPairing code: {code}\n\nAsk the bot owner to approve with:\nclawops pairing approve {channel} {code}"
    )
}

pub const APPROVED_NOTICE: &str = "✅ clawops access approved. Send a message to start chatting.";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rejected_code_is_gone_and_a_revoked_sender_must_pair_again() {
        let s = store();
        let Outcome::Created(code) = s.request("1", SenderMeta::default(), t(0)).await.unwrap()
        else {
            panic!()
        };
        s.reject(&code.to_lowercase(), t(1)).await.unwrap();
        assert!(s.pending(t(1)).await.is_empty());
        assert!(matches!(
            s.approve(&code, t(1)).await,
            Err(PairingError::NotFound(_))
        ));
        let Outcome::Created(again) = s.request("1", SenderMeta::default(), t(2)).await.unwrap()
        else {
            panic!("a rejected sender asks anew")
        };
        s.approve(&again, t(2)).await.unwrap();
        assert_eq!(s.allowed().await, ["1"]);
        s.revoke("1").await.unwrap();
        assert!(!s.is_allowed("1").await);
        assert!(matches!(
            s.revoke("1").await,
            Err(PairingError::NotApproved(_))
        ));
        // Kept across a restart.
        let reopened = PairingStore::open(s.state.clone(), "telegram").unwrap();
        assert!(reopened.allowed().await.is_empty());
    }

    fn store() -> PairingStore {
        let dir = std::env::temp_dir().join(format!(
            "clawops-pairing-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        PairingStore::open(StateDir::open(dir).unwrap(), "telegram").unwrap()
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        "2026-11-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
    }

    #[tokio::test]
    async fn codes_use_the_alphabet_once_per_sender_and_at_most_three() {
        let s = store();
        let Outcome::Created(code) = s.request("1", SenderMeta::default(), t(0)).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(code.len(), CODE_LENGTH);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
        assert_eq!(
            s.request("1", SenderMeta::default(), t(1)).await.unwrap(),
            Outcome::Pending,
            "no second code"
        );
        assert!(matches!(
            s.request("2", SenderMeta::default(), t(1)).await.unwrap(),
            Outcome::Created(_)
        ));
        assert!(matches!(
            s.request("3", SenderMeta::default(), t(1)).await.unwrap(),
            Outcome::Created(_)
        ));
        assert_eq!(
            s.request("4", SenderMeta::default(), t(1)).await.unwrap(),
            Outcome::Full
        );
        assert_eq!(s.pending(t(1)).await.len(), 3);
    }

    #[tokio::test]
    async fn an_import_adds_what_is_new_and_keeps_the_cap_and_expiry() {
        let s = store();
        s.approve(
            &match s.request("7", SenderMeta::default(), t(0)).await.unwrap() {
                Outcome::Created(c) => c,
                o => panic!("{o:?}"),
            },
            t(1),
        )
        .await
        .unwrap();
        let req = |id: &str, minutes| Request {
            id: id.into(),
            code: format!("CODE{id:0>4}"),
            created_at: t(minutes),
            last_seen_at: t(minutes),
            meta: SenderMeta::default(),
        };
        let state = crate::api::PairingState {
            allowed: vec!["7".into(), "8".into(), " 9 ".into()],
            pending: vec![
                req("10", 0),
                req("11", -120),
                req("7", 0),
                req("12", 1),
                req("13", 2),
                req("14", 3),
            ],
        };
        let (allowed, pending) = s.import(&state, t(5)).await.unwrap();
        assert_eq!(allowed, 2, "7 was approved already");
        assert_eq!(
            pending, 3,
            "11 expired, 7 is approved, 14 is over the cap of 3"
        );
        assert!(s.is_allowed("9").await);
        let codes: Vec<String> = s.pending(t(5)).await.into_iter().map(|r| r.id).collect();
        assert_eq!(codes, ["10", "12", "13"]);
        // Imported again: nothing new.
        assert_eq!(s.import(&state, t(5)).await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn codes_expire_after_an_hour_and_repeats_do_not_extend_them() {
        let s = store();
        let Outcome::Created(code) = s.request("1", SenderMeta::default(), t(0)).await.unwrap()
        else {
            panic!()
        };
        s.request("1", SenderMeta::default(), t(50)).await.unwrap();
        assert!(matches!(
            s.approve(&code, t(61)).await,
            Err(PairingError::NotFound(_))
        ));
        assert!(
            matches!(
                s.request("1", SenderMeta::default(), t(61)).await.unwrap(),
                Outcome::Created(_)
            ),
            "a fresh code after expiry"
        );
    }

    #[tokio::test]
    async fn approval_is_case_insensitive_persisted_and_survives_reopening() {
        let s = store();
        let Outcome::Created(code) = s
            .request(
                "42",
                SenderMeta {
                    username: Some("alice".into()),
                    ..Default::default()
                },
                t(0),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        let r = s.approve(&code.to_lowercase(), t(5)).await.unwrap();
        assert_eq!(
            (r.id.as_str(), r.meta.label().as_deref()),
            ("42", Some("@alice"))
        );
        assert!(s.is_allowed("42").await);
        assert!(s.pending(t(5)).await.is_empty());
        let again = PairingStore::open(s.state.clone(), "telegram").unwrap();
        assert!(again.is_allowed("42").await, "approvals survive a restart");
        let err = again
            .approve("ZZZZZZZZ", t(6))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no pending pairing request found for code ZZZZZZZZ"),
            "{err}"
        );
    }

    #[test]
    fn the_reply_gives_the_id_code_and_command() {
        let text = pairing_reply("123456789", "ABCD2345", "telegram");
        assert!(
            text.contains("Your Telegram user id: 123456789")
                && text.contains("Pairing code: ABCD2345")
        );
        assert!(text.ends_with("clawops pairing approve telegram ABCD2345"));
    }
}
