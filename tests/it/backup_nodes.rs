//! Nodes across a backup and a restore into another cluster. In a cluster the NodePairings,
//! not the state dir, approve nodes and hold their exec settings; a backup taken through the
//! gateway carries them, and the first start of a fresh Agent's gateway on the restored state
//! makes the missing ones again (labelled as the restore's), before it serves, so the node of
//! the old Agent connects to the new one without pairing again. A NodePairing the owner already
//! wrote in the new cluster is left as it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::nodes::{TOKEN, clawops, text};
use crate::support::fake_api::FakeApi;
use crate::support::nodes::{identity, node_host, node_log};
use crate::support::{self, process::*};

const PAIRINGS: &str = "/apis/clawops.dev/v1alpha1/namespaces/default/nodepairings";

/// A cluster with a gateway in cluster mode: its own fake API server, config and state dir.
#[derive(Clone)]
struct Cluster {
    api: FakeApi,
    config: PathBuf,
}

impl Cluster {
    async fn new(name: &str) -> Self {
        let api = FakeApi::new();
        let yaml = support::example_with(name, &[]);
        api.serve_http(yaml.parent().unwrap()).await;
        let config = crate::cron::gateway_json(&yaml, false);
        Self { api, config }
    }

    fn state(&self) -> PathBuf {
        self.config.with_file_name("state")
    }

