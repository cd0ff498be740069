//! A command run on the node: allowlist and approvals, the gateway tightening but never
//! loosening, what is checked is what runs, output caps and the environment.

use super::*;
use crate::exec::{Ask, Policy, Security};
use crate::node::approvals::ApprovalsFile;

fn state(file: ApprovalsFile) -> StateDir {
    let s = StateDir::open(std::env::temp_dir().join(format!(
        "clawops-node-run-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    )))
    .unwrap();
    s.write(approvals::FILE, &file).unwrap();
    s
}

fn sh(line: &str) -> RunParams {
    RunParams {
        command: vec!["/bin/sh".into(), "-lc".into(), line.into()],
        raw_command: Some(line.into()),
        ..Default::default()
    }
}

fn allowing(paths: &[&str]) -> ApprovalsFile {
    let mut f = ApprovalsFile::default();
    for p in paths {
        f.allow(AGENT, p);
    }
    f
}

fn real(name: &str) -> String {
    MachineHost::from_env()
        .resolve(name, None)
        .unwrap_or_else(|| panic!("{name} on this machine"))
        .to_string_lossy()
        .into_owned()
}

use crate::exec::Host;

#[tokio::test]
async fn an_allowlisted_command_runs_and_a_miss_asks() {
    let s = state(allowing(&[&real("echo")]));
    let out = system_run(&s, sh("echo hello")).await.unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.success),
        (Some(0), "hello\n", true)
    );
    let err = system_run(&s, sh("id -u")).await.unwrap_err();
    assert_eq!(err.message, "SYSTEM_RUN_DENIED: approval required");
    assert!(
        err.details.unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("not on the allowlist")
    );
    let f: ApprovalsFile = s.read(approvals::FILE).unwrap().unwrap();
    assert!(
        f.agents[AGENT].allowlist[0].last_used_at.is_some(),
        "the use is recorded"
    );
}

#[tokio::test]
async fn allow_once_runs_and_allow_always_remembers_the_real_path() {
    let s = state(allowing(&[]));
    let mut p = sh("id -u");
    p.approval_decision = Some("allow-once".into());
    assert!(system_run(&s, p).await.unwrap().success);
    assert!(system_run(&s, sh("id -u")).await.is_err(), "once is once");
    let mut p = sh("id -u");
    p.approval_decision = Some("allow-always".into());
    let out = system_run(&s, p).await.unwrap();
    assert!(out.success);
    assert_eq!(
        out.allowlisted,
        [real("id")],
        "the gateway is told what was added"
    );
    assert!(system_run(&s, sh("id -u")).await.unwrap().success);
    let f: ApprovalsFile = s.read(approvals::FILE).unwrap().unwrap();
    assert_eq!(f.agents[AGENT].allowlist[0].pattern, real("id"));
}

#[tokio::test]
async fn the_gateway_can_tighten_but_not_loosen() {
    let mut f = allowing(&[&real("echo")]);
    f.defaults.as_mut().unwrap().ask = Some(Ask::Off);
    let s = state(f);
    let mut loosen = sh("id -u");
    loosen.policy = Some(Policy {
        security: Security::Full,
        ask: Ask::Off,
        ask_fallback: Security::Full,
    });
    let err = system_run(&s, loosen).await.unwrap_err();
    assert_eq!(err.message, "SYSTEM_RUN_DENIED: allowlist miss");
    let mut tighten = sh("echo hi");
    tighten.policy = Some(Policy {
        security: Security::Deny,
        ask: Ask::Off,
        ask_fallback: Security::Deny,
    });
    let err = system_run(&s, tighten).await.unwrap_err();
    assert_eq!(err.message, "SYSTEM_RUN_DISABLED: security=deny");
}

#[tokio::test]
async fn the_gateways_patterns_answer_a_question_but_never_loosen_a_denial() {
    let gateway = vec![real("id")];
    // The node would ask about `id`: the owner's pattern at the gateway answers it.
    let s = state(allowing(&[&real("echo")]));
    let mut p = sh("echo a && id -u");
    p.allowlist = vec![real("uname"), real("id")];
    let out = system_run(&s, p).await.unwrap();
    assert!(out.success);
    assert_eq!(
        out.standing,
        [real("id")],
        "the gateway's pattern that answered"
    );
    let mut p = sh("echo only");
    p.allowlist = gateway.clone();
    let out = system_run(&s, p).await.unwrap();
    assert!(out.standing.is_empty(), "the node's own list sufficed");
    let mut p = sh("id -u && uname");
    p.allowlist = gateway.clone();
    let err = system_run(&s, p).await.unwrap_err();
    assert_eq!(
        err.message, "SYSTEM_RUN_DENIED: approval required",
        "every command of the chain must match"
    );
    let f: ApprovalsFile = s.read(approvals::FILE).unwrap().unwrap();
    assert_eq!(
        f.agents[AGENT].allowlist.len(),
        1,
        "nothing is added on the node"
    );
    // The node's owner never asks (ask: off): a miss is denied, whatever the gateway says.
    let mut f = allowing(&[]);
    f.defaults.as_mut().unwrap().ask = Some(Ask::Off);
    let s = state(f);
    let mut p = sh("id -u");
    p.allowlist = gateway.clone();
    p.policy = Some(Policy {
        security: Security::Allowlist,
        ask: Ask::Off,
        ask_fallback: Security::Deny,
    });
    let err = system_run(&s, p).await.unwrap_err();
    assert_eq!(err.message, "SYSTEM_RUN_DENIED: allowlist miss");
    // Ask always means every time: a standing approval does not count.
    let s = state(allowing(&[]));
    let mut p = sh("id -u");
    p.allowlist = gateway;
    p.policy = Some(Policy {
        security: Security::Allowlist,
        ask: Ask::Always,
        ask_fallback: Security::Deny,
    });
    let err = system_run(&s, p).await.unwrap_err();
    assert_eq!(err.message, "SYSTEM_RUN_DENIED: approval required");
}

#[test]
fn a_login_shell_runs_as_a_plain_one_so_path_is_what_was_checked() {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        runnable(&v(&["/bin/sh", "-lc", "docker ps"])),
        v(&["/bin/sh", "-c", "docker ps"])
    );
    assert_eq!(runnable(&v(&["bash", "-lc", "x"])), v(&["bash", "-c", "x"]));
    assert_eq!(
        runnable(&v(&["/usr/bin/env", "-lc", "x"])),
        v(&["/usr/bin/env", "-lc", "x"])
    );
    assert_eq!(runnable(&v(&["uptime"])), v(&["uptime"]));
}

