//! `Agent.spec.backup` end to end without a cluster: the backup CronJob that `clawops render`
//! prints is run as its pod runs it (its args, its env with the Secret values put in) against a
//! real gateway and S3-compatible storage (moto), night after night. The first run starts
//! before the gateway answers and waits for it; `keep` holds; a run that fails says why where
//! `kubectl describe pod` shows it; and the newest backup, restored into a fresh gateway (a new
//! Agent, in another namespace or cluster), answers the approved sender without pairing and
//! remembers the conversation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support;
use crate::support::fake_llm::FakeLlm;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::moto::{self, ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::support::process::*;

const TOKEN: &str = "backup-cron-gateway-token-0123456";

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

/// The example with backups to moto every night at 03:00, keeping 2, and their Secret.
fn example(llm: &FakeLlm, tg: &FakeTelegram, s3: &str) -> PathBuf {
    let backup = format!(
        "  userTimezone: Asia/Shanghai\n  backup:\n    schedule: \"0 3 * * *\"\n    destination: s3://{}/shrimp/\n    endpoint: {s3}\n    credentialsSecretRef:\n      name: shrimp-s3\n    keep: 2\n",
        moto::BUCKET
    );
    let yaml = support::example_with(
        "backup-cron",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            ("  userTimezone: Asia/Shanghai\n", backup),
        ],
    );
    let mut text = std::fs::read_to_string(&yaml).unwrap();
    text.push_str(&format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: shrimp-s3\nstringData:\n  AWS_ACCESS_KEY_ID: {ACCESS_KEY_ID}\n  AWS_SECRET_ACCESS_KEY: {SECRET_ACCESS_KEY}\n"
    ));
    std::fs::write(&yaml, text).unwrap();
    yaml
}

