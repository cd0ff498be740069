//! Pairing store tests: requests, approvals, tokens, limits and the files Clawdbot reads.

use super::*;

fn store() -> PairingStore {
    let dir = std::env::temp_dir().join(format!(
        "clawops-pairing-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    PairingStore::new(StateDir::open(dir).unwrap())
}

fn request(device: &str, request_id: &str) -> PendingDevice {
    PendingDevice {
        request_id: request_id.into(),
        device_id: device.into(),
        public_key: format!("key-{device}"),
        display_name: Some("desk".into()),
        platform: "linux".into(),
        client_id: "node-host".into(),
        client_mode: "node".into(),
        role: "node".into(),
        roles: vec!["node".into()],
        scopes: vec![],
        remote_ip: Some("100.64.0.2".into()),
        silent: false,
        is_repair: false,
        ts: 0,
    }
}

#[test]
fn an_unknown_device_waits_once_then_is_paired_with_a_token() {
    let s = store();
    let first = s.gate(request("dev1", "r1"), 1_000, true).unwrap();
    assert_eq!(
        first,
        Gate::Pending {
            request_id: "r1".into(),
            created: true
        }
    );
    let again = s.gate(request("dev1", "r2"), 2_000, true).unwrap();
    assert_eq!(
        again,
        Gate::Pending {
            request_id: "r1".into(),
            created: false
        }
    );
    let d = s.approve("dev1", 3_000).unwrap();
    let token = d.token("node").unwrap().token.clone();
    assert_eq!(token.len(), 32);
    assert!(matches!(
        s.gate(request("dev1", "r3"), 4_000, true).unwrap(),
        Gate::Paired(_)
    ));
    assert!(s.verify_token("dev1", "node", &token, 5_000));
    assert!(!s.verify_token("dev1", "node", "nope", 5_000));
    let (pending, paired) = s.list(6_000).unwrap();
    assert!(pending.is_empty());
    assert_eq!(paired[0].tokens["node"].last_used_at_ms, Some(5_000));
}

#[test]
fn the_files_are_bare_maps_as_clawdbot_writes_them() {
    let s = store();
    s.gate(request("dev1", "r1"), 1_000, true).unwrap();
    let raw: serde_json::Value = s.state.read(PENDING_FILE).unwrap().unwrap();
    assert_eq!(raw["r1"]["deviceId"], "dev1");
    s.approve("r1", 2_000).unwrap();
    let raw: serde_json::Value = s.state.read(PAIRED_FILE).unwrap().unwrap();
    assert_eq!(raw["dev1"]["tokens"]["node"]["role"], "node");
    assert_eq!(raw["dev1"]["approvedAtMs"], 2_000);
}

#[test]
fn requests_expire_and_are_capped() {
    let s = store();
    s.gate(request("old", "r0"), 0, true).unwrap();
    assert!(s.list(PENDING_TTL_MS + 1).unwrap().0.is_empty());
    assert!(matches!(
        s.approve("r0", PENDING_TTL_MS + 1),
        Err(StoreError::UnknownRequest(_))
    ));
    for i in 0..MAX_PENDING {
        s.gate(request(&format!("d{i}"), &format!("r{i}")), 1, true)
            .unwrap();
    }
    assert_eq!(
        s.gate(request("one-more", "rx"), 1, true).unwrap(),
        Gate::Full
    );
}

#[test]
fn a_revoked_or_rotated_token_stops_working_and_a_changed_key_must_pair_again() {
    let s = store();
    s.gate(request("dev1", "r1"), 0, true).unwrap();
    let old = s.approve("r1", 0).unwrap().tokens["node"].token.clone();
    let new = s.rotate("dev1", "node", 10).unwrap().tokens["node"]
        .token
        .clone();
    assert_ne!(old, new);
    assert!(!s.verify_token("dev1", "node", &old, 11));
    assert!(s.verify_token("dev1", "node", &new, 11));
    s.revoke("dev1", "node", 12).unwrap();
    assert!(!s.verify_token("dev1", "node", &new, 13));
    assert!(matches!(
        s.gate(request("dev1", "r2"), 14, true).unwrap(),
        Gate::Pending { .. }
    ));
    let mut other_key = request("dev1", "r3");
    other_key.public_key = "another".into();
    let s2 = store();
    s2.gate(request("dev1", "r1"), 0, true).unwrap();
    s2.approve("r1", 0).unwrap();
    assert!(matches!(
        s2.gate(other_key, 1, true).unwrap(),
        Gate::Pending { .. }
    ));
    assert!(matches!(
        s.revoke("nobody", "node", 0),
        Err(StoreError::UnknownDevice(_))
    ));
}

#[test]
fn an_address_that_asked_too_often_cannot_ask_but_its_paired_nodes_still_connect() {
    let s = store();
    s.gate(request("dev1", "r1"), 0, true).unwrap();
    s.approve("r1", 0).unwrap();
    assert!(matches!(
        s.gate(request("dev1", "r2"), 1, false).unwrap(),
        Gate::Paired(_)
    ));
    assert_eq!(
        s.gate(request("stranger", "r3"), 1, false).unwrap(),
        Gate::Limited
    );
    assert!(s.list(1).unwrap().0.is_empty(), "no request was made");
}

#[test]
fn changes_reach_the_files_and_a_new_store_reads_them() {
    let s = store();
    s.gate(request("dev1", "r1"), 0, true).unwrap();
    let token = s.approve("r1", 0).unwrap().tokens["node"].token.clone();
    let again = PairingStore::new(s.state.clone());
    assert!(again.verify_token("dev1", "node", &token, 1));
    assert!(matches!(
        again.gate(request("dev1", "r2"), 2, true).unwrap(),
        Gate::Paired(_)
    ));
}

/// A backup without secrets keeps a paired device's key and an empty token map: the device is
/// paired again with a new token when it proves its key. A revoked one is not.
#[test]
fn a_device_restored_without_its_token_gets_a_new_one_and_a_revoked_one_does_not() {
    let s = store();
    s.gate(request("dev1", "r1"), 1_000, true).unwrap();
    let old = s
        .approve("dev1", 2_000)
        .unwrap()
        .token("node")
        .unwrap()
        .token
        .clone();
    s.gate(request("dev2", "r2"), 1_000, true).unwrap();
    s.approve("dev2", 2_000).unwrap();
    s.revoke("dev2", "node", 3_000).unwrap();
    // What a backup without secrets keeps: dev1 without its live token, dev2's revoked one.
    let dir = s.state.path().to_path_buf();
    let mut paired: Paired = s.state.read(PAIRED_FILE).unwrap().unwrap();
    paired.get_mut("dev1").unwrap().tokens.clear();
    s.state.write(PAIRED_FILE, &paired).unwrap();
    let s = PairingStore::new(StateDir::open(dir).unwrap());

    assert!(s.awaits_token("dev1", "key-dev1", "node", 4_000));
    assert!(
        !s.awaits_token("dev1", "another-key", "node", 4_000),
        "another key never"
    );
    assert!(
        !s.awaits_token("dev2", "key-dev2", "node", 4_000),
        "revoked stays revoked"
    );
    assert!(!s.verify_token("dev1", "node", &old, 4_000));

    let mut other_key = request("dev1", "r3");
    other_key.public_key = "another-key".into();
    assert_eq!(s.reissue(&other_key, 5_000).unwrap(), None);
    assert_eq!(s.reissue(&request("dev2", "r4"), 5_000).unwrap(), None);
    let d = s
        .reissue(&request("dev1", "r5"), 5_000)
        .unwrap()
        .expect("paired again");
    let new = d.token("node").unwrap().token.clone();
    assert_ne!(new, old);
    assert!(s.verify_token("dev1", "node", &new, 6_000));
    assert!(!s.awaits_token("dev1", "key-dev1", "node", 6_000));
    assert!(matches!(
        s.gate(request("dev2", "r6"), 7_000, true).unwrap(),
        Gate::Pending { .. }
    ));
}

/// State restored by an earlier clawops, whose backups dropped the token records: the store
/// still reads, the device without them is not paired (it may have been revoked), the others
/// are.
#[test]
fn a_device_without_token_records_on_file_pairs_again_and_the_rest_still_read() {
    let s = store();
    s.gate(request("dev1", "r1"), 1_000, true).unwrap();
    s.approve("dev1", 2_000).unwrap();
    s.gate(request("dev2", "r2"), 1_000, true).unwrap();
    s.approve("dev2", 2_000).unwrap();
    let dir = s.state.path().to_path_buf();
    let mut raw: BTreeMap<String, serde_json::Value> = s.state.read(PAIRED_FILE).unwrap().unwrap();
    raw.get_mut("dev1")
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("tokens");
    s.state.write(PAIRED_FILE, &raw).unwrap();
    let s = PairingStore::new(StateDir::open(dir).unwrap());
    assert!(matches!(
        s.gate(request("dev2", "r3"), 3_000, true).unwrap(),
        Gate::Paired(_)
    ));
    assert!(matches!(
        s.gate(request("dev1", "r4"), 3_000, true).unwrap(),
        Gate::Pending { .. }
    ));
}
