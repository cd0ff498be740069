//! Backup and restore end to end with the real binaries: a gateway that has approved a sender
//! and talked with them is backed up through its API; the archive restored into a fresh state
//! dir gives a gateway that answers that sender without pairing and remembers the
//! conversation. Restoring over state needs --force (the old is kept), over a running gateway
//! is refused, and a damaged archive is refused naming it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support;
use crate::support::fake_llm::FakeLlm;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::process::*;

const TOKEN: &str = "backup-gateway-token-0123456789ab";

fn clawops(args: &[&str], port: u16) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(args)
        .env("CLAWOPS_GATEWAY_URL", format!("http://127.0.0.1:{port}"))
        .env("CLAWOPS_GATEWAY_TOKEN", TOKEN)
        .output()
        .unwrap()
}

/// `clawops backup restore ARCHIVE --into DIR [--force]`, with the gateway at `port` as `--url`.
fn restore_into(archive: &Path, dir: &Path, force: bool, port: u16) -> Output {
    let (archive, dir) = (archive.to_str().unwrap(), dir.to_str().unwrap());
    let mut args = vec!["backup", "restore", archive, "--into", dir];
    if force {
        args.push("--force");
    }
    clawops(&args, port)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

fn gateway(yaml: &Path, state: &Path, port: u16) -> Reaper {
    support::gateway_with_token(yaml, state, port, TOKEN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_a_fresh_dir_brings_approvals_and_history_back() {
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_at_fakes("backup", &llm, &tg);
    let state = support::temp_dir("backup-state");
    let port = free_port();
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    // A sender pairs, is approved, and talks.
    tg.dm(8000, "friend", "hello");
    let code = tg.pairing_code(8000).await;
    let approved = clawops(&["pairing", "approve", "telegram", &code], port);
    assert!(approved.status.success(), "{}", text(&approved));
    tg.dm(8000, "friend", "remember the blue whale");
    tg.replies(8000, 2).await;

    let out = support::temp_dir("backup-out");
    let archive = out.join("shrimp.tar.zst");
    let made = clawops(
        &["backup", "create", "--to", archive.to_str().unwrap()],
        port,
    );
    assert!(made.status.success(), "{}", text(&made));
    assert!(text(&made).contains("no secrets"), "{}", text(&made));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A running gateway's state is not restored over.
    let fresh = out.join("restored");
    let busy = restore_into(&archive, &fresh, false, port);
    assert!(
        !busy.status.success() && text(&busy).contains("stop it before restoring"),
        "{}",
        text(&busy)
    );
    gw.terminate(Duration::from_secs(10));

    // Into a fresh dir: the approval and the conversation come back.
    let restored = restore_into(&archive, &fresh, false, port);
    assert!(restored.status.success(), "{}", text(&restored));
    let (y, s) = (yaml.clone(), fresh.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    tg.dm(8000, "friend", "what did I ask you to remember?");
    let got = tg.replies(8000, 3).await;
    assert!(
        got[2].contains("what did I ask") && !got[2].contains("Pairing code"),
        "answered without pairing: {got:?}"
    );
    let asked = llm.seen().last().unwrap().body.to_string();
    assert!(asked.contains("blue whale"), "the history came back");
    gw.terminate(Duration::from_secs(10));

    // Over state: only with --force, and the old is kept.
    let again = restore_into(&archive, &fresh, false, port);
    assert!(
        !again.status.success() && text(&again).contains("pass --force"),
        "{}",
        text(&again)
    );
    let forced = restore_into(&archive, &fresh, true, port);
    assert!(
        forced.status.success() && text(&forced).contains("is kept in"),
        "{}",
        text(&forced)
    );
    // Damaged: cut short.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = out.join("cut.tar.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let refused = restore_into(&cut, &out.join("x"), false, port);
    assert!(
        !refused.status.success() && text(&refused).contains("cut.tar.zst"),
        "{}",
        text(&refused)
    );
    assert!(!out.join("x").exists(), "nothing restored");

    // Through the API of a running gateway that has state of its own (a stranger asked to
    // pair): refused without --force; with it, staged, the gateway stops, and its next start
    // has the backup's approvals.
    let other = out.join("other");
    let (y, s) = (yaml.clone(), other.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    tg.dm(8100, "stranger", "hi");
    tg.replies(8100, 1).await;
    let refused = clawops(&["backup", "restore", archive.to_str().unwrap()], port);
    assert!(
        !refused.status.success() && text(&refused).contains("pass --force"),
        "{}",
        text(&refused)
    );
    let staged = clawops(
        &["backup", "restore", archive.to_str().unwrap(), "--force"],
        port,
    );
    assert!(
        staged.status.success() && text(&staged).contains("it stops now"),
        "{}",
        text(&staged)
    );
    let stopped = tokio::task::spawn_blocking(move || gw.exit(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(stopped.success(), "a clean stop: {stopped}");
    let (y, s) = (yaml.clone(), other.clone());
    let mut gw = tokio::task::spawn_blocking(move || gateway(&y, &s, port))
        .await
        .unwrap();
    let before = tg.sent_to(8000).len();
    tg.dm(8000, "friend", "still there?");
    let got = tg.replies(8000, before + 1).await;
    assert!(
        got[before].contains("still there") && !got[before].contains("Pairing code"),
        "{got:?}"
    );
    assert!(
        std::fs::read_dir(&other)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".replaced-")),
        "the state that was there is kept"
    );
    gw.terminate(Duration::from_secs(10));
}

fn with_s3(args: &[&str], endpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", support::moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", support::moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("CLAWOPS_GATEWAY_URL", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

/// A state dir backed up to S3-compatible storage (moto) and restored from it; a bucket that
/// does not exist is named in the refusal, and so are missing credentials.
#[test]
fn backups_go_to_and_come_back_from_s3_compatible_storage() {
    let port = free_port();
    let mut server = support::moto::moto(port);
    let endpoint = format!("http://127.0.0.1:{port}");
    let state = support::temp_dir("backup-s3-state");
    std::fs::create_dir_all(state.join("telegram")).unwrap();
    let allowed = r#"{"version":1,"allowFrom":["8000"]}"#;
    std::fs::write(state.join("telegram/telegram-allowFrom.json"), allowed).unwrap();
    let from = state.to_str().unwrap();
    let made = with_s3(
        &[
            "backup",
            "create",
            "--from",
            from,
            "--to",
            "s3://claw-backups/shrimp/",
        ],
        &endpoint,
    );
    assert!(made.status.success(), "{}", text(&made));
    let said = text(&made);
    let url = said
        .split_whitespace()
        .find(|w| w.starts_with("s3://claw-backups/shrimp/clawops-") && w.ends_with(".tar.zst"))
        .unwrap_or_else(|| panic!("the object is named: {said}"))
        .to_string();
    let into = support::temp_dir("backup-s3-restored").join("state");
    let restored = with_s3(
        &["backup", "restore", &url, "--into", into.to_str().unwrap()],
        &endpoint,
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(
        std::fs::read_to_string(into.join("telegram/telegram-allowFrom.json")).unwrap(),
        allowed
    );
    let refused = with_s3(
        &[
            "backup",
            "create",
            "--from",
            from,
            "--to",
            "s3://no-such-bucket/x.tar.zst",
        ],
        &endpoint,
    );
    assert!(
        !refused.status.success()
            && text(&refused)
                .contains("s3://no-such-bucket/x.tar.zst: PUT refused (HTTP 404 NoSuchBucket"),
        "{}",
        text(&refused)
    );
    // Daily backups under a prefix, and in a directory, keeping the newest two.
    let local = support::temp_dir("backup-keep");
    let dir = format!("{}/", local.display());
    for _ in 0..3 {
        for to in ["s3://claw-backups/daily/", dir.as_str()] {
            let o = with_s3(
                &[
                    "backup", "create", "--from", from, "--to", to, "--keep", "2",
                ],
                &endpoint,
            );
            assert!(o.status.success(), "{}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        support::moto::keys(&endpoint, "daily/").len(),
        2,
        "two kept under the prefix"
    );
    assert_eq!(
        std::fs::read_dir(&local).unwrap().count(),
        2,
        "two kept in the directory"
    );
    let o = with_s3(
        &[
            "backup",
            "create",
            "--from",
            from,
            "--to",
            "s3://claw-backups/one.tar.zst",
            "--keep",
            "2",
        ],
        &endpoint,
    );
    assert!(
        !o.status.success()
            && text(&o).contains("--keep needs --to to be a directory or an S3 prefix"),
        "{}",
        text(&o)
    );
    let none = with_s3(
        &[
            "backup",
            "restore",
            "s3://claw-backups/nothing/",
            "--into",
            "/nonexistent/x",
        ],
        &endpoint,
    );
    assert!(
        !none.status.success()
            && text(&none)
                .contains("s3://claw-backups/nothing/: no backup (clawops-*.tar.zst) there"),
        "{}",
        text(&none)
    );
    let unset = Command::new(env!("CARGO_BIN_EXE_clawops"))
        .args([
            "backup",
            "create",
            "--from",
            from,
            "--to",
            "s3://claw-backups/x/",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert!(
        text(&unset).contains("AWS_ACCESS_KEY_ID is not set"),
        "{}",
        text(&unset)
    );
    server.terminate(Duration::from_secs(5));
}
