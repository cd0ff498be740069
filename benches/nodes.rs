//! Nodes benchmark (prints figures; asserts only that every invoke succeeded and every node got
//! `hello-ok`), against the real gateway binary on loopback:
//! - the invoke round trip `POST /api/nodes/run` → `node.invoke.request` → `node.invoke.result`
//!   → HTTP answer, p50/p99/max, with a simulated node that answers at once and with the real
//!   node host (`clawops node run`, which runs the command);
//! - the handshake, WebSocket open → `hello-ok` for a paired node (signature only, and with its
//!   device token as the node host sends it), and → the `pairing required` close for an unknown
//!   one;
//! - the gateway's memory per idle node connection (VmRSS before and after 1,000 connect), the
//!   handshake again with 1,000 devices paired and connected, and all 1,000 reconnecting with
//!   their device tokens (as node hosts do after a gateway restart) with `/healthz` timed
//!   meanwhile.
//!
//! Every node is pre-paired by writing `devices/paired.json` before the gateway starts (pairing
//! requests are capped and rate-limited per address).
//!
//! `make bench` (or `cargo bench --bench nodes`); under `cargo test` it runs a short smoke.

#[path = "../tests/it/support/mod.rs"]
#[allow(dead_code)] // the bench uses only part of the tests' support
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawops::gateway::nodes::store::{DeviceToken, PAIRED_FILE, PairedDevice};
use clawops::node::{approvals, identity};
use clawops::protocol::device;
use clawops::util::state_dir::StateDir;
use ed25519_dalek::SigningKey;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use support::nodes::{Ws, allow, challenge, connect_frame, dial, node_host, node_log, outcome};
use support::process::{Reaper, free_port, wait_for_http};

const TOKEN: &str = "bench-gateway-token-0123456789";
/// What the simulated node answers every `system.run` with.
const RUN_OK: &str =
    r#"{"exitCode":0,"timedOut":false,"success":true,"stdout":"","stderr":"","error":null}"#;
/// The targets printed next to the figures.
const TARGET_P99: Duration = Duration::from_millis(5);
const TARGET_KIB_PER_NODE: f64 = 20.0;

struct Sizes {
    warmup: usize,
    runs: usize,
    host_runs: usize,
    handshakes: usize,
    idle: usize,
    /// Connects in flight at once while the idle nodes connect.
    connecting: usize,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// `p50 … p99 … max …` of `times` (sorted here).
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    format!(
        "p50 {}  p99 {}  max {}",
        ms(pct(times, 0.5)),
        ms(pct(times, 0.99)),
        ms(*times.last().unwrap())
    )
}

/// Raises this process's open-file limit to its hard limit (the gateway, a child, inherits
/// it); the soft limit before and after.
fn raise_fd_limit() -> (libc::rlim_t, libc::rlim_t) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut l), 0);
        let before = l.rlim_cur;
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        (before, l.rlim_cur)
    }
}

/// A deterministic key per index, so no randomness is spent on a thousand of them.
fn key(i: usize) -> SigningKey {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SigningKey::from_bytes(&seed)
}

fn id_of(key: &SigningKey) -> String {
    device::device_id(&key.verifying_key())
}

/// The device token the bench gives device `key` in `paired.json`.
fn token_of(key: &SigningKey) -> String {
    id_of(key)[..32].to_string()
}

/// `key` as an approved node, as the gateway writes it at approval.
fn paired(key: &SigningKey, name: &str) -> PairedDevice {
    let now = chrono::Utc::now().timestamp_millis();
    PairedDevice {
        device_id: id_of(key),
        public_key: device::encode_public_key(&key.verifying_key()),
        display_name: Some(name.into()),
        platform: "linux".into(),
        client_id: "node-host".into(),
        client_mode: "node".into(),
        role: "node".into(),
        roles: vec!["node".into()],
        scopes: vec![],
        remote_ip: Some("127.0.0.1".into()),
        tokens: BTreeMap::from([(
            "node".to_string(),
            DeviceToken {
                token: token_of(key),
                role: "node".into(),
                scopes: vec![],
                created_at_ms: now,
                rotated_at_ms: None,
                revoked_at_ms: None,
                last_used_at_ms: None,
            },
        )]),
        created_at_ms: now,
        approved_at_ms: now,
    }
}

/// A gateway state dir whose `devices/paired.json` holds `devices`.
fn state_with(name: &str, devices: Vec<PairedDevice>) -> PathBuf {
    let dir = support::temp_dir(name);
    let map: BTreeMap<String, PairedDevice> = devices
        .into_iter()
        .map(|d| (d.device_id.clone(), d))
        .collect();
    StateDir::open(&dir)
        .unwrap()
        .write(PAIRED_FILE, &map)
        .unwrap();
    dir
}

