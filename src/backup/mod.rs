//! Backups of a gateway's state dir: a zstd-compressed tar whose first entry is a manifest (the
//! clawops version, when, and each file with its size and SHA-256). Consistent without stopping
//! the gateway: state files are replaced whole by rename, so each is read as one version, and
//! JSON-lines logs are cut after their last complete line. Secrets (the gateway token file, the
//! nodes' device tokens) stay out unless asked for. A restore checks everything before it
//! writes, builds the new dir beside the old one and swaps it in whole.

pub mod s3;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const MANIFEST: &str = "clawops-backup.json";
pub const FORMAT: &str = "clawops-backup";
pub const VERSION: u32 = 1;
/// The standalone gateway's token file: a secret.
const TOKEN_FILE: &str = "gateway-token";
/// Paired devices, with their tokens.
const DEVICES_FILE: &str = "devices/paired.json";
/// A restore a running gateway took: applied at its next start, before anything reads state.
pub const PENDING: &str = ".restore-pending";
/// Where state replaced by a restore is kept.
const REPLACED: &str = ".replaced-";
/// A restore refuses archives that would unpack to more than this.
const MAX_UNPACKED: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid JSON ({message}): fix or remove it before backing up")]
    Corrupt { path: String, message: String },
    #[error("{archive}: not a clawops backup ({why})")]
    Foreign { archive: String, why: String },
    #[error(
        "{archive}: a backup of format version {version} (clawops {clawops}); this clawops reads version {VERSION}: upgrade clawops to restore it"
    )]
    Newer {
        archive: String,
        version: u32,
        clawops: String,
    },
    #[error("{archive}: damaged: {why}; nothing was restored")]
    Damaged { archive: String, why: String },
    #[error(
        "{dir} already holds gateway state ({files} files): pass --force to replace it (it is kept as {dir}.replaced-<time>)"
    )]
    NotEmpty { dir: String, files: usize },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub clawops: String,
    pub created: chrono::DateTime<chrono::Utc>,
    /// Whether secrets are inside.
    pub secrets: bool,
    pub files: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What a backup holds, for the CLI's summary.
#[derive(Debug)]
pub struct Made {
    pub archive: Vec<u8>,
    pub manifest: Manifest,
}

