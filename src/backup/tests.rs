//! Backups: round trips, what stays out, restores forced and staged, refused archives.

use super::*;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "clawops-backup-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn state() -> PathBuf {
    let d = temp("state");
    std::fs::create_dir_all(d.join("history")).unwrap();
    std::fs::create_dir_all(d.join("devices")).unwrap();
    std::fs::create_dir_all(d.join("tools")).unwrap();
    std::fs::write(
        d.join("history/telegram-telegram-42.json"),
        r#"[{"role":"user","content":"hi"}]"#,
    )
    .unwrap();
    std::fs::write(
        d.join(DEVICES_FILE),
        // As the gateway's pairing store writes it.
        r#"{"ab":{"deviceId":"ab","publicKey":"k","platform":"linux","clientId":"node-host","clientMode":"node","role":"node","roles":["node"],"scopes":[],"tokens":{"node":{"token":"s3cr3t-device-token","role":"node","scopes":[],"createdAtMs":1}},"createdAtMs":1,"approvedAtMs":1},
            "cd":{"deviceId":"cd","publicKey":"k2","platform":"linux","clientId":"node-host","clientMode":"node","role":"node","roles":["node"],"scopes":[],"tokens":{"node":{"token":"s3cr3t-revoked-token","role":"node","scopes":[],"createdAtMs":1,"revokedAtMs":2}},"createdAtMs":1,"approvedAtMs":1}}"#,
    )
    .unwrap();
    // A log whose last line is being written.
    std::fs::write(d.join("tools/audit.jsonl"), "{\"a\":1}\n{\"a\":").unwrap();
    std::fs::write(d.join(TOKEN_FILE), "s3cr3t-gateway-token").unwrap();
    std::fs::write(d.join("history/x.json.tmp.123"), "half").unwrap();
    d
}

#[test]
fn a_backup_round_trips_without_secrets_half_lines_or_leftovers() {
    let src = state();
    let made = create(&src, false).unwrap();
    let text = String::from_utf8_lossy(&zstd::decode_all(&made.archive[..]).unwrap()).into_owned();
    assert!(!text.contains("s3cr3t"), "no secret in the archive");
    let paths: Vec<&str> = made
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "devices/paired.json",
            "history/telegram-telegram-42.json",
            "tools/audit.jsonl"
        ]
    );
    let dst = temp("restored").join("state");
    restore(&made.archive, "b.tar.zst", &dst, false).unwrap();
    assert_eq!(
        std::fs::read_to_string(dst.join("history/telegram-telegram-42.json")).unwrap(),
        r#"[{"role":"user","content":"hi"}]"#
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("tools/audit.jsonl")).unwrap(),
        "{\"a\":1}\n"
    );
    // The pairing store reads the devices back, without their tokens.
    let paired: std::collections::BTreeMap<String, crate::gateway::nodes::store::PairedDevice> =
        serde_json::from_slice(&std::fs::read(dst.join(DEVICES_FILE)).unwrap()).unwrap();
    assert_eq!(paired["ab"].public_key, "k");
    assert!(
        paired["ab"].tokens.is_empty(),
        "a live token goes: a new one is made"
    );
    let revoked = &paired["cd"].tokens["node"];
    assert!(
        revoked.revoked_at_ms.is_some() && revoked.token.is_empty(),
        "a revoked one stays revoked, its value blanked: {revoked:?}"
    );
    // With secrets asked for, they come along.
    let with = create(&src, true).unwrap();
    assert!(with.manifest.files.iter().any(|f| f.path == TOKEN_FILE));
}

#[test]
fn state_is_replaced_only_with_force_and_the_old_is_kept() {
    let made = create(&state(), false).unwrap();
    let dst = temp("busy").join("state");
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(dst.join("alerts.json"), "{}").unwrap();
    let err = restore(&made.archive, "b", &dst, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already holds gateway state (1 files): pass --force"),
        "{err}"
    );
    assert!(dst.join("alerts.json").exists(), "untouched");
    let (_, kept) = restore(&made.archive, "b", &dst, true).unwrap();
    assert!(
        kept.unwrap().join("alerts.json").exists(),
        "the old state is kept beside it"
    );
    assert!(!dst.join("alerts.json").exists() && dst.join("devices/paired.json").exists());
}

