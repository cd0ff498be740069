//! Cron runs end to end in a cluster: the real gateway binary (rendered gateway.json, in-cluster
//! mode) against a fake Kubernetes API over HTTP serving a troubled fixture cluster, the fake
//! model and the fake Bot API; `clawops cron run` as the CronJob runs it.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::fake_api::FakeApi;
use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::process::*;
use clawops::plan::gateway_config::KubernetesConfig;
use serde_json::Value;

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
    // The Control UI's Alerts page shows it as told and still holding.
    let view = tokio::task::spawn_blocking(move || {
        let auth = format!("Authorization: Bearer {GATEWAY_TOKEN}");
        request(port, "GET", "/api/alerts", &[&auth], "").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(view.code, 200, "{}", view.body);
    let v: Value = serde_json::from_str(&view.body).unwrap();
    assert_eq!(v["enabled"], true, "{v}");
    assert_eq!(v["told"][0]["object"], "pod web/api-7d9f", "{v}");
    assert_eq!(v["told"][0]["reason"], "CrashLoopBackOff", "{v}");
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

/// `clawops cron run <name> --record` as the CronJob runs it, against the gateway at `url`, with
/// the Kubernetes API of `kubeconfig`; `in_pod` sets what a pod's environment has.
async fn recorded_run(url: &str, kubeconfig: &Path, in_pod: bool, extra: &[&str]) -> Output {
    recorded_run_with_token(url, kubeconfig, in_pod, extra, GATEWAY_TOKEN).await
}

async fn recorded_run_with_token(
    url: &str,
    kubeconfig: &Path,
    in_pod: bool,
    extra: &[&str],
    token: &str,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clawops"));
    // One attempt unless the caller waits longer.
    let wait = if extra.contains(&"--wait") {
        &[][..]
    } else {
        &["--wait", "1"][..]
    };
    cmd.args(["cron", "run", "morning-patrol", "--record"])
        .args(wait)
        .args(extra)
        .env("CLAWOPS_GATEWAY_URL", url)
        .env("CLAWOPS_GATEWAY_TOKEN", token)
        .env(
            "CLAWOPS_GATEWAY_TOKEN_FROM",
            "Secret shrimp-gateway-token key token",
        )
        .env("CLAWOPS_AGENT", "shrimp")
        .env("POD_NAMESPACE", "default")
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST");
    if in_pod {
        // In a pod the reason goes to /dev/termination-log; never write there on this machine.
        assert!(extra.contains(&"--termination-log"));
        cmd.env("KUBERNETES_SERVICE_HOST", "10.43.0.1");
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_are_recorded_on_the_cron_and_a_success_resets_the_count() {
    let Fakes {
        llm: _llm,
        tg: _tg,
        yaml,
        api,
        kubeconfig,
    } = fakes("cron-failures", support::cluster::healthy).await;
    let example = support::example("shrimp.yaml");
    example.crons.iter().for_each(|c| api.insert(c));
    example.channels.iter().for_each(|c| api.insert(c));
    let termination_log = yaml.with_file_name("termination-log");
    let tlog = termination_log.to_str().unwrap();
    api.take_log();

    // In a pod, the gateway's Service name does not resolve: the cause and in-cluster advice.
    let dns_url = "http://shrimp-gateway.nonexistent.invalid:18789";
    let out = recorded_run(dns_url, &kubeconfig, true, &["--termination-log", tlog]).await;
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DNS cannot resolve shrimp-gateway.nonexistent.invalid")
            && stderr.contains("kubectl -n nonexistent get service shrimp-gateway")
            && !stderr.contains("port-forward"),
        "{stderr}"
    );
    let status = cron_status(&api);
    assert_eq!(status["consecutiveFailures"], 1, "{status}");
    assert!(
        status["lastFailure"]
            .as_str()
            .unwrap()
            .contains("DNS cannot resolve shrimp-gateway.nonexistent.invalid"),
        "{status}"
    );
    assert!(
        status["lastFailureTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{status}"
    );
    // `kubectl describe pod` shows the same line as the container's termination message.
    let message = std::fs::read_to_string(&termination_log).unwrap();
    assert_eq!(Some(message.as_str()), status["lastFailure"].as_str());
    assert!(!message.contains('\n'));
    // A Warning event on the Cron says so too.
    let events: Vec<Value> = api
        .paths("/apis/events.k8s.io/v1/namespaces/default/events/")
        .iter()
        .filter_map(|p| api.get(p))
        .collect();
    let warning = events
        .iter()
        .find(|e| e["reason"] == "RunFailed")
        .unwrap_or_else(|| panic!("no RunFailed event in {events:?}"));
    assert_eq!(warning["type"], "Warning");
    assert_eq!(warning["regarding"]["kind"], "Cron");
    assert_eq!(warning["regarding"]["name"], "morning-patrol");
    assert_eq!(Some(&warning["note"]), status.get("lastFailure"));

    // Nothing listens on the gateway port, from a workstation: refused, and the second failure
    // in a row.
    let refused_url = format!("http://127.0.0.1:{}", free_port());
    let out = recorded_run(
        &refused_url,
        &kubeconfig,
        false,
        &["--termination-log", tlog],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("kubectl port-forward"),
        "{}",
        text(&out.stderr)
    );
    let status = cron_status(&api);
    assert_eq!(status["consecutiveFailures"], 2, "{status}");
    assert!(
        status["lastFailure"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{status}"
    );

    // The runner stayed within its Role: its Agent's Crons' status by name, and Events.
    let agent = &example.agents[0];
    let role = clawops::plan::build::rbac::cron_role(agent, &example.crons);
    let rules = role.rules.clone().unwrap();
    let allowed = support::rbac::allowed(&rules);
    for r in api.take_log() {
        let access = support::rbac::access(&r);
        assert!(allowed.contains(&access), "{access:?} not in {rules:?}");
        if access.1 == "crons/status" {
            assert!(
                r.path.ends_with("/crons/morning-patrol/status"),
                "{}",
                r.path
            );
        }
    }

    // The gateway comes up, but this run's token is not the gateway's: the message says which
    // Secret the runner's token came from, and the failure counts.
    let port = free_port();
    let mut gw = start(&gateway_json(&yaml, false), &kubeconfig, port);
    let gateway_url = format!("http://127.0.0.1:{port}");
    let out = recorded_run_with_token(
        &gateway_url,
        &kubeconfig,
        true,
        &["--wait", "60", "--termination-log", tlog],
        "an-old-token-0123456789abcdef0123",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the gateway refused the token (HTTP 401)")
            && stderr.contains(
                "this client's token came from CLAWOPS_GATEWAY_TOKEN (Secret shrimp-gateway-token key token)"
            )
            && !stderr.contains("an-old-token"),
        "{stderr}"
    );
    assert_eq!(cron_status(&api)["consecutiveFailures"], 3);

    // A successful run resets the count and keeps the last failure.
    let out = recorded_run(&gateway_url, &kubeconfig, false, &["--wait", "60"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = cron_status(&api);
    assert_eq!(status["consecutiveFailures"], 0, "{status}");
    assert!(status["lastSuccessfulTime"].is_string(), "{status}");
    assert!(
        status["lastFailure"].is_string(),
        "the last failure stays: {status}"
    );
    assert!(gw.terminate(Duration::from_secs(15)).success());
}

/// A port nothing listens on: below the ephemeral range, so no other test's server (bound to
/// port 0) can be given it while this test runs, as could happen to a port found free and
/// released.
const CLOSED_PORT: u16 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_record_still_fails_only_because_of_the_run() {
    // No Kubernetes API at all: the run's own failure decides the exit code, and the log says
    // the run was not recorded.
    let dir = std::env::temp_dir().join(format!("clawops-norecord-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: gone, cluster: {{server: \"http://127.0.0.1:{}\"}}}}]\n\
             users: [{{name: gone, user: {{}}}}]\ncontexts: [{{name: gone, context: {{cluster: gone, user: gone}}}}]\n\
             current-context: gone\n",
            CLOSED_PORT
        ),
    )
    .unwrap();
    let out = recorded_run(
        &format!("http://127.0.0.1:{CLOSED_PORT}"),
        &kubeconfig,
        false,
        &["--termination-log", dir.join("tlog").to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read the Cron to record this run")
            && stderr.contains("error: cannot reach the gateway"),
        "{stderr}"
    );
}