/// The backup CronJob's container as `clawops render` prints it: its args, and its env with
/// each Secret key's value from the YAML. Two things are the cluster's and are put in here:
/// the Service's DNS name (the gateway runs on a local port) and the generated token Secret
/// (the gateway runs with a token of ours).
fn backup_job(yaml: &Path, gateway_port: u16) -> (Vec<String>, BTreeMap<String, String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["render", "-f", yaml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let docs: Vec<Value> = serde_yaml::Deserializer::from_slice(&out.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let input: Vec<Value> =
        serde_yaml::Deserializer::from_str(&std::fs::read_to_string(yaml).unwrap())
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
    let job = docs
        .iter()
        .find(|d| d["kind"] == "CronJob" && d["metadata"]["name"] == "shrimp-backup")
        .expect("render prints the backup CronJob");
    let c = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mut env = BTreeMap::new();
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else {
            let r = &e["valueFrom"]["secretKeyRef"];
            if r["name"] == "shrimp-gateway-token" {
                TOKEN.to_string()
            } else {
                let secret = input
                    .iter()
                    .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == r["name"])
                    .unwrap_or_else(|| panic!("no Secret {} in the YAML", r["name"]));
                secret["stringData"][r["key"].as_str().unwrap()]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        env.insert(name, value);
    }
    assert_eq!(
        env["CLAWOPS_GATEWAY_URL"], "http://shrimp-gateway.default.svc:18789",
        "the Job reaches the gateway through its Service"
    );
    env.insert(
        "CLAWOPS_GATEWAY_URL".into(),
        format!("http://127.0.0.1:{gateway_port}"),
    );
    (args, env)
}

/// Runs the Job's container command with exactly its env.
fn run_job(args: &[String], env: &BTreeMap<String, String>) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(args)
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn gateway(yaml: &Path, state: &Path, port: u16) -> Reaper {
    support::gateway_with_token(yaml, state, port, TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_run_as_their_job_and_restore_into_a_fresh_agent() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let s3_port = free_port();
    let mut s3 = tokio::task::spawn_blocking(move || moto::moto(s3_port))
        .await
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{s3_port}");
    let yaml = example(&llm, &tg, &endpoint);
    let port = free_port();
    let (args, env) = backup_job(&yaml, port);
    assert_eq!(env["AWS_ACCESS_KEY_ID"], ACCESS_KEY_ID);
    assert_eq!(env["AWS_ENDPOINT_URL"], endpoint);

    // The first night's Job starts while the gateway is still starting: it waits for it.
    let first = run_job(&args, &env);
    std::thread::sleep(Duration::from_millis(1500));
    let state = support::temp_dir("backup-cron-state");
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    let first = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(first.status.success(), "{}", text(&first));

    // A sender pairs, is approved, and talks; then two more nights.
    tg.dm(8000, "friend", "hello");
    let code = tg.pairing_code(8000).await;
    let approved = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["pairing", "approve", "telegram", &code])
        .env("CLAWOPS_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("CLAWOPS_GATEWAY_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(approved.status.success(), "{}", text(&approved));
    tg.dm(8000, "friend", "remember the green heron");
    tg.replies(8000, 2).await;
    let mut said = String::new();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(5)); // backups are named to the millisecond
        let (a, e) = (args.clone(), env.clone());
        let night =
            tokio::task::spawn_blocking(move || run_job(&a, &e).wait_with_output().unwrap())
                .await
                .unwrap();
        assert!(night.status.success(), "{}", text(&night));
        said = text(&night);
    }
    assert!(said.contains("deleted 1 older backup(s)"), "{said}");
    let kept = moto::keys(&endpoint, "shrimp/");
    assert_eq!(kept.len(), 2, "keep: 2 → {kept:?}");
    let newest = kept.iter().max().unwrap().clone();
    assert!(
        said.contains(&format!("s3://{}/{newest}", moto::BUCKET)),
        "{said}"
    );
    assert!(said.contains("no secrets"), "{said}");

    // A night the storage cannot be reached: the Job fails, and says why where `kubectl
    // describe pod` shows it.
    let log = support::temp_dir("backup-cron-termination").join("termination-log");
    let mut broken = env.clone();
    broken.insert(
        "AWS_ENDPOINT_URL".into(),
        format!("http://127.0.0.1:{}", free_port()),
    );
    broken.insert(
        "CLAWOPS_TERMINATION_LOG".into(),
        log.to_str().unwrap().into(),
    );
    let (a, e) = (args.clone(), broken);
    let failed = tokio::task::spawn_blocking(move || run_job(&a, &e).wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!failed.status.success());
    let reason = std::fs::read_to_string(&log).expect("the reason is written");
    assert!(
        reason.starts_with(&format!("s3://{}/shrimp/clawops-", moto::BUCKET))
            && reason.contains("cannot reach"),
        "{reason}"
    );
    assert!(!reason.contains(SECRET_ACCESS_KEY), "{reason}");
    gw.terminate(Duration::from_secs(10));

    // A new Agent elsewhere: a fresh gateway, then the newest backup restored through its API.
    let fresh = support::temp_dir("backup-cron-fresh");
    let (y, s) = (yaml.clone(), fresh.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    // Given the prefix, the newest backup under it.
    let prefix = format!("s3://{}/shrimp/", moto::BUCKET);
    let restore = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["backup", "restore", &prefix, "--force"])
        .env_clear()
        .envs(&env)
        .output()
        .unwrap();
    let said = text(&restore);
    assert!(
        restore.status.success()
            && said.contains(&format!(
                "the newest backup there: {}",
                newest.trim_start_matches("shrimp/")
            ))
            && said.contains("it stops now"),
        "{said}"
    );
    let stopped = tokio::task::spawn_blocking(move || gw.exit(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(stopped.success(), "a clean stop: {stopped}");
    // Kubernetes starts the container again; here, we do.
    let (y, s) = (yaml.clone(), fresh.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    let before = tg.sent_to(8000).len();
    tg.dm(8000, "friend", "what was the bird?");
    let got = tg.replies(8000, before + 1).await;
    assert!(
        got[before].contains("what was the bird") && !got[before].contains("Pairing code"),
        "answered without pairing: {got:?}"
    );
    let asked = llm.seen().last().unwrap().body.to_string();
    assert!(asked.contains("green heron"), "the history came back");
    gw.terminate(Duration::from_secs(10));
    s3.terminate(Duration::from_secs(5));
}
