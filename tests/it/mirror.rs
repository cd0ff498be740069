//! Pairing state mirrored into the Channel status, against the fake API server.

use crate::support;

use std::collections::HashMap;

use crate::support::fake_api::FakeApi;
use chrono::Utc;
use clawops::crd::Channel;
use clawops::gateway::mirror;
use clawops::gateway::telegram::pairing::{Outcome, PairingStore, SenderMeta};
use clawops::util::state_dir::StateDir;
use kube::Api;

#[tokio::test]
async fn pending_codes_and_approvals_reach_the_channel_status_only_when_changed() {
    let fake = FakeApi::new();
    let m = support::example("shrimp.yaml");
    m.channels.iter().for_each(|c| fake.insert(c));
    let api = Api::<Channel>::namespaced(fake.client(), "default");
    let dir = std::env::temp_dir().join(format!("clawops-mirror-{}", std::process::id()));
    let store = PairingStore::open(StateDir::open(dir).unwrap(), "telegram").unwrap();
    let meta = SenderMeta {
        username: Some("alice".into()),
        ..Default::default()
    };
    let Outcome::Created(code) = store.request("555", meta, Utc::now()).await.unwrap() else {
        panic!()
    };

    let mut last = HashMap::new();
    let status = mirror::channel_status(
        Some("shrimp_bot"),
        &store.pending(Utc::now()).await,
        store.allowed_count().await,
    );
    assert!(
        mirror::sync(&api, "telegram", status.clone(), &mut last)
            .await
            .unwrap()
    );
    let channel = fake
        .get("/apis/clawops.dev/v1alpha1/namespaces/default/channels/telegram")
        .unwrap();
    let s = &channel["status"];
    assert_eq!(s["botUsername"], "@shrimp_bot");
    assert_eq!(s["pendingCount"], 1);
    assert_eq!(s["pendingPairings"][0]["code"], code.as_str());
    assert_eq!(s["pendingPairings"][0]["senderName"], "@alice");
    assert_eq!(s["approvedSenders"], 0);
    // The typed CRD accepts it.
    let typed: Channel = serde_json::from_value(channel).unwrap();
    assert_eq!(typed.status.unwrap().pending_count, Some(1));

    fake.take_log();
    assert!(
        !mirror::sync(&api, "telegram", status, &mut last)
            .await
            .unwrap()
    );
    assert!(fake.take_log().is_empty(), "unchanged: no request");

    store.approve(&code, Utc::now()).await.unwrap();
    let status = mirror::channel_status(
        Some("shrimp_bot"),
        &store.pending(Utc::now()).await,
        store.allowed_count().await,
    );
    assert!(
        mirror::sync(&api, "telegram", status, &mut last)
            .await
            .unwrap()
    );
    let s = fake
        .get("/apis/clawops.dev/v1alpha1/namespaces/default/channels/telegram")
        .unwrap()["status"]
        .clone();
    assert_eq!(
        (s["pendingCount"].as_u64(), s["approvedSenders"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(s["pendingPairings"], serde_json::json!([]));
}