#[test]
fn only_our_oldest_backups_are_beyond_keep() {
    let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let names: Vec<String> = vec![
        timed_name(t("2026-11-29T03:00:00Z")),
        "notes.txt".into(),
        timed_name(t("2026-11-27T03:00:00Z")),
        timed_name(t("2026-11-28T03:00:00.5Z")),
        "sub/clawops-1.tar.zst".into(),
    ];
    assert_eq!(names[0], "clawops-20261129T030000.000Z.tar.zst");
    assert_eq!(
        beyond(&names, 2),
        vec!["clawops-20261127T030000.000Z.tar.zst".to_string()]
    );
    assert!(beyond(&names, 5).is_empty());
    assert_eq!(
        newest(&names).as_deref(),
        Some("clawops-20261129T030000.000Z.tar.zst")
    );
    assert_eq!(newest(&["notes.txt".to_string()]), None);
}

#[test]
fn a_staged_restore_is_swapped_in_at_start_and_the_old_state_kept() {
    let made = create(&state(), false).unwrap();
    let dst = temp("live");
    std::fs::write(dst.join("alerts.json"), "{}").unwrap();
    let err = stage(&made.archive, "b", &dst, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pass --force"), "{err}");
    stage(&made.archive, "b", &dst, true).unwrap();
    assert!(
        dst.join("alerts.json").exists(),
        "nothing changes until the restart"
    );
    assert_eq!(
        state_count(&dst).unwrap(),
        1,
        "the staged files are not state yet"
    );
    let kept = apply_pending(&dst).unwrap().expect("applied");
    assert!(kept.join("alerts.json").exists());
    assert!(dst.join("history/telegram-telegram-42.json").exists());
    assert!(!dst.join(PENDING).exists() && !dst.join("alerts.json").exists());
    assert_eq!(apply_pending(&dst).unwrap(), None, "once");
    // What was kept is not state, nor in the next backup.
    let again = create(&dst, false).unwrap();
    assert!(
        again
            .manifest
            .files
            .iter()
            .all(|f| !f.path.starts_with(".replaced"))
    );
}

#[test]
fn foreign_damaged_and_newer_archives_are_refused_naming_what() {
    let made = create(&state(), false).unwrap();
    let err = read(b"not zstd at all", "x.tar.zst")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x.tar.zst: not a clawops backup"), "{err}");
    // Cut short: the compressed stream ends early.
    let cut = &made.archive[..made.archive.len() / 2];
    let err = read(cut, "cut.tar.zst").unwrap_err().to_string();
    assert!(err.contains("cut.tar.zst"), "{err}");
    // A plain tar of something else.
    let mut other = tar::Builder::new(zstd::Encoder::new(Vec::new(), 1).unwrap());
    append(&mut other, "etc/passwd", b"root:x:0:0").unwrap();
    let other = other.into_inner().unwrap().finish().unwrap();
    let err = read(&other, "o.tar.zst").unwrap_err().to_string();
    assert!(err.contains("its first entry is etc/passwd"), "{err}");
    // A newer format.
    let mut newer = tar::Builder::new(zstd::Encoder::new(Vec::new(), 1).unwrap());
    append(
        &mut newer,
        MANIFEST,
        br#"{"format":"clawops-backup","version":7,"clawops":"9.9.9"}"#,
    )
    .unwrap();
    let newer = newer.into_inner().unwrap().finish().unwrap();
    let err = read(&newer, "n.tar.zst").unwrap_err().to_string();
    assert!(
        err.contains("format version 7 (clawops 9.9.9)") && err.contains("upgrade clawops"),
        "{err}"
    );
    // A path that leaves the state dir.
    let mut evil = tar::Builder::new(zstd::Encoder::new(Vec::new(), 1).unwrap());
    append(&mut evil, MANIFEST, br#"{"format":"clawops-backup","version":1,"clawops":"0.1.0","created":"2026-01-01T00:00:00Z","secrets":false,"files":[]}"#).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_cksum();
    let mut evil = evil;
    // tar::Builder refuses `..` in names; write the raw name the way a hostile archive would.
    h.as_gnu_mut().unwrap().name[..16].copy_from_slice(b"state/../escape\0");
    h.set_cksum();
    evil.append(&h, &b"x"[..]).unwrap();
    let evil = evil.into_inner().unwrap().finish().unwrap();
    let err = read(&evil, "e.tar.zst").unwrap_err().to_string();
    assert!(err.contains("would leave the state dir"), "{err}");
}

/// Restores in one second each keep what they replaced, under names of their own.
#[test]
fn restores_in_the_same_second_each_keep_the_state_they_replace() {
    let made = create(&state(), false).unwrap();
    let dst = temp("same-second").join("state");
    restore(&made.archive, "b", &dst, false).unwrap();
    let mut kept = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let (_, k) = restore(&made.archive, "b", &dst, true).unwrap();
        assert!(kept.insert(k.expect("the state there is kept")));
    }
    assert_eq!(kept.len(), 3);
    let leftovers = std::fs::read_dir(dst.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".restoring-"))
        .count();
    assert_eq!(leftovers, 0);
}
