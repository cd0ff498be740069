//! `clawops operator` as a process: it serves its health and metrics endpoints even while the
//! API server is unreachable (but is not ready, and says why), and exits cleanly on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::process::*;

#[test]
fn serves_health_and_metrics_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("clawops-op-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    // An API server address where nothing listens.
    let api_port = free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://127.0.0.1:{api_port}'}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut op = Reaper(
        Command::new(env!("CARGO_BIN_EXE_clawops"))
            .args([
                "operator",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "json",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(wait_for_http(port, "/healthz").code, 200);
    // Not ready: no watch has listed anything; the reason names the API server and the cause.
    let api = format!("http://127.0.0.1:{api_port}/");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let r = get(port, "/readyz").unwrap();
        if r.body.contains("connection refused") || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready.code, 503, "{}", ready.body);
    assert!(
        ready
            .body
            .contains(&format!("Agent from {api}: connection refused")),
        "{}",
        ready.body
    );
    let metrics = get(port, "/metrics").unwrap();
    assert_eq!(metrics.code, 200);
    assert!(
        metrics.body.contains("clawops_operator_reconciles"),
        "{}",
        metrics.body
    );

    // Within the shutdown grace period (5 s) and well inside a pod's 30 s.
    let status = op.terminate(Duration::from_secs(15));
    let logs = op.stderr();
    assert!(status.success(), "exit {status:?}; logs:\n{logs}");
    // Structured JSON logs, including the shutdown.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "shutdown requested"),
        "{logs}"
    );
    assert!(lines.iter().any(|l| l["message"] == "stopped"), "{logs}");
    // The operator's own log line says where it tried to connect and what failed.
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "watch failed; retrying"
                && l["api"] == api.as_str()
                && l["cause"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("connection refused"))),
        "{logs}"
    );
}