/// The state files under `dir`, relative, sorted; temporary copies left by a crash are skipped.
fn state_files(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<PathBuf>) -> Result<(), BackupError> {
        for e in std::fs::read_dir(d).map_err(io(d))? {
            let e = e.map_err(io(d))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp.")
                || name == ".probe"
                || name == PENDING
                || name.starts_with(REPLACED)
            {
                continue;
            }
            let kind = e.file_type().map_err(io(&p))?;
            if kind.is_dir() {
                walk(root, &p, out)?;
            } else if kind.is_file() {
                out.push(p.strip_prefix(root).expect("under the root").to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// A file's bytes as they go into the backup: whole JSON (checked), a log up to its last
/// complete line, device tokens taken out unless `secrets`.
fn snapshot(dir: &Path, rel: &Path, secrets: bool) -> Result<Option<Vec<u8>>, BackupError> {
    let name = rel.to_string_lossy();
    if name == TOKEN_FILE && !secrets {
        return Ok(None);
    }
    let path = dir.join(rel);
    let mut bytes = std::fs::read(&path).map_err(io(&path))?;
    if name.ends_with(".jsonl") {
        let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
    } else if name.ends_with(".json") {
        let mut v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| BackupError::Corrupt {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        if name == DEVICES_FILE && !secrets {
            strip_tokens(&mut v);
            bytes = serde_json::to_vec_pretty(&v).expect("JSON serializes");
        }
    }
    Ok(Some(bytes))
}

/// Removes every `token` and `tokens` field (the devices' credentials).
fn strip_tokens(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("token");
            m.remove("tokens");
            m.values_mut().for_each(strip_tokens);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_tokens),
        _ => {}
    }
}

fn sha256(bytes: &[u8]) -> String {
    s3::sha256_hex(bytes)
}

fn append(
    tar: &mut tar::Builder<impl std::io::Write>,
    path: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, path, bytes)
}

/// Backs up `dir`.
pub fn create(dir: &Path, secrets: bool) -> Result<Made, BackupError> {
    let mut files = Vec::new();
    for rel in state_files(dir)? {
        if let Some(bytes) = snapshot(dir, &rel, secrets)? {
            files.push((rel.to_string_lossy().into_owned(), bytes));
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        clawops: env!("CARGO_PKG_VERSION").into(),
        created: chrono::Utc::now(),
        secrets,
        files: files
            .iter()
            .map(|(p, b)| Entry {
                path: p.clone(),
                bytes: b.len() as u64,
                sha256: sha256(b),
            })
            .collect(),
    };
    let out = (|| -> std::io::Result<Vec<u8>> {
        let enc = zstd::Encoder::new(Vec::new(), 3)?;
        let mut tar = tar::Builder::new(enc);
        append(
            &mut tar,
            MANIFEST,
            &serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
        )?;
        for (p, b) in &files {
            append(&mut tar, &format!("state/{p}"), b)?;
        }
        tar.into_inner()?.finish()
    })()
    .map_err(io(dir))?;
    Ok(Made {
        archive: out,
        manifest,
    })
}

/// The name a backup gets in a directory or under an S3 prefix: sorting the names sorts them
/// by time.
pub fn timed_name(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("clawops-{}.tar.zst", at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Of `names`, the backups (by [`timed_name`]) beyond the newest `keep`: the ones to delete.
pub fn beyond(names: &[String], keep: usize) -> Vec<String> {
    let mut ours: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("clawops-") && n.ends_with(".tar.zst") && !n.contains('/'))
        .collect();
    ours.sort();
    let old = ours.len().saturating_sub(keep);
    ours.into_iter().take(old).cloned().collect()
}

/// A state file: its path under the state dir and its bytes.
pub type StateFile = (String, Vec<u8>);

/// Reads and checks a whole archive: its manifest, then every file against it. Nothing is
/// written; a path that would leave the state dir is refused.
pub fn read(archive: &[u8], name: &str) -> Result<(Manifest, Vec<StateFile>), BackupError> {
    let foreign = |why: String| BackupError::Foreign {
        archive: name.into(),
        why,
    };
    let damaged = |why: String| BackupError::Damaged {
        archive: name.into(),
        why,
    };
    let dec = zstd::Decoder::new(archive).map_err(|e| foreign(e.to_string()))?;
    let mut tar = tar::Archive::new(dec.take(MAX_UNPACKED + 1));
    let mut entries = tar
        .entries()
        .map_err(|e| foreign(format!("not a zstd-compressed tar: {e}")))?;
    let first = entries
        .next()
        .ok_or_else(|| foreign("it is empty".into()))?
        .map_err(|e| foreign(format!("not a zstd-compressed tar: {e}")))?;
    let first_path = first
        .path()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if first_path != MANIFEST {
        return Err(foreign(format!(
            "its first entry is {first_path}, not {MANIFEST}"
        )));
    }
    let mut text = Vec::new();
    first
        .take(1 << 24)
        .read_to_end(&mut text)
        .map_err(|e| damaged(e.to_string()))?;
    let head: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| foreign(format!("manifest: {e}")))?;
    if head["format"] != FORMAT {
        return Err(foreign(format!("manifest format {}", head["format"])));
    }
    let version = head["version"].as_u64().unwrap_or(0) as u32;
    if version > VERSION {
        return Err(BackupError::Newer {
            archive: name.into(),
            version,
            clawops: head["clawops"].as_str().unwrap_or("?").into(),
        });
    }
    let manifest: Manifest =
        serde_json::from_value(head).map_err(|e| foreign(format!("manifest: {e}")))?;
    let mut files = Vec::new();
    for e in entries {
        let mut e = e.map_err(|e| damaged(e.to_string()))?;
        let path = e
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let rel = path
            .strip_prefix("state/")
            .ok_or_else(|| damaged(format!("{path} is not under state/")))?
            .to_string();
        if Path::new(&rel)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(damaged(format!("{path} would leave the state dir")));
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes)
            .map_err(|e| damaged(format!("{path}: {e}")))?;
        files.push((rel, bytes));
    }
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let found: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    if listed != found {
        let missing: Vec<_> = listed.difference(&found).collect();
        return Err(damaged(format!(
            "{} file(s) of the manifest are missing (cut short?): {missing:?}",
            missing.len()
        )));
    }
    for (p, b) in &files {
        let e = manifest
            .files
            .iter()
            .find(|f| &f.path == p)
            .expect("listed");
        if e.bytes != b.len() as u64 || e.sha256 != sha256(b) {
            return Err(damaged(format!("{p} does not match its checksum")));
        }
    }
    Ok((manifest, files))
}

/// Writes `files` under `dir` (which must not exist), 0600, synced.
fn write_files(dir: &Path, files: &[StateFile]) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    for (rel, bytes) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io(&path))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        std::io::Write::write_all(&mut f, bytes).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
    }
    Ok(())
}

