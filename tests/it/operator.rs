//! The operator runtime (controllers, owned and Secret watches, member controllers, graceful
//! shutdown) against the fake API server, which streams watch events like the real one.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_api::FakeApi;
use crate::support::*;
use base64::Engine;
use clawops::operator::context::Context;
use clawops::operator::health::Health;
use clawops::operator::metrics::Metrics;
use clawops::operator::run_controllers;
use futures::FutureExt;
use serde_json::{Value, json};

const AGENT: &str = "/apis/clawops.dev/v1alpha1/namespaces/default/agents/shrimp";
const SECRET: &str = "/api/v1/namespaces/default/secrets/shrimp-secrets";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/shrimp-gateway";
const INGRESS: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses/shrimp-gateway";
const CHANNEL: &str = "/apis/clawops.dev/v1alpha1/namespaces/default/channels/telegram";
const CRON: &str = "/apis/clawops.dev/v1alpha1/namespaces/default/crons/morning-patrol";

/// Polls until `f` holds; watch-driven reactions take milliseconds, requeues take 10 s or more,
/// so a 5 s limit proves an event caused the reaction.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn condition(fake: &FakeApi, path: &str, type_: &str) -> Value {
    fake.get(path)
        .and_then(|o| {
            o["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == type_).cloned())
        })
        .unwrap_or(Value::Null)
}

/// Puts an example's Secrets, Agents, Channels and Crons into the fake, in namespace `ns`.
fn load(fake: &FakeApi, file: &str, ns: &str) {
    install_chart_objects(fake);
    let m = example_in(file, ns);
    m.secrets.iter().for_each(|o| fake.insert(o));
    m.agents.iter().for_each(|o| fake.insert(o));
    m.channels.iter().for_each(|o| fake.insert(o));
    m.crons.iter().for_each(|o| fake.insert(o));
}

/// The controllers running against the fake until [`Running::stop`].
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn start(fake: &FakeApi, namespace: Option<&str>, metrics: Arc<Metrics>) -> Running {
    let client = fake.client();
    let ctx = Arc::new(Context::new(
        client.clone(),
        "ghcr.io/clawops/clawops:test".into(),
        metrics,
    ));
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop_rx.await;
    }
    .shared();
    let namespace = namespace.map(String::from);
    let health = Arc::new(Health::new("http://fake"));
    let task =
        tokio::spawn(
            async move { run_controllers(client, &namespace, ctx, health, 2, stopped).await },
        );
    Running { stop, task }
}

impl Running {
    /// Graceful shutdown: every controller stops.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("controllers stop on the signal")
            .unwrap();
    }
}

/// Removes the evening Cron and waits for its CronJob to be pruned.
async fn prune_evening_cron(fake: &FakeApi) {
    fake.remove("/apis/clawops.dev/v1alpha1/namespaces/default/crons/evening-patrol");
    eventually("evening CronJob pruned", || {
        fake.get("/apis/batch/v1/namespaces/default/cronjobs/shrimp-evening-patrol")
            .is_none()
    })
    .await;
}

#[tokio::test]
async fn operator_reacts_to_watch_events_and_stops_cleanly() {
    let fake = FakeApi::new();
    load(&fake, "shrimp.yaml", "default");
    let metrics = Arc::new(Metrics::new());
    let operator = start(&fake, Some("default"), metrics.clone());

    // The Agent is rolled out and its members report Ready.
    eventually("the gateway Deployment", || fake.get(DEPLOYMENT).is_some()).await;
    eventually("SecretsResolved=True", || {
        condition(&fake, AGENT, "SecretsResolved")["status"] == "True"
    })
    .await;
    eventually("Channel waiting for its Agent", || {
        condition(&fake, CHANNEL, "Ready")["reason"] == "AgentNotReady"
    })
    .await;
    eventually("Cron Ready", || {
        condition(&fake, CRON, "Ready")["reason"] == "Scheduled"
    })
    .await;
    assert_eq!(
        condition(&fake, AGENT, "Ready")["status"],
        "False",
        "the pod is not available yet"
    );

    // The Deployment and ingress controllers report progress: the owned-object watches bring
    // the Agent to Ready.
    fake.set(DEPLOYMENT, "", "status", json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}));
    fake.set(
        INGRESS,
        "",
        "status",
        json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}),
    );
    eventually("Ready=True", || {
        condition(&fake, AGENT, "Ready")["status"] == "True"
    })
    .await;
    // The Agent's status change reaches its members through their Agent watch.
    eventually("Channel Serving", || {
        condition(&fake, CHANNEL, "Ready")["reason"] == "Serving"
    })
    .await;

    // A labelled Secret turns into a placeholder: the Secret watch refuses it at once.
    let b64 = |v: &str| json!(base64::engine::general_purpose::STANDARD.encode(v));
    fake.set(SECRET, "/data", "zai-api-key", b64("CHANGE_ME"));

    eventually("SecretsResolved=False", || {
        condition(&fake, AGENT, "SecretsResolved")["status"] == "False"
    })
    .await;
    assert!(
        condition(&fake, AGENT, "SecretsResolved")["message"]
            .as_str()
            .unwrap()
            .contains("zai-api-key")
    );
    // And fixing it makes the Agent Ready again without touching the Agent.
    fake.set(
        SECRET,
        "/data",
        "zai-api-key",
        b64("9a8b7c6d5e4f3a2b1c0d.FixedRealKeyValue"),
    );
    eventually("SecretsResolved=True again", || {
        condition(&fake, AGENT, "SecretsResolved")["status"] == "True"
    })
    .await;

    // A Cron removed: its CronJob goes.
    prune_evening_cron(&fake).await;

    let text = metrics.render();
    assert!(
        text.contains(r#"clawops_operator_reconciles_total{kind="Agent"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"clawops_operator_reconciles_total{kind="Channel"}"#),
        "{text}"
    );

    operator.stop().await;
}

