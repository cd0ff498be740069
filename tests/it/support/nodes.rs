//! A node's side of the gateway protocol v3, for tests and benches: a raw WebSocket client
//! (dial, challenge, a signed `connect`, the answer and the close), and the real node host
//! (`clawops node run`) with its allowlist.

use std::path::Path;
use std::process::{Command, Stdio};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::process::Reaper;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open WebSocket to the gateway on `port`, nothing read yet.
pub async fn dial(port: u16) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .0
}

/// Reads the `connect.challenge` the gateway sends first; its nonce.
pub async fn challenge(ws: &mut Ws) -> String {
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        panic!("no challenge")
    };
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["event"], "connect.challenge");
    v["payload"]["nonce"].as_str().unwrap().to_string()
}

/// [`dial`] then [`challenge`].
pub async fn open(port: u16) -> (Ws, String) {
    let mut ws = dial(port).await;
    let nonce = challenge(&mut ws).await;
    (ws, nonce)
}

/// The answer frame (if any) and the close code and reason.
pub async fn outcome(ws: &mut Ws) -> (Option<Value>, Option<(u16, String)>) {
    let mut answer = None;
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => answer = Some(serde_json::from_str(&t).unwrap()),
            Message::Close(c) => {
                return (answer, c.map(|c| (u16::from(c.code), c.reason.to_string())));
            }
            _ => {}
        }
    }
    (answer, None)
}

/// A node's `connect` request (id `c1`) signed by `key` over `nonce`, declaring `system.run`,
/// with `token` as `auth.token` when given.
pub fn connect_frame(key: &ed25519_dalek::SigningKey, nonce: &str, token: Option<&str>) -> String {
    connect_frame_at(key, nonce, token, chrono::Utc::now().timestamp_millis())
}

/// [`connect_frame`] signed at `signed_at` (ms since the epoch), as by a node whose clock is off.
pub fn connect_frame_at(
    key: &ed25519_dalek::SigningKey,
    nonce: &str,
    token: Option<&str>,
    signed_at: i64,
) -> String {
    use clawops::protocol::device::{self, SignedConnect};
    let id = device::device_id(&key.verifying_key());
    let signature = SignedConnect {
        device_id: &id,
        client_id: "node-host",
        client_mode: "node",
        role: "node",
        scopes: &[],
        signed_at_ms: signed_at,
        token: token.unwrap_or_default(),
        nonce: Some(nonce),
    }
    .sign(key);
    let mut params = json!({
        "minProtocol": 3, "maxProtocol": 3,
        "client": {"id": "node-host", "displayName": "raw", "version": "2026.1.24-3", "platform": "linux", "mode": "node"},
        "caps": ["system"], "commands": ["system.run"], "role": "node", "scopes": [],
        "device": {"id": id, "publicKey": device::encode_public_key(&key.verifying_key()),
                   "signature": signature, "signedAt": signed_at, "nonce": nonce},
    });
    if let Some(t) = token {
        params["auth"] = json!({ "token": t });
    }
    json!({"type": "req", "id": "c1", "method": "connect", "params": params}).to_string()
}

/// `clawops node run` named `desk` against the gateway on `port`, with its log in
/// `<state>/node.log`.
pub fn node_host(state: &Path, port: u16) -> Reaper {
    node_host_at(state, &format!("ws://127.0.0.1:{port}"), &[])
}

/// `clawops node run` named `desk` against the gateway at `url`, with `extra` arguments.
pub fn node_host_at(state: &Path, url: &str, extra: &[&str]) -> Reaper {
    node_host_env(state, url, extra, &[])
}

/// [`node_host_at`] with environment variables set for the node host.
pub fn node_host_env(state: &Path, url: &str, extra: &[&str], envs: &[(&str, &str)]) -> Reaper {
    std::fs::create_dir_all(state).unwrap();
    let log = std::fs::File::create(state.join("node.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args([
            "node",
            "run",
            "--gateway",
            url,
            "--display-name",
            "desk",
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .args(extra)
        .envs(envs.iter().copied())
        .env_remove("CLAWOPS_GATEWAY_TOKEN")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Reaper(child)
}

/// A node identity written into `state` as `clawops node run` keeps it; its id and public key
/// (base64url, as a NodePairing names it).
pub fn identity(state: &Path) -> (String, String) {
    use clawops::protocol::device;
    let key = device::generate_key();
    let id = device::device_id(&key.verifying_key());
    std::fs::create_dir_all(state.join("identity")).unwrap();
    std::fs::write(
        state.join("identity/device.json"),
        json!({
            "version": 1, "deviceId": id,
            "publicKeyPem": device::public_key_pem(&key.verifying_key()),
            "privateKeyPem": device::private_key_pem(&key),
            "createdAtMs": 1,
        })
        .to_string(),
    )
    .unwrap();
    (id, device::encode_public_key(&key.verifying_key()))
}

pub fn node_log(state: &Path) -> String {
    std::fs::read_to_string(state.join("node.log")).unwrap_or_default()
}

/// The real path (symlinks resolved) of `program` as PATH finds it (or as given, when it is a
/// path), as the node matches it.
pub fn real_path(program: &str) -> String {
    if program.starts_with('/') {
        return std::fs::canonicalize(program)
            .unwrap()
            .to_string_lossy()
            .into_owned();
    }
    std::env::var("PATH")
        .unwrap()
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| panic!("{program} on this machine"))
        .to_string_lossy()
        .into_owned()
}

/// Sets the node's allowlist (in its `exec-approvals.json`, which must exist) to `programs`.
pub fn allow(node_state: &Path, programs: &[&str]) {
    let path = node_state.join("exec-approvals.json");
    let mut f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f["agents"]["main"]["allowlist"] = programs
        .iter()
        .map(|p| json!({ "pattern": real_path(p) }))
        .collect();
    std::fs::write(&path, serde_json::to_string_pretty(&f).unwrap()).unwrap();
}

/// The SHA-256 fingerprint of `tests/fixtures/gateway-tls.crt`, as `openssl x509 -fingerprint
/// -sha256` prints it.
pub const TLS_FINGERPRINT: &str = "sha256:4D:17:A0:4C:00:C6:5C:43:E8:B8:FA:46:2D:2A:DE:A2:BA:B1:86:37:45:E1:F5:3E:E0:1E:08:56:2E:DC:17:34";

/// A TLS-terminating proxy in front of the gateway on `port`, with the self-signed test
/// certificate, as a user's Caddy or nginx would be: returns its port.
pub async fn tls_front(port: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let cert = CertificateDer::from_pem_file(format!("{dir}/gateway-tls.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/gateway-tls.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut gw = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut gw).await;
            });
        }
    });
    front
}
