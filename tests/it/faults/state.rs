//! Fault matrix row 4: the state directory full, then read-only, while the gateway writes to
//! it. The state dir is a small tmpfs (mounting needs root, as CI has; elsewhere the test says
//! it cannot run and passes without asserting anything).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::start;
use crate::support::fake_llm::{Answer, FakeLlm};
use crate::support::fake_telegram::FakeTelegram;
use crate::support::process::*;
use crate::support::{self};

use crate::nodes::TOKEN;
const CHAT: i64 = 4000;

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(name: &str, size: &str) -> Option<Self> {
        let dir = support::temp_dir(name);
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir))
    }

    fn remount(&self, how: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {how}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` to the last byte; the filler is removed to free it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    // What is left is less than a page: fill that too.
    while f.write_all(&[0]).is_ok() {}
    filler
}

/// Pads the log (with a line the reader skips) so that `slack` bytes are left in its last page:
/// on a full tmpfs the next record then fits only in part. A short write must not leave half a
/// line for the record after it to join.
fn leave_slack(log: &Path, slack: u64) {
    use std::io::Write;
    let len = std::fs::metadata(log).unwrap().len();
    let mut pad = (2 * 4096 - slack - len % 4096) % 4096;
    if pad < 12 {
        pad += 4096;
    }
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(pad as usize - 11));
    std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    assert_eq!(std::fs::metadata(log).unwrap().len() % 4096, 4096 - slack);
}

/// Every file under `dir` but `skip`, with its content.
fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p == skip {
                continue;
            }
            if p.is_dir() {
                walk(&p, skip, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, skip, &mut out);
    out
}

/// The files whose content differs, with how each ends before and after.
fn changed(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    a.iter()
        .filter(|(p, c)| b.get(*p) != Some(c))
        .map(|(p, c)| {
            // The ends say what changed; a log's whole text would bury it.
            let end = |b: &[u8]| {
                let t = String::from_utf8_lossy(b).into_owned();
                let cut = t.char_indices().rev().nth(80).map_or(0, |(i, _)| i);
                format!("{} bytes ending {:?}", b.len(), &t[cut..])
            };
            format!(
                "{}: {} → {}",
                p.display(),
                end(c),
                b.get(p).map_or("gone".into(), |n| end(n))
            )
        })
        .collect()
}

/// Sends `tag` (its model call runs a tool first, so the tool audit log is written too) and
/// waits for the reply that echoes it.
async fn ask(llm: &FakeLlm, tg: &FakeTelegram, tag: &str) {
    llm.script_when(
        tag,
        [Answer::Tools(vec![("nodes_list", serde_json::json!({}))])],
    );
    tg.dm(CHAT, "owner", &format!("question {tag}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tg.sent_to(CHAT).iter().any(|r| r.contains(tag)) {
        assert!(Instant::now() < deadline, "{tag} not answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/readyz` as (code, body), after the state dir check has had its chance.
async fn readyz(port: u16) -> (u16, String) {
    let r = tokio::task::spawn_blocking(move || get(port, "/readyz").unwrap())
        .await
        .unwrap();
    (r.code, r.body)
}

async fn wait_ready(port: u16) -> Duration {
    let started = Instant::now();
    loop {
        if readyz(port).await.0 == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tool calls the audit log still reads back (one per asked tag).
async fn audited(port: u16) -> usize {
    let r = tokio::task::spawn_blocking(move || {
        request(
            port,
            "GET",
            "/api/audit",
            &[&format!("Authorization: Bearer {TOKEN}")],
            "",
        )
        .unwrap()
    })
    .await
    .unwrap();
    let log: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    log["tools"].as_array().unwrap().len()
}

/// The remembered conversation of the chat, as saved.
fn history(state: &Path) -> String {
    let file = state.join(format!("history/telegram-{CHAT}.json"));
    let text = std::fs::read_to_string(&file)
        .or_else(|_| {
            // Whatever the chat's file is called: the one history file there is.
            let dir = state.join("history");
            let only = std::fs::read_dir(&dir).unwrap().flatten().next().unwrap();
            std::fs::read_to_string(only.path())
        })
        .unwrap();
    serde_json::from_str::<serde_json::Value>(&text).expect("history is whole JSON");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_state_dir_keeps_the_old_state_and_recovers() {
    let Some(fs) = Tmpfs::mount("faults-state", "1m") else {
        println!("fault state dir: skipped, mounting a tmpfs needs root");
        return;
    };
    let state = fs.0.join("state");
    let (llm, tg) = (FakeLlm::start().await, FakeTelegram::start().await);
    let yaml = support::example_with(
        "faults-state",
        &[
            support::model_at(&llm.base_url()),
            support::telegram_at(&tg.api_url()),
            (
                "    dmPolicy: pairing\n",
                "    dmPolicy: open\n    allowFrom: [\"*\"]\n".to_string(),
            ),
        ],
    );
    let port = free_port();
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || start(&y, &s, port))
        .await
        .unwrap();
    wait_ready(port).await;
    ask(&llm, &tg, "[t1]").await;
    assert_eq!(audited(port).await, 1);

    // Full: the answer still goes out; the old state stays byte for byte, nothing half-written
    // is left, /readyz says why.
    leave_slack(&state.join("tools/audit.jsonl"), 50);
    let filler = fill(&fs.0);
    let before = snapshot(&fs.0, &filler);
    ask(&llm, &tg, "[t2]").await;
    let (code, why) = readyz(port).await;
    let during = snapshot(&fs.0, &filler);
    assert_eq!(code, 503, "{why}");
    assert!(why.contains("No space left on device"), "{why}");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        during.keys().collect::<Vec<_>>(),
        "no file added or removed (no temporary copy left)"
    );
    assert_eq!(
        changed(&before, &during),
        Vec::<String>::new(),
        "the state before the disk filled is intact"
    );
    std::fs::remove_file(&filler).unwrap();
    let full_recovery = wait_ready(port).await;
    ask(&llm, &tg, "[t3]").await;
    let h = history(&state);
    assert!(
        h.contains("[t2]") && h.contains("[t3]"),
        "the turn the full disk could not save is saved with the next: {h}"
    );
    // [t2]'s record could not be written (only its first 50 bytes fitted, and were taken
    // back); the one after it reads back whole.
    let after_full = audited(port).await;
    assert_eq!(after_full, 2, "t1 and t3 in the audit log");

    // Read-only: the same.
    fs.remount("ro");
    let before = snapshot(&fs.0, &filler);
    ask(&llm, &tg, "[t4]").await;
    let (code, why) = readyz(port).await;
    assert_eq!(code, 503, "{why}");
    assert!(why.contains("Read-only file system"), "{why}");
    assert_eq!(
        changed(&before, &snapshot(&fs.0, &filler)),
        Vec::<String>::new(),
        "the state before the remount is intact"
    );
    fs.remount("rw");
    let ro_recovery = wait_ready(port).await;
    ask(&llm, &tg, "[t5]").await;
    assert!(history(&state).contains("[t4]"));

    gw.terminate(Duration::from_secs(15));
    let log = gw.stderr();
    for said in ["No space left on device", "Read-only file system"] {
        assert!(
            log.lines()
                .any(|l| l.contains("not saved") && l.contains(said)),
            "the log says what was not saved and why ({said}):\n{log}"
        );
    }
    // And a restart reads it all back: the conversation goes on from t5.
    let (y, s) = (yaml.clone(), state.clone());
    let mut gw = tokio::task::spawn_blocking(move || start(&y, &s, port))
        .await
        .unwrap();
    wait_ready(port).await;
    ask(&llm, &tg, "[t6]").await;
    let last = llm.seen().last().unwrap().body.to_string();
    assert!(
        last.contains("[t5]") && last.contains("[t2]"),
        "the history went to the model after the restart"
    );
    println!(
        "fault state dir (1 MiB tmpfs): full → answered, old state intact, /readyz 503 \"No space left on device\", ready {:.0} ms after space returned; read-only → the same, ready {:.0} ms after rw; audit records readable {after_full} of 3 (the one written while full is lost, none broken); history kept every turn",
        full_recovery.as_secs_f64() * 1000.0,
        ro_recovery.as_secs_f64() * 1000.0,
    );
    gw.terminate(Duration::from_secs(15));
}
