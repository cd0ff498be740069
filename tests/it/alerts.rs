//! Alerts through real kube watches against the fake API: a crash loop and a NotReady node are
//! told at once, updates of a still-broken pod are not told again, and clearing is told.

use std::time::Duration;

use crate::support::cluster as fixture;
use crate::support::fake_api::FakeApi;
use chrono::TimeDelta;
use clawops::gateway::alerts::Timing;
use serde_json::json;
use tokio::sync::mpsc;

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notice in time")
        .unwrap()
}

async fn quiet(rx: &mut mpsc::UnboundedReceiver<String>) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        panic!("unexpected notice: {m}");
    }
}

/// The alert watch over `api`, its notices arriving on the returned channel.
fn watch(api: &FakeApi, timing: Timing) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(clawops::gateway::alerts::watch(
        api.client(),
        timing,
        false,
        None,
        std::sync::Arc::default(),
        move |text| {
            let tx = tx.clone();
            async move {
                tx.send(text).unwrap();
            }
        },
    ));
    rx
}

fn crashing(restarts: i32) -> serde_json::Value {
    fixture::pod(
        "web",
        "api-7d9f",
        "Running",
        json!({"restartCount": restarts, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}),
    )
}

#[tokio::test]
async fn alerts_once_per_cool_down_and_on_recovery() {
    fixture::set_now(chrono::Utc::now());
    let api = FakeApi::new();
    fixture::healthy(&api);
    let mut rx = watch(
        &api,
        Timing {
            cool_down: TimeDelta::minutes(30),
            // Clearings are told once they held this long (10 minutes in the gateway).
            clear_after: TimeDelta::milliseconds(300),
            tick: Duration::from_millis(100),
        },
    );
    // A healthy cluster says nothing.
    quiet(&mut rx).await;

    api.insert(&crashing(3));
    let alert = next(&mut rx).await;
    assert_eq!(
        alert,
        "🚨 pod web/api-7d9f: CrashLoopBackOff — container main keeps crashing (3 restarts)\n-> kubectl -n web logs api-7d9f -c main --previous"
    );
    // More restarts of the same crash loop: no second alert within the cool-down.
    api.insert(&crashing(4));
    api.insert(&crashing(5));
    quiet(&mut rx).await;

    api.insert(&fixture::node("n2", false, &[]));
    assert!(next(&mut rx).await.starts_with("🚨 node n2: NotReady"));

    api.insert(&fixture::pod(
        "web",
        "api-7d9f",
        "Running",
        json!({"restartCount": 5}),
    ));
    assert_eq!(
        next(&mut rx).await,
        "✅ pod web/api-7d9f: CrashLoopBackOff cleared"
    );
    api.insert(&fixture::node("n2", true, &[]));
    assert_eq!(next(&mut rx).await, "✅ node n2: NotReady cleared");
    quiet(&mut rx).await;
}

#[tokio::test]
async fn what_vanished_while_the_watch_was_away_is_cleared_at_the_relist() {
    fixture::set_now(chrono::Utc::now());
    let api = FakeApi::new();
    fixture::healthy(&api);
    api.insert(&crashing(3));
    let mut rx = watch(&api, Timing::new(TimeDelta::minutes(30)));
    assert!(
        next(&mut rx)
            .await
            .starts_with("🚨 pod web/api-7d9f: CrashLoopBackOff")
    );
    // The pod goes while nobody watches; the API server then expires the watch.
    api.remove_unseen("/api/v1/namespaces/web/pods/api-7d9f");
    api.expire_watches();
    assert_eq!(
        next(&mut rx).await,
        "✅ pod web/api-7d9f: CrashLoopBackOff cleared (the object is gone)"
    );
    quiet(&mut rx).await;
}