    fn gateway(&self, port: u16) -> Reaper {
        let kubeconfig = self.config.with_file_name("kubeconfig");
        let gw = Reaper(
            Command::new(env!("CARGO_BIN_EXE_clawops"))
                .args([
                    "gateway",
                    "--config",
                    self.config.to_str().unwrap(),
                    "--state-dir",
                ])
                .arg(self.state())
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("KUBECONFIG", kubeconfig)
                .env("CLAWOPS_GATEWAY_TOKEN", TOKEN)
                .env("CLAWOPS_SKIP_CRON", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_http(port, "/healthz");
        gw
    }

    fn pairing(&self, name: &str) -> Option<Value> {
        self.api.get(&format!("{PAIRINGS}/{name}"))
    }
}

fn pairing(name: &str, id: &str, key: &str, approved: bool, exec: Value) -> Value {
    json!({
        "apiVersion": "clawops.dev/v1alpha1", "kind": "NodePairing",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"agentRef": "shrimp", "nodeId": id, "publicKey": key, "displayName": name,
                 "approved": approved, "exec": exec},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pairings_come_back_in_a_fresh_agent_elsewhere() {
    let old = Cluster::new("backup-nodes-old").await;
    let vps_state = support::temp_dir("backup-nodes-vps");
    let (vps_id, vps_key) = identity(&vps_state);
    let (laptop_id, laptop_key) = identity(&support::temp_dir("backup-nodes-laptop"));
    let exec = json!({"security": "allowlist", "ask": "on-miss", "askFallback": "deny", "allowlist": ["/usr/bin/uptime"]});
    old.api
        .insert(&pairing("vps", &vps_id, &vps_key, true, exec.clone()));
    old.api
        .insert(&pairing("laptop", &laptop_id, &laptop_key, true, json!({})));
    // One the owner revoked there, one whose name is taken in the new cluster, one that asks
    // to pair in the new cluster before the restore is adopted.
    let (revoked_id, revoked_key) = identity(&support::temp_dir("backup-nodes-revoked"));
    old.api.insert(&pairing(
        "old-box",
        &revoked_id,
        &revoked_key,
        false,
        json!({}),
    ));
    let (box_id, box_key) = identity(&support::temp_dir("backup-nodes-box"));
    old.api
        .insert(&pairing("box", &box_id, &box_key, true, json!({})));
    let (early_id, early_key) = identity(&support::temp_dir("backup-nodes-early"));
    old.api
        .insert(&pairing("early", &early_id, &early_key, true, exec.clone()));
    let port = free_port();
    let c = old.clone();
    let mut gw = tokio::task::spawn_blocking(move || c.gateway(port))
        .await
        .unwrap();

    let archive = support::temp_dir("backup-nodes-out").join("old.tar.zst");
    let a = archive.clone();
    let made = tokio::task::spawn_blocking(move || {
        clawops(port, &["backup", "create", "--to", a.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    gw.terminate(Duration::from_secs(10));

    // Another cluster: the owner already wrote the laptop's NodePairing there, not approved.
    let new = Cluster::new("backup-nodes-new").await;
    new.api.insert(&pairing(
        "laptop",
        &laptop_id,
        &laptop_key,
        false,
        json!({}),
    ));
    let (other_id, other_key) = identity(&support::temp_dir("backup-nodes-other"));
    new.api
        .insert(&pairing("box", &other_id, &other_key, true, json!({})));
    let mut early = pairing(
        &format!("shrimp-{}", &early_id[..12]),
        &early_id,
        &early_key,
        false,
        json!({}),
    );
    early["metadata"]["labels"] = json!({"clawops.dev/requested-by": "gateway"});
    new.api.insert(&early);
    let c = new.clone();
    let mut gw = tokio::task::spawn_blocking(move || c.gateway(port))
        .await
        .unwrap();
    let a = archive.clone();
    let staged = tokio::task::spawn_blocking(move || {
        clawops(port, &["backup", "restore", a.to_str().unwrap(), "--force"])
    })
    .await
    .unwrap();
    assert!(staged.status.success(), "{}", text(&staged));
    let stopped = tokio::task::spawn_blocking(move || gw.exit(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(stopped.success(), "a clean stop: {stopped}");
    // Kubernetes starts the container again; here, we do. By the time it serves, the vps's
    // NodePairing is back, approved, with its exec settings.
    let c = new.clone();
    let mut gw = tokio::task::spawn_blocking(move || c.gateway(port))
        .await
        .unwrap();
    // Under its old name: a copy kept in Git names the same object.
    let name = "vps".to_string();
    let back = new
        .pairing(&name)
        .unwrap_or_else(|| panic!("NodePairing {name} made: {:?}", new.api.paths(PAIRINGS)));
    assert_eq!(back["spec"]["approved"], true);
    assert_eq!(back["spec"]["publicKey"], vps_key.as_str());
    assert_eq!(
        back["spec"]["exec"]["allowlist"],
        json!(["/usr/bin/uptime"])
    );
    assert_eq!(back["spec"]["exec"]["security"], "allowlist");
    assert_eq!(
        back["metadata"]["labels"]["clawops.dev/requested-by"],
        "restore"
    );
    assert_eq!(
        new.pairing("laptop").unwrap()["spec"]["approved"],
        false,
        "the owner's own NodePairing stands"
    );
    assert!(
        new.pairing(&format!("shrimp-{}", &laptop_id[..12]))
            .is_none(),
        "no second NodePairing for a node that has one"
    );
    let all = new.api.paths(PAIRINGS);
    assert!(
        !all.iter()
            .any(|p| p.ends_with(&format!("shrimp-{}", &revoked_id[..12]))),
        "one not approved where it came from is not made: {all:?}"
    );
    assert_eq!(
        new.pairing("box").unwrap()["spec"]["nodeId"],
        other_id.as_str()
    );
    let moved = new
        .pairing(&format!("shrimp-{}", &box_id[..12]))
        .expect("a taken name gives the gateway's name for the node");
    assert_eq!(moved["spec"]["approved"], true);
    let early = new.pairing(&format!("shrimp-{}", &early_id[..12])).unwrap();
    assert_eq!(
        (
            early["spec"]["approved"].clone(),
            early["spec"]["exec"]["allowlist"].clone()
        ),
        (json!(true), json!(["/usr/bin/uptime"])),
        "the gateway's own pending request is approved with the restored settings: {early}"
    );
    assert!(
        !new.state().join(".restored").exists(),
        "adopted once, not at every start"
    );

    // The vps connects to the new gateway without pairing again.
    let s = vps_state.clone();
    let mut node = tokio::task::spawn_blocking(move || node_host(&s, port))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while new.pairing(&name).unwrap()["status"]["phase"] != "Connected" {
        assert!(
            Instant::now() < deadline,
            "the vps did not connect: {}",
            node_log(&vps_state)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!node_log(&vps_state).contains("pairing required"));
    node.terminate(Duration::from_secs(10));
    gw.terminate(Duration::from_secs(10));

    // The same backup restored standalone: the carried exec settings become the nodes'.
    let standalone = support::temp_dir("backup-nodes-standalone").join("state");
    let (a, d) = (archive.clone(), standalone.clone());
    let restored = tokio::task::spawn_blocking(move || {
        clawops(
            port,
            &[
                "backup",
                "restore",
                a.to_str().unwrap(),
                "--into",
                d.to_str().unwrap(),
            ],
        )
    })
    .await
    .unwrap();
    assert!(restored.status.success(), "{}", text(&restored));
    let yaml = support::example_with("backup-nodes-standalone-yaml", &[]);
    let (y, d) = (yaml.clone(), standalone.clone());
    let mut gw = tokio::task::spawn_blocking(move || {
        let gw = support::start_gateway(&y, &d, port, &[("CLAWOPS_GATEWAY_TOKEN", TOKEN)]);
        wait_for_http(port, "/healthz");
        gw
    })
    .await
    .unwrap();
    let settings: Value =
        serde_json::from_slice(&std::fs::read(standalone.join("nodes/exec.json")).unwrap())
            .unwrap();
    assert_eq!(settings[&vps_id]["allowlist"], json!(["/usr/bin/uptime"]));
    assert!(!standalone.join("cluster/nodepairings.json").exists());
    gw.terminate(Duration::from_secs(10));
}

/// A standalone gateway's paired node moves into a cluster: its NodePairing is made from the
/// restored pairing and exec settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_node_gets_its_node_pairing_in_the_cluster_it_moves_to() {
    let state = support::temp_dir("backup-nodes-from-standalone");
    let (id, key) = identity(&support::temp_dir("backup-nodes-desk"));
    let device = |role: &str| {
        json!({
            "deviceId": format!("{id}{role}"), "publicKey": key, "displayName": "desk",
            "platform": "linux", "clientId": "node-host", "clientMode": "node",
            "role": role, "roles": [role], "scopes": [], "tokens": {},
            "createdAtMs": 1, "approvedAtMs": 1,
        })
    };
    let mut node = device("node");
    node["deviceId"] = json!(id);
    let operator = device("operator");
    // A node whose token was revoked, and one as a backup by an earlier clawops wrote it (every
    // token taken out, revoked or not): neither comes back approved.
    let mut revoked = device("node");
    revoked["deviceId"] = json!(format!("{id}r"));
    revoked["tokens"] = json!({"node": {"token": "", "role": "node", "scopes": [], "createdAtMs": 1, "revokedAtMs": 2}});
    let mut old_form = device("node");
    old_form["deviceId"] = json!(format!("{id}o"));
    old_form.as_object_mut().unwrap().remove("tokens");
    std::fs::create_dir_all(state.join("devices")).unwrap();
    std::fs::write(
        state.join("devices/paired.json"),
        json!({
            id.clone(): node,
            operator["deviceId"].as_str().unwrap(): operator,
            revoked["deviceId"].as_str().unwrap(): revoked,
            old_form["deviceId"].as_str().unwrap(): old_form,
        })
        .to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(state.join("nodes")).unwrap();
    std::fs::write(
        state.join("nodes/exec.json"),
        json!({ id.clone(): {"security": "full", "ask": "always", "askFallback": "deny"} })
            .to_string(),
    )
    .unwrap();
    let archive = state.with_file_name("standalone.tar.zst");
    let made = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args([
            "backup",
            "create",
            "--from",
            state.to_str().unwrap(),
            "--to",
        ])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));

    let cluster = Cluster::new("backup-nodes-to-cluster").await;
    let restored = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["backup", "restore", archive.to_str().unwrap(), "--into"])
        .arg(cluster.state())
        .env(
            "CLAWOPS_GATEWAY_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", text(&restored));
    let port = free_port();
    let c = cluster.clone();
    let mut gw = tokio::task::spawn_blocking(move || c.gateway(port))
        .await
        .unwrap();
    let np = cluster
        .pairing(&format!("shrimp-{}", &id[..12]))
        .unwrap_or_else(|| panic!("{:?}", cluster.api.paths(PAIRINGS)));
    assert_eq!(np["spec"]["approved"], true);
    assert_eq!(np["spec"]["displayName"], "desk");
    assert_eq!(np["spec"]["exec"]["security"], "full");
    assert_eq!(np["spec"]["exec"]["ask"], "always");
    assert_eq!(
        cluster.api.paths(PAIRINGS).len(),
        1,
        "no NodePairing for an operator device, a revoked node or one of an old backup: {:?}",
        cluster.api.paths(PAIRINGS)
    );
    gw.terminate(Duration::from_secs(10));
}

/// Standalone, the gateway's record approves nodes. A backup without secrets keeps the node's
/// key but not its token: after a restore into a fresh state dir the node, still sending its
/// old token, proves its key and gets a new token, without being approved again.
#[test]
fn a_standalone_node_reconnects_after_a_restore_without_secrets() {
    let yaml = support::example_with("backup-nodes-standalone-gw", &[]);
    let start = |state: &Path, port: u16| {
        let gw = support::start_gateway(&yaml, state, port, &[("CLAWOPS_GATEWAY_TOKEN", TOKEN)]);
        wait_for_http(port, "/healthz");
        gw
    };
    let old_state = support::temp_dir("backup-nodes-standalone-old");
    let node_state = support::temp_dir("backup-nodes-standalone-node");
    let port = free_port();
    let mut gw = start(&old_state, port);
    let mut host = node_host(&node_state, port);
    let listed = crate::nodes::wait_nodes(port, "a pending node", |v| {
        v["pending"].as_array().is_some_and(|p| !p.is_empty())
    });
    let node_id = listed["pending"][0]["nodeId"].as_str().unwrap().to_string();
    let approved = clawops(port, &["nodes", "approve", &node_id[..12]]);
    assert!(approved.status.success(), "{}", text(&approved));
    crate::nodes::wait_nodes(port, "the node connected", |v| {
        v["paired"][0]["connected"] == true
    });
    let archive = old_state.with_file_name("standalone-nodes.tar.zst");
    let made = clawops(
        port,
        &["backup", "create", "--to", archive.to_str().unwrap()],
    );
    assert!(made.status.success(), "{}", text(&made));
    let token_file = node_state.join("identity/device-auth.json");
    let before = std::fs::read_to_string(&token_file).unwrap();
    gw.terminate(Duration::from_secs(10));

    let new_state = support::temp_dir("backup-nodes-standalone-new").join("state");
    let restored = clawops(
        port,
        &[
            "backup",
            "restore",
            archive.to_str().unwrap(),
            "--into",
            new_state.to_str().unwrap(),
        ],
    );
    assert!(restored.status.success(), "{}", text(&restored));
    let mut gw = start(&new_state, port);
    let v = crate::nodes::wait_nodes(port, "the node connected again", |v| {
        v["paired"][0]["connected"] == true
    });
    assert!(
        v["pending"].as_array().is_some_and(|p| p.is_empty()),
        "not asked to pair again: {v}"
    );
    let log = node_log(&node_state);
    assert!(!log.contains("unauthorized"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&token_file).unwrap() == before {
        assert!(Instant::now() < deadline, "the node got no new token");
        std::thread::sleep(Duration::from_millis(100));
    }
    host.terminate(Duration::from_secs(10));
    gw.terminate(Duration::from_secs(10));
}