/// The gateway, with its stderr drained (a full pipe would stall it) into `log`.
struct Gateway {
    proc: Reaper,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    fn start(state: &Path) -> Self {
        let port = free_port();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples/shrimp.yaml");
        let mut proc = support::start_gateway(
            &example,
            state,
            port,
            &[("CLAWOPS_GATEWAY_TOKEN", TOKEN), ("RUST_LOG", "warn")],
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let (err, l) = (proc.0.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        wait_for_http(port, "/healthz");
        Self { proc, port, log }
    }

    fn rss(&self) -> u64 {
        rss_kib(self.proc.0.id())
    }

    fn errors(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("ERROR"))
            .cloned()
            .collect()
    }
}

/// Sends `key`'s signed connect over `nonce` and reads the answer; panics unless it is hello-ok.
async fn hello(ws: &mut Ws, key: &SigningKey, nonce: &str, token: Option<&str>) {
    ws.send(Message::Text(connect_frame(key, nonce, token).into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "res" && v["id"] == "c1" {
                    assert!(
                        v["ok"] == true && v["payload"]["type"] == "hello-ok",
                        "no hello-ok for {}: {v}",
                        &id_of(key)[..12]
                    );
                    return;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("no hello-ok for {}: {other:?}", &id_of(key)[..12]),
        }
    }
}

/// A paired node connected: dial, challenge, hello-ok; with its device token when `token`.
async fn connect(port: u16, key: &SigningKey, token: bool) -> Ws {
    let mut ws = dial(port).await;
    let nonce = challenge(&mut ws).await;
    let token = token.then(|| token_of(key));
    hello(&mut ws, key, &nonce, token.as_deref()).await;
    ws
}

/// All of `keys` connected, `at_once` connects in flight at a time; how long it took.
async fn connect_all(
    port: u16,
    keys: &[SigningKey],
    token: bool,
    at_once: usize,
) -> (Vec<Ws>, Duration) {
    let t = Instant::now();
    let mut all = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(at_once) {
        all.extend(futures::future::join_all(chunk.iter().map(|k| connect(port, k, token))).await);
    }
    assert_eq!(all.len(), keys.len(), "every node got hello-ok");
    (all, t.elapsed())
}

async fn close_all(all: Vec<Ws>) {
    for mut ws in all {
        let _ = ws.close(None).await;
    }
}

/// The simulated node's session: every `system.run` invoke is answered at once, ok. Returns
/// how many it answered when the gateway closes.
async fn answer_invokes(mut ws: Ws) -> usize {
    let mut answered = 0;
    while let Some(Ok(m)) = ws.next().await {
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] != "event" || v["event"] != "node.invoke.request" {
            continue;
        }
        let p = &v["payload"];
        assert_eq!(p["command"], "system.run", "{v}");
        answered += 1;
        let result = json!({
            "type": "req", "id": format!("r{answered}"), "method": "node.invoke.result",
            "params": {"id": p["id"], "nodeId": p["nodeId"], "ok": true, "payloadJSON": RUN_OK},
        });
        if ws
            .send(Message::Text(result.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    answered
}

/// `POST /api/nodes/run` of `true` on `node`, `warmup` then `runs` times one after another on
/// one kept-alive connection; the timed round trips. Panics unless every run succeeded.
async fn round_trips(
    http: &reqwest::Client,
    port: u16,
    node: &str,
    warmup: usize,
    runs: usize,
) -> Vec<Duration> {
    let url = format!("http://127.0.0.1:{port}/api/nodes/run");
    let body = json!({ "node": node, "command": "true" });
    let mut times = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let t = Instant::now();
        let res = http
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let out: Value = res.json().await.unwrap();
        let took = t.elapsed();
        assert!(
            status.is_success() && out["success"] == true && out["exitCode"] == 0,
            "run {i} on {node}: {status} {out}"
        );
        if i >= warmup {
            times.push(took);
        }
    }
    times
}

/// WebSocket open → `hello-ok` of the paired `key`, `n` times (each connection closed before
/// the next).
async fn paired_handshakes(
    port: u16,
    key: &SigningKey,
    token: Option<&str>,
    n: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = dial(port).await;
        let t = Instant::now();
        let nonce = challenge(&mut ws).await;
        hello(&mut ws, key, &nonce, token).await;
        times.push(t.elapsed());
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
    }
    times
}

/// WebSocket open → the `pairing required` close of the unknown `key`, `n` times (the first
/// makes its pairing request; the others find it waiting).
async fn unknown_handshakes(port: u16, key: &SigningKey, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = dial(port).await;
        let t = Instant::now();
        let nonce = challenge(&mut ws).await;
        ws.send(Message::Text(connect_frame(key, &nonce, None).into()))
            .await
            .unwrap();
        let (answer, close) = outcome(&mut ws).await;
        times.push(t.elapsed());
        assert_eq!(close, Some((1008, "pairing required".into())), "{answer:?}");
    }
    times
}

/// `GET /healthz` every 10 ms while `on` (at least once); the answer times.
async fn healthz_probe(
    http: reqwest::Client,
    port: u16,
    on: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Duration> {
    let mut times = Vec::new();
    while times.is_empty() || on.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        let res = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    times
}

/// Waits until the gateway lists `node` as connected.
async fn wait_connected(http: &reqwest::Client, port: u16, node: &str, why: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = http
            .get(format!("http://127.0.0.1:{port}/api/nodes"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["paired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["nodeId"] == node && n["connected"] == true)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{node} did not connect: {}",
            why()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A state dir for the real node host: its identity, the device token it was given, and an
/// allowlist with `true`. Returns the dir and its paired record.
fn node_host_state() -> (PathBuf, PairedDevice) {
    let dir = support::temp_dir("nodes-bench-host");
    let state = StateDir::open(&dir).unwrap();
    let id = identity::load_or_create(&state).unwrap();
    let device = paired(&id.key, "desk");
    identity::store_token(
        &state,
        &id,
        "node",
        Some(identity::StoredToken {
            token: token_of(&id.key),
            role: "node".into(),
            scopes: vec![],
            updated_at_ms: device.approved_at_ms,
        }),
    )
    .unwrap();
    approvals::load(&state).unwrap();
    allow(&dir, &["true"]);
    (dir, device)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let s = if full {
        Sizes {
            warmup: 100,
            runs: 1000,
            host_runs: 1000,
            handshakes: 200,
            idle: 1000,
            connecting: 32,
        }
    } else {
        Sizes {
            warmup: 5,
            runs: 20,
            host_runs: 5,
            handshakes: 10,
            idle: 20,
            connecting: 8,
        }
    };
    let (fd_before, fd_after) = raise_fd_limit();
    let http = reqwest::Client::new();

    // One gateway with three paired nodes: the simulated one, the real node host, and one to
    // measure handshakes with.
    let (sim, shaker, stranger) = (key(1_000_001), key(1_000_002), key(1_000_003));
    let (host_dir, host_device) = node_host_state();
    let host_id = host_device.device_id.clone();
    let state = state_with(
        "nodes-bench-gw",
        vec![paired(&sim, "sim"), paired(&shaker, "shaker"), host_device],
    );
    let gw = tokio::task::spawn_blocking(move || Gateway::start(&state))
        .await
        .unwrap();
    let port = gw.port;

    // Invoke round trip, simulated node.
    let sim_id = id_of(&sim);
    let node = tokio::spawn(answer_invokes(connect(port, &sim, false).await));
    let mut sim_times = round_trips(&http, port, &sim_id, s.warmup, s.runs).await;
    // ... and the real node host, which runs `/bin/sh -lc true`.
    let host = {
        let (dir, port) = (host_dir.clone(), port);
        tokio::task::spawn_blocking(move || node_host(&dir, port))
            .await
            .unwrap()
    };
    wait_connected(&http, port, &host_id, || node_log(&host_dir)).await;
    let mut host_times = round_trips(&http, port, &host_id, s.warmup.min(20), s.host_runs).await;
    drop(host);

    // Handshakes with a few devices paired.
    let mut hs_sig = paired_handshakes(port, &shaker, None, s.handshakes).await;
    let mut hs_token =
        paired_handshakes(port, &shaker, Some(&token_of(&shaker)), s.handshakes).await;
    let mut hs_unknown = unknown_handshakes(port, &stranger, s.handshakes).await;

    let errors = gw.errors();
    drop(gw);
    let answered = node.await.unwrap();
    assert_eq!(
        answered,
        s.warmup + s.runs,
        "every invoke reached the node once"
    );
    assert!(errors.is_empty(), "the gateway logged errors: {errors:#?}");

    // Memory per idle connection: a gateway with `idle` (+ 1) devices paired.
    let keys: Vec<SigningKey> = (0..s.idle).map(key).collect();
    let mut devices: Vec<PairedDevice> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| paired(k, &format!("idle-{i}")))
        .collect();
    devices.push(paired(&shaker, "shaker"));
    let state = state_with("nodes-bench-idle", devices);
    let paired_bytes = std::fs::metadata(state.join(PAIRED_FILE)).unwrap().len();
    let gw = tokio::task::spawn_blocking(move || Gateway::start(&state))
        .await
        .unwrap();
    let port = gw.port;
    // Warm up: one session opened and closed, so what is made once is in the baseline.
    paired_handshakes(port, &shaker, None, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = gw.rss();
    let (idle, idle_took) = connect_all(port, &keys, false, s.connecting).await;
    tokio::time::sleep(Duration::from_secs(if full { 2 } else { 0 })).await;
    let rss_idle = gw.rss();
    let listed: Value = http
        .get(format!("http://127.0.0.1:{port}/api/nodes"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let connected = listed["paired"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["connected"] == true)
        .count();
    assert_eq!(
        connected, s.idle,
        "the gateway lists every node as connected"
    );
    // Handshakes again, with `idle` devices paired and connected.
    let n = (s.handshakes / 4).max(5);
    let mut big_sig = paired_handshakes(port, &shaker, None, n).await;
    let mut big_token = paired_handshakes(port, &shaker, Some(&token_of(&shaker)), n).await;
    close_all(idle).await;
    tokio::time::sleep(Duration::from_secs(if full { 2 } else { 0 })).await;
    let rss_closed = gw.rss();
    // /healthz on its own, then while all of them connect again, each with its device token,
    // as node hosts reconnect after a restart.
    let probing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = tokio::spawn(healthz_probe(http.clone(), port, probing.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut healthz_alone = probe.await.unwrap();
    probing.store(true, std::sync::atomic::Ordering::Relaxed);
    let probe = tokio::spawn(healthz_probe(http.clone(), port, probing.clone()));
    let (again, storm_took) = connect_all(port, &keys, true, s.connecting).await;
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut healthz = probe.await.unwrap();
    let rss_again = gw.rss();
    close_all(again).await;
    let errors = gw.errors();
    assert!(errors.is_empty(), "the gateway logged errors: {errors:#?}");
    drop(gw);

    let per_node = (rss_idle as f64 - rss_before as f64) / s.idle as f64;
    sim_times.sort();
    let p99 = pct(&sim_times, 0.99);
    println!("open files: soft limit {fd_after} (was {fd_before}); the gateway inherits it");
    println!(
        "invoke round trip, POST /api/nodes/run -> node.invoke.request -> node.invoke.result -> HTTP answer, one kept-alive client, {} runs after {} warm-up:",
        s.runs, s.warmup
    );
    println!(
        "  simulated node (answers at once):       {}   (target p99 <= {}: {})",
        summary(&mut sim_times),
        ms(TARGET_P99),
        if p99 <= TARGET_P99 { "met" } else { "NOT met" }
    );
    println!(
        "  real node host, includes running `/bin/sh -lc true` ({} runs): {}",
        s.host_runs,
        summary(&mut host_times)
    );
    println!(
        "handshake, WebSocket open -> answer (3 devices paired, {} each):",
        s.handshakes
    );
    println!(
        "  paired, signature only -> hello-ok:           {}",
        summary(&mut hs_sig)
    );
    println!(
        "  paired, with its device token -> hello-ok:    {}",
        summary(&mut hs_token)
    );
    println!(
        "  unknown -> `pairing required` close:          {}",
        summary(&mut hs_unknown)
    );
    println!(
        "idle node connections ({} devices paired, devices/paired.json {} KiB):",
        s.idle + 1,
        paired_bytes / 1024
    );
    println!(
        "  {} nodes connected ({} at a time, signature only) in {:.2} s",
        s.idle,
        s.connecting,
        idle_took.as_secs_f64(),
    );
    println!(
        "  gateway VmRSS {rss_before} KiB before, {rss_idle} KiB with {} idle nodes, {rss_closed} KiB after they closed, {rss_again} KiB with them reconnected",
        s.idle
    );
    println!(
        "  {per_node:.1} KiB per idle node connection   (target <= {TARGET_KIB_PER_NODE} KiB: {})",
        if per_node <= TARGET_KIB_PER_NODE {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  handshake with them connected ({n} each): signature only {}; with device token {}",
        summary(&mut big_sig),
        summary(&mut big_token)
    );
    println!(
        "  all {} again, each with its device token (as node hosts reconnect after a restart), in {:.2} s",
        s.idle,
        storm_took.as_secs_f64(),
    );
    println!(
        "  GET /healthz every 10 ms: alone {}; during that reconnect ({} probes) {}",
        summary(&mut healthz_alone),
        healthz.len(),
        summary(&mut healthz)
    );
}
