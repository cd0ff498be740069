//! Cron runs end to end in a cluster: the real gateway binary (rendered gateway.json, in-cluster
//! mode) against a fake Kubernetes API over HTTP serving a troubled fixture cluster, the fake
//! model and the fake Bot API; `clawops cron run` as the CronJob runs it.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use clawops::config::KubernetesConfig;
use serde_json::Value;
use support::fake_api::FakeApi;
use support::fake_llm::{Answer, FakeLlm};
use support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use support::process::*;

const GATEWAY_TOKEN: &str = "test-gateway-token-0123456789abcdef";
const OWNER: i64 = 123_456_789;

/// `clawops cron run <name>` against the gateway on `port`.
async fn cron_run(port: u16, name: &str, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawops"));
    cmd.args(["cron", "run", name])
        .args(extra)
        .env("CLAWOPS_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("CLAWOPS_GATEWAY_TOKEN", GATEWAY_TOKEN);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The example rendered as the operator would (in-cluster mode), written to `dir/gateway.json`;
/// alerts as in the example, or off.
pub fn gateway_json(yaml: &Path, alerts: bool) -> std::path::PathBuf {
    let mut config =
        clawops::gateway::load::from_manifests(&[yaml.to_str().unwrap().to_string()], None)
            .unwrap();
    config.kubernetes = Some(KubernetesConfig {
        namespace: "default".into(),
        agent: config.agent.id.clone(),
    });
    if !alerts {
        config.agent.alerts = None;
    }
    let path = yaml.with_file_name("gateway.json");
    std::fs::write(&path, config.to_json()).unwrap();
    path
}

fn start(config: &Path, kubeconfig: &Path, port: u16) -> Reaper {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawops"));
    cmd.args([
        "gateway",
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
    ])
    .arg(config.with_file_name("state"))
    .args(["--listen", &format!("127.0.0.1:{port}")])
    .env("KUBECONFIG", kubeconfig)
    .env("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    .env("ZAI_API_KEY", support::ZAI_KEY)
    .env("CLAWOPS_GATEWAY_TOKEN", GATEWAY_TOKEN)
    .env("RUST_LOG", "info")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    Reaper(cmd.spawn().unwrap())
}

fn cron_status(api: &FakeApi) -> Value {
    api.get("/apis/clawops.dev/v1alpha1/namespaces/default/crons/morning-patrol")
        .expect("the Cron exists")["status"]
        .clone()
}

/// The fakes around a gateway in cluster mode: model, Bot API, and a Kubernetes API (over HTTP,
/// with a kubeconfig) holding `cluster`'s fixture built around the real clock.
struct Fakes {
    llm: FakeLlm,
    tg: FakeTelegram,
    yaml: std::path::PathBuf,
    api: FakeApi,
    kubeconfig: std::path::PathBuf,
}

async fn fakes(name: &str, cluster: fn(&FakeApi)) -> Fakes {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_at_fakes(name, &llm, &tg);
    let api = FakeApi::new();
    support::cluster::set_now(chrono::Utc::now());
    cluster(&api);
    let kubeconfig = api.serve_http(yaml.parent().unwrap()).await;
    Fakes {
        llm,
        tg,
        yaml,
        api,
        kubeconfig,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_patrol_is_reported_in_chat_and_in_the_cron_status() {
    let Fakes {
        llm,
        tg,
        yaml,
        api,
        kubeconfig,
    } = fakes("cron-cluster", support::cluster::troubled).await;
    let example = support::example("shrimp.yaml");
    for c in &example.crons {
        api.insert(c);
    }
    for c in &example.channels {
        api.insert(c);
    }
    let port = free_port();

    // The CronJob's pod may start before the gateway is ready: `cron run` waits for it.
    let early = tokio::spawn(cron_run(port, "morning-patrol", &["--wait", "60"]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut gw = start(&gateway_json(&yaml, false), &kubeconfig, port);
    let out = early.await.unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Cron morning-patrol: ok"), "{stdout}");
    assert!(stdout.contains("patrol: 4 critical"), "{stdout}");
    assert!(
        text(&out.stderr).contains("gateway not ready; retrying"),
        "{}",
        text(&out.stderr)
    );

    // The model saw the Cron's message and the cluster facts; the owner got its answer.
    let prompt = llm.seen().last().unwrap().body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(prompt.starts_with("早上好！巡检一下集群"), "{prompt}");
    for fact in [
        "node n3: NotReady",
        "pod web/api-7d9f: container main in CrashLoopBackOff",
        "pvc data/postgres",
        "deployment web/api: 0 of 2",
    ] {
        assert!(prompt.contains(fact), "{fact} missing from:\n{prompt}");
    }
    assert_eq!(tg.sent_to(OWNER).len(), 1, "{:?}", tg.sent());

    // The Cron's status: last run, last success, result, next run in Shanghai time.
    let status = cron_status(&api);
    assert!(
        status["lastRunTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{status}"
    );
    assert_eq!(status["lastSuccessfulTime"], status["lastRunTime"]);
    assert!(
        status["lastResult"]
            .as_str()
            .unwrap()
            .starts_with("ok: 4 critical"),
        "{status}"
    );
    let next = status["nextRunTime"].as_str().unwrap();
    assert!(
        next.ends_with("+08:00") && (next.contains("T08:10:00") || next.contains("T20:10:00")),
        "{next}"
    );

    // The model is out of quota: the raw report reaches the chat, marked as such.
    llm.script("glm-4.7", [Answer::glm(429, "1308", "Usage limit reached")]);
    let out = cron_run(port, "morning-patrol", &[]).await;
    assert!(
        out.status.success(),
        "a delivered raw report is not a failed run: {}",
        text(&out.stderr)
    );
    let raw = tg.sent_to(OWNER)[1].clone();
    assert!(raw.contains("以下是未经模型整理的巡检原始报告"), "{raw}");
    assert!(
        raw.contains("[critical] node n3: NotReady") && raw.contains("-> kubectl describe node n3"),
        "{raw}"
    );
    let status = cron_status(&api);
    assert!(
        status["lastResult"]
            .as_str()
            .unwrap()
            .starts_with("model failed, raw report sent: 4 critical"),
        "{status}"
    );

    // An unknown Cron fails the Job with a message that says what exists.
    let out = cron_run(port, "noon-patrol", &[]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "no Cron named noon-patrol; this gateway has: evening-patrol, morning-patrol"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(gw.terminate(Duration::from_secs(15)).success());
    let log = gw.stderr();
    assert!(!log.contains(BOT_TOKEN) && !log.contains(support::ZAI_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_owner_from_the_running_gateway() {
    let Fakes {
        llm,
        tg,
        yaml,
        api,
        kubeconfig,
    } = fakes("alerts", support::cluster::healthy).await;
    let port = free_port();
    let mut gw = start(&gateway_json(&yaml, true), &kubeconfig, port);
    tokio::task::spawn_blocking(move || wait_for_http(port, "/readyz"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        tg.sent_to(OWNER).is_empty(),
        "a healthy cluster: {:?}",
        tg.sent()
    );

    // Something breaks between patrols: the owner hears of it at once, in the persona's language.
    api.insert(&support::cluster::pod(
        "web",
        "api-7d9f",
        "Running",
        serde_json::json!({"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tg.sent_to(OWNER).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        tg.sent_to(OWNER),
        [
            "🚨 告警 pod web/api-7d9f：CrashLoopBackOff — container main keeps crashing (3 restarts)\n-> kubectl -n web logs api-7d9f -c main --previous"
        ]
    );
    assert!(llm.seen().is_empty(), "alerts take no model turn");
    assert!(gw.terminate(Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_run_fails_when_nothing_answers() {
    let out = cron_run(free_port(), "morning-patrol", &["--wait", "2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the gateway"),
        "{}",
        text(&out.stderr)
    );
}