/// Runs the whole operator over both examples (Ingress in `default`, Tailscale sidecar in `ts`),
/// a NodePairing, a pruned Cron and a deleted Agent, and returns every access it made.
async fn operator_accesses() -> std::collections::BTreeSet<support::rbac::Access> {
    let fake = FakeApi::new();
    load(&fake, "shrimp.yaml", "default");
    load(&fake, "shrimp-tailscale.yaml", "ts");
    fake.insert(&json!({
        "apiVersion": "clawops.dev/v1alpha1", "kind": "NodePairing",
        "metadata": {"name": "laptop", "namespace": "default"},
        "spec": {"agentRef": "shrimp", "nodeId": "0".repeat(64), "publicKey": "A".repeat(43), "approved": true},
    }));
    let operator = start(&fake, None, Arc::new(Metrics::new()));
    // The last objects each rollout applies: after them the operator is idle, and the log
    // taken below holds only the owner's own requests.
    eventually("both gateways rolled out", || {
        ["default", "ts"].iter().all(|ns| {
            fake.get(&format!(
                "/apis/batch/v1/namespaces/{ns}/cronjobs/shrimp-evening-patrol"
            ))
            .is_some()
                && fake
                    .get(&format!(
                        "/apis/clawops.dev/v1alpha1/namespaces/{ns}/agents/shrimp"
                    ))
                    .is_some_and(|a| !a["status"]["conditions"].is_null())
        })
    })
    .await;
    eventually("NodePairing status", || {
        fake.get("/apis/clawops.dev/v1alpha1/namespaces/default/nodepairings/laptop")
            .is_some_and(|o| !o["status"].is_null())
    })
    .await;
    prune_evening_cron(&fake).await;
    // The owner drops both exposures and one NetworkPolicy (the owner's own requests are left
    // out of the tally by `owner_edit`).
    let operator_log = fake.take_log();
    for ns in ["default", "ts"] {
        kube::Api::<clawops::crd::Agent>::namespaced(fake.client(), ns)
            .patch(
                "shrimp",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"gateway": {
                    "expose": null,
                    "networkPolicy": {"enabled": ns == "default"},
                }}})),
            )
            .await
            .unwrap();
    }
    eventually("Ingress, Tailscale state and NetworkPolicy pruned", || {
        fake.get(INGRESS).is_none()
            && fake
                .get("/apis/networking.k8s.io/v1/namespaces/ts/networkpolicies/shrimp-gateway")
                .is_none()
            && fake
                .get("/api/v1/namespaces/ts/secrets/shrimp-tailscale-state")
                .is_none()
    })
    .await;
    // The owner deletes the Agent.
    kube::Api::<clawops::crd::Agent>::namespaced(fake.client(), "default")
        .delete("shrimp", &Default::default())
        .await
        .unwrap();
    eventually("the Agent gone after cleanup", || fake.get(AGENT).is_none()).await;
    operator.stop().await;
    operator_log
        .into_iter()
        .chain(fake.take_log())
        .filter(|r| !owner_edit(r))
        .flat_map(|r| support::rbac::accesses(&r))
        .collect()
}

