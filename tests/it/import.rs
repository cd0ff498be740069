//! `clawops import` over fixture Clawdbot installs written from the upstream reference (the
//! seed's own config with its unrecognised `system` key, its IDENTITY.md, its `.env` and its
//! 08:10/20:10 Asia/Shanghai cron jobs; an install with a paired node and its exec allowlist; a
//! broken config), with golden outputs; and the move end to end: import → `state load` →
//! `gateway --from` the imported YAML → a sender approved under Clawdbot is answered at the fake
//! Bot API without pairing again, while a stranger still gets a code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::fake_llm::FakeLlm;
use crate::support::fake_telegram::{BOT_TOKEN, FakeTelegram};
use crate::support::process::*;
use crate::support::{self, ZAI_KEY};

const FIXTURES: &str = "tests/fixtures/clawdbot";

/// `clawops ARGS` from the crate root (fixture paths stay relative, so outputs are stable),
/// with HOME at `home` (where `~/clawd` is).
fn clawops(args: &[&str], home: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOME", home)
        .env_remove("CLAWOPS_GATEWAY_TOKEN")
        .env_remove("CLAWOPS_GATEWAY_URL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

/// Imports fixture `name` into a fresh directory: (the output dir, stdout).
fn import(fixture: &str, extra: &[&str]) -> (PathBuf, Output) {
    let out = support::temp_dir(&format!("import-{fixture}"));
    let from = format!("{FIXTURES}/{fixture}");
    let mut args = vec!["import", "--from", &from, "-o", out.to_str().unwrap()];
    args.extend(extra);
    let o = clawops(&args, &from);
    (out, o)
}

#[test]
fn the_seed_install_imports_as_its_golden_files_with_every_unmapped_key_named() {
    let env = format!("{FIXTURES}/seed/.env");
    let (out, o) = import("seed", &["--name", "shrimp", "--env", &env]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).replace(out.to_str().unwrap(), "OUT");
    let yaml = std::fs::read_to_string(out.join("shrimp.yaml")).unwrap();
    let state = std::fs::read_to_string(out.join("shrimp-state.json")).unwrap();
    support::golden("import/seed.yaml", &yaml, "import::");
    support::golden("import/seed-state.json", &state, "import::");
    support::golden("import/seed-report.txt", &stdout, "import::");
    // What the issue names, checked on their own as well as by the goldens.
    for expected in [
        "system.prompt: not a Clawdbot key",
        "job Remind me: a one-shot job",
        "gateway.auth.token: the gateway token is a placeholder",
    ] {
        assert!(stdout.contains(expected), "{expected}:\n{stdout}");
    }
    assert!(
        !out.join("secrets.yaml").exists() && !yaml.contains(BOT_TOKEN) && !yaml.contains(ZAI_KEY),
        "no secret value without --secrets-out, and never in the CRs"
    );
    assert!(!stdout.contains(BOT_TOKEN) && !stdout.contains(ZAI_KEY));
    // Asked for: the Secret, private.
    let secrets = out.join("secrets.yaml");
    let (out2, o) = import(
        "seed",
        &[
            "--name",
            "shrimp",
            "--env",
            &env,
            "--secrets-out",
            secrets.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let s = std::fs::read_to_string(&secrets).unwrap();
    assert!(
        s.contains(BOT_TOKEN) && s.contains(ZAI_KEY) && !s.contains("CHANGE_ME"),
        "{s}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The output renders as the operator would build it.
    let r = clawops(
        &[
            "render",
            "-f",
            out2.join("shrimp.yaml").to_str().unwrap(),
            secrets.to_str().unwrap(),
            "--check-secrets",
        ],
        ".",
    );
    assert!(r.status.success(), "{}", text(&r));
    assert!(String::from_utf8_lossy(&r.stdout).contains("kind: CronJob"));
}

#[test]
fn a_paired_node_and_its_allowlist_become_a_nodepairing() {
    let (out, o) = import("with-node", &["--name", "desk"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).replace(out.to_str().unwrap(), "OUT");
    let yaml = std::fs::read_to_string(out.join("desk.yaml")).unwrap();
    support::golden("import/with-node.yaml", &yaml, "import::");
    support::golden("import/with-node-report.txt", &stdout, "import::");
    assert!(yaml.contains("kind: NodePairing") && yaml.contains("/usr/bin/uptime"));
    assert!(
        !yaml.contains("laptop-cli"),
        "an operator device is not a node"
    );
    assert!(
        !yaml.contains("desk-gateway-token") && !yaml.contains("a1b2c3d4e5f6"),
        "no token in the CRs"
    );
}

#[test]
fn bad_installs_are_refused_naming_the_file_and_nothing_is_written() {
    let (out, o) = import("broken", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("tests/fixtures/clawdbot/broken/clawdbot.json: not valid JSON5"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written"
    );
    let (_, o) = import("seed", &["--workspace", "/nonexistent/clawd"]);
    assert!(
        text(&o).contains("the workspace /nonexistent/clawd does not exist"),
        "{}",
        text(&o)
    );
    let (_, o) = import("nowhere", &[]);
    assert!(text(&o).contains("no Clawdbot config in"), "{}", text(&o));
    // --strict: the seed has a key Clawdbot itself refuses and a placeholder.
    let env = format!("{FIXTURES}/seed/.env");
    let (out, o) = import("seed", &["--strict", "--env", &env]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("--strict"), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "nothing written"
    );
    // A bundle from a newer clawops is refused with what to do.
    let newer = out.join("newer-state.json");
    std::fs::write(
        &newer,
        r#"{"version":9,"clawops":"9.0.0","source":"x","channels":{}}"#,
    )
    .unwrap();
    let o = clawops(
        &[
            "state",
            "load",
            newer.to_str().unwrap(),
            "--into",
            out.to_str().unwrap(),
        ],
        ".",
    );
    assert!(
        !o.status.success()
            && text(&o).contains("from a newer clawops")
            && text(&o).contains("upgrade clawops"),
        "{}",
        text(&o)
    );
}

/// The imported YAML pointed at the fakes (the seed's model and Bot API are the real ones).
fn at_fakes(yaml: &Path, llm: &FakeLlm, tg: &FakeTelegram) {
    let text = std::fs::read_to_string(yaml)
        .unwrap()
        .replace(
            "    endpoint: coding-global\n",
            &format!("    baseUrl: {}\n", llm.base_url()),
        )
        .replace(
            "    dmPolicy: pairing\n",
            &format!("    dmPolicy: pairing\n    apiUrl: {}\n", tg.api_url()),
        );
    std::fs::write(yaml, text).unwrap();
}

fn gateway(yaml: &Path, state: &Path, port: u16) -> Reaper {
    support::gateway_with_token(yaml, state, port, "import-gateway-token-0123456789ab")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_clawdbot_sender_keeps_chatting_without_pairing_again() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let env = format!("{FIXTURES}/seed/.env");
    let (out, o) = import("seed", &["--name", "shrimp", "--env", &env]);
    assert!(o.status.success(), "{}", text(&o));
    let yaml = out.join("shrimp.yaml");
    at_fakes(&yaml, &llm, &tg);
    let bundle = out.join("shrimp-state.json");

    // Offline into the state dir, before the gateway starts.
    let state = support::temp_dir("import-state");
    let loaded = clawops(
        &[
            "state",
            "load",
            bundle.to_str().unwrap(),
            "--into",
            state.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9",
        ],
        ".",
    );
    assert!(loaded.status.success(), "{}", text(&loaded));
    assert!(
        text(&loaded).contains("telegram: 2 approved sender(s)"),
        "{}",
        text(&loaded)
    );
    let port = free_port();
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    tg.dm(123456789, "owner", "还记得我吗？");
    let got = tg.replies(123456789, 1).await;
    assert!(
        got[0].contains("还记得我吗") && !got[0].contains("Pairing code"),
        "answered without pairing: {got:?}"
    );
    tg.dm(444000444, "stranger", "hi");
    let got = tg.replies(444000444, 1).await;
    assert!(
        got[0].contains("Pairing code"),
        "a stranger still pairs: {got:?}"
    );
    // Loading into the dir of a running gateway is refused (it would be overwritten).
    let url = format!("http://127.0.0.1:{port}");
    let refused = clawops(
        &[
            "state",
            "load",
            bundle.to_str().unwrap(),
            "--into",
            state.to_str().unwrap(),
            "--url",
            &url,
        ],
        ".",
    );
    assert!(
        !refused.status.success() && text(&refused).contains("a gateway answers at"),
        "{}",
        text(&refused)
    );
    gw.terminate(Duration::from_secs(10));

    // Through the API of a running gateway with a fresh state dir.
    let state = support::temp_dir("import-state-api");
    let port = free_port();
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let loaded = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(["state", "load", bundle.to_str().unwrap(), "--url", &url])
        .env("CLAWOPS_GATEWAY_TOKEN", "import-gateway-token-0123456789ab")
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{}", text(&loaded));
    assert!(
        text(&loaded).contains(
            "telegram: 2 approved sender(s) and 0 pending code(s) added; 2 approved in all"
        ),
        "the January code has expired: {}",
        text(&loaded)
    );
    tg.dm(987654321, "friend", "我也在");
    let got = tg.replies(987654321, 1).await;
    assert!(
        got[0].contains("我也在") && !got[0].contains("Pairing code"),
        "{got:?}"
    );
    gw.terminate(Duration::from_secs(10));
}