#[tokio::test]
async fn what_runs_is_what_is_checked_not_the_raw_command_shown() {
    let s = state(allowing(&[&real("echo")]));
    let mut p = sh("id -u");
    p.raw_command = Some("echo harmless".into());
    assert!(system_run(&s, p).await.is_err());
}

#[tokio::test]
async fn output_is_capped_and_a_slow_command_is_killed() {
    let mut f = allowing(&[]);
    f.defaults.as_mut().unwrap().security = Some(Security::Full);
    f.defaults.as_mut().unwrap().ask = Some(Ask::Off);
    let s = state(f);
    let out = system_run(&s, sh("yes | head -c 300000")).await.unwrap();
    assert!(out.stdout.ends_with(TRUNCATED));
    assert_eq!(out.stdout.len(), OUTPUT_CAP + TRUNCATED.len());
    let mut slow = sh("sleep 5");
    slow.timeout_ms = Some(200);
    let started = std::time::Instant::now();
    let out = system_run(&s, slow).await.unwrap();
    assert!(out.timed_out && !out.success && out.exit_code.is_none());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn callers_cannot_preload_libraries_or_replace_path() {
    let o = BTreeMap::from([
        ("LD_PRELOAD".to_string(), "/tmp/x.so".to_string()),
        ("PYTHONPATH".to_string(), "/tmp".to_string()),
        ("PATH".to_string(), "/tmp/evil".to_string()),
        ("GREETING".to_string(), "hi".to_string()),
    ]);
    let env = env_for(Some(&o)).unwrap();
    assert!(!env.contains_key("LD_PRELOAD") && !env.contains_key("PYTHONPATH"));
    assert_ne!(env.get("PATH").map(String::as_str), Some("/tmp/evil"));
    assert_eq!(env["GREETING"], "hi");
    assert!(env_for(None).is_none());
}