/// The owner's own edits of an Agent (a merge patch of its spec, its deletion): the operator
/// reacts to them within the same log, so they are told apart by what they are, not by when.
/// The operator itself writes Agents only through `/status` and JSON patches of its finalizer.
fn owner_edit(r: &support::fake_api::Recorded) -> bool {
    r.path.contains("/agents/shrimp")
        && !r.path.ends_with("/status")
        && (r.method == "DELETE" || (r.method == "PATCH" && r.content_type.contains("merge-patch")))
}

#[tokio::test]
async fn the_operator_cluster_role_is_exactly_what_it_does_and_grants() {
    let used = operator_accesses().await;
    let role = clawops::operator::rbac::rules();
    let allowed = support::rbac::allowed(&role);
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "the operator made requests its ClusterRole does not allow: {missing:#?}"
    );
    // Whatever it holds without using, it holds only to grant: Kubernetes lets it create a Role
    // or binding only with every permission in it.
    let granted = support::rbac::allowed(&clawops::operator::rbac::granted_rules());
    let unused: Vec<_> = allowed
        .difference(&used)
        .filter(|a| !granted.contains(*a))
        .collect();
    assert!(
        unused.is_empty(),
        "the ClusterRole allows what the operator neither does nor grants: {unused:#?}"
    );
}

/// How many times the gateway Deployment was written since the log was last taken.
fn deployment_writes(fake: &FakeApi) -> usize {
    fake.take_log()
        .iter()
        .filter(|r| r.is_write() && r.path == DEPLOYMENT)
        .count()
}

#[tokio::test]
async fn the_gateway_rolls_out_once_when_its_channel_comes_after_the_agent() {
    let fake = FakeApi::new();
    let m = example_in("shrimp.yaml", "default");
    m.secrets.iter().for_each(|o| fake.insert(o));
    m.agents.iter().for_each(|o| fake.insert(o));
    let operator = start(&fake, Some("default"), Arc::new(Metrics::new()));

    // An Agent with no Channel yet: everything but the gateway, and a status that says why.
    eventually("the Agent waiting for its Channel", || {
        condition(&fake, AGENT, "GatewayAvailable")["reason"] == "WaitingForChannel"
    })
    .await;
    assert!(
        fake.get(DEPLOYMENT).is_none(),
        "no gateway without a channel"
    );
    assert!(
        condition(&fake, AGENT, "GatewayAvailable")["message"]
            .as_str()
            .unwrap()
            .contains("spec.agentRef"),
    );

    // `kubectl apply` goes on with the Channel and the Crons: one rollout with all of them.
    m.channels.iter().for_each(|o| fake.insert(o));
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.crons.iter().for_each(|o| fake.insert(o));
    eventually("the Cron scheduled", || {
        condition(&fake, CRON, "Ready")["reason"] == "Scheduled"
    })
    .await;
    // Longer than the debounce, so a second rollout would have happened by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(deployment_writes(&fake), 1, "one rollout at creation");
    let config = fake.get(DEPLOYMENT).unwrap()["spec"]["template"]["metadata"]["annotations"]
        ["clawops.dev/config-hash"]
        .clone();

    // A later member change rolls it once more.
    fake.set(CHANNEL, "/spec/telegram", "allowFrom", json!(["123456789"]));
    eventually("the new config rolled out", || {
        fake.get(DEPLOYMENT).unwrap()["spec"]["template"]["metadata"]["annotations"]
            ["clawops.dev/config-hash"]
            != config
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(deployment_writes(&fake), 1, "one rollout per member change");
    operator.stop().await;
}

/// Every watch ending with 410 Expired (as after an etcd compaction) must not leave the operator
/// deaf: each watch lists and watches again after its own backoff (under a second at first),
/// and changes are reconciled at once. kube's `Controller` backs off all its triggers on any
/// error of one, so the errors of the six metadata watches used to hold the Agent controller,
/// and the last of those watches, for some 25 s.
#[tokio::test]
async fn after_every_watch_expires_all_watch_again_within_seconds_and_changes_are_seen() {
    let fake = FakeApi::new();
    load(&fake, "shrimp.yaml", "default");
    fake.set_controllers(true);
    let operator = start(&fake, Some("default"), Arc::new(Metrics::new()));
    eventually("the Agent Ready", || {
        condition(&fake, AGENT, "Ready")["status"] == "True"
    })
    .await;
    let watches = fake.watches();
    fake.expire_watches();
    eventually("every watch back", || fake.watches() >= watches).await;

    // A change now is seen by the watch and reconciled: the Deployment is put back.
    fake.remove(DEPLOYMENT);
    eventually("the Deployment put back", || fake.get(DEPLOYMENT).is_some()).await;
    operator.stop().await;
}