/// How many state files `dir` holds (0 when it does not exist).
pub fn state_count(dir: &Path) -> Result<usize, BackupError> {
    if dir.exists() {
        Ok(state_files(dir)?.len())
    } else {
        Ok(0)
    }
}

/// The archive read and checked, and how many state files `dir` holds (refused when some are
/// there and not `force`): what both kinds of restore start with.
fn checked(
    archive: &[u8],
    name: &str,
    dir: &Path,
    force: bool,
) -> Result<(Manifest, Vec<StateFile>, usize), BackupError> {
    let (manifest, files) = read(archive, name)?;
    let existing = state_count(dir)?;
    if existing > 0 && !force {
        return Err(BackupError::NotEmpty {
            dir: dir.display().to_string(),
            files: existing,
        });
    }
    Ok((manifest, files, existing))
}

/// Restores into the state dir of a running gateway: checks `archive`, refuses to replace
/// state without `force`, and stages it in `<dir>/.restore-pending`, which the gateway's next
/// start swaps in (see [`apply_pending`]); the gateway restarts to get there.
pub fn stage(archive: &[u8], name: &str, dir: &Path, force: bool) -> Result<Manifest, BackupError> {
    let (manifest, files, _) = checked(archive, name, dir, force)?;
    let pending = dir.join(PENDING);
    let _ = std::fs::remove_dir_all(&pending);
    let staging = dir.join(format!("{PENDING}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = write_files(&staging, &files) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    std::fs::rename(&staging, &pending).map_err(io(&pending))?;
    Ok(manifest)
}

/// At start: a staged restore replaces the state (what was there is kept in
/// `<dir>/.replaced-<time>`). Returns where the old state went, when a restore was applied.
pub fn apply_pending(dir: &Path) -> Result<Option<PathBuf>, BackupError> {
    let pending = dir.join(PENDING);
    if !pending.is_dir() {
        return Ok(None);
    }
    let kept = dir.join(format!(
        "{REPLACED}{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::create_dir_all(&kept).map_err(io(&kept))?;
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // A backup without secrets leaves the gateway's own token file where it is.
        let keep_token = name == TOKEN_FILE && !pending.join(TOKEN_FILE).exists();
        if name == PENDING || name.starts_with(REPLACED) || keep_token {
            continue;
        }
        std::fs::rename(e.path(), kept.join(&name)).map_err(io(&e.path()))?;
    }
    for e in std::fs::read_dir(&pending).map_err(io(&pending))? {
        let e = e.map_err(io(&pending))?;
        std::fs::rename(e.path(), dir.join(e.file_name())).map_err(io(&e.path()))?;
    }
    std::fs::remove_dir(&pending).map_err(io(&pending))?;
    Ok(Some(kept))
}

/// Restores `archive` into `dir`. A dir that holds state is replaced only with `force` (the
/// old one is kept beside it); the new state is written beside it first and swapped in whole.
pub fn restore(
    archive: &[u8],
    name: &str,
    dir: &Path,
    force: bool,
) -> Result<(Manifest, Option<PathBuf>), BackupError> {
    let (manifest, files, existing) = checked(archive, name, dir, force)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let staging = dir.with_file_name(format!(
        "{}.restoring-{stamp}",
        dir.file_name()
            .map_or("state".into(), |n| n.to_string_lossy())
    ));
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    if let Err(e) = write_files(&staging, &files) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let kept = if dir.exists() {
        let kept = dir.with_file_name(format!(
            "{}.replaced-{stamp}",
            dir.file_name()
                .map_or("state".into(), |n| n.to_string_lossy())
        ));
        std::fs::rename(dir, &kept).map_err(io(dir))?;
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&staging, dir).map_err(io(dir))?;
    Ok((manifest, kept.filter(|_| existing > 0)))
}

#[cfg(test)]
mod tests {
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
            r#"{"ab":{"publicKey":"k","tokens":{"node":{"token":"s3cr3t-device-token"}}}}"#,
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
        let text =
            String::from_utf8_lossy(&zstd::decode_all(&made.archive[..]).unwrap()).into_owned();
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
}
