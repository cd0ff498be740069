//! Backups of a gateway's state dir: a zstd-compressed tar whose first entry is a manifest (the
//! clawops version, when, and each file with its size and SHA-256). Consistent without stopping
//! the gateway: state files are replaced whole by rename, so each is read as one version, and
//! JSON-lines logs are cut after their last complete line. Secrets (the gateway token file, the
//! nodes' device tokens) stay out unless asked for. A restore checks everything before it
//! writes, builds the new dir beside the old one and swaps it in whole.

mod restore;
pub mod s3;

pub use restore::{apply_pending, restore, stage, state_count};

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
/// Left in a state dir by a restore, until the gateway's first start on it has adopted what
/// came with it (the nodes of [`NODE_PAIRINGS_FILE`]). Never backed up.
pub const RESTORED: &str = ".restored";
/// In a backup taken from a gateway in a cluster: its Agent's NodePairings, the truth about its
/// nodes there, which live in the cluster and not in the state dir.
pub const NODE_PAIRINGS_FILE: &str = "cluster/nodepairings.json";
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
                || name == RESTORED
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

/// Takes the devices' credentials out of `devices/paired.json` (device id → device, each with
/// `tokens` by role). A live token goes, so the device gets a new one when it next proves its
/// key; a revoked one stays on record with its value blanked, so the device stays revoked.
fn strip_tokens(v: &mut serde_json::Value) {
    let devices = v.as_object_mut().into_iter().flat_map(|m| m.values_mut());
    for device in devices.filter_map(serde_json::Value::as_object_mut) {
        device.remove("token");
        if let Some(tokens) = device.get_mut("tokens").and_then(|t| t.as_object_mut()) {
            tokens.retain(|_, t| t.get("revokedAtMs").is_some_and(|r| !r.is_null()));
            for t in tokens
                .values_mut()
                .filter_map(serde_json::Value::as_object_mut)
            {
                t.insert("token".into(), serde_json::Value::String(String::new()));
            }
        }
    }
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
    create_with(dir, secrets, Vec::new())
}

/// [`create`], with `extra` files that are not in the state dir (a gateway in a cluster adds
/// [`NODE_PAIRINGS_FILE`]); one of them replaces a state file of the same path.
pub fn create_with(dir: &Path, secrets: bool, extra: Vec<StateFile>) -> Result<Made, BackupError> {
    let mut files = Vec::new();
    for rel in state_files(dir)? {
        let rel = rel.to_string_lossy().into_owned();
        if extra.iter().any(|(p, _)| *p == rel) {
            continue;
        }
        if let Some(bytes) = snapshot(dir, Path::new(&rel), secrets)? {
            files.push((rel, bytes));
        }
    }
    files.extend(extra);
    files.sort();
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
                sha256: crate::util::hex::sha256_hex(b),
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

/// Of `names`, the backups (by [`timed_name`]), oldest first.
fn ours(names: &[String]) -> Vec<&String> {
    let mut ours: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("clawops-") && n.ends_with(".tar.zst") && !n.contains('/'))
        .collect();
    ours.sort();
    ours
}

/// Of `names`, the backups (by [`timed_name`]) beyond the newest `keep`: the ones to delete.
pub fn beyond(names: &[String], keep: usize) -> Vec<String> {
    let ours = ours(names);
    let old = ours.len().saturating_sub(keep);
    ours.into_iter().take(old).cloned().collect()
}

/// Of `names`, the newest backup (by [`timed_name`]).
pub fn newest(names: &[String]) -> Option<String> {
    ours(names).last().map(|n| n.to_string())
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
        if e.bytes != b.len() as u64 || e.sha256 != crate::util::hex::sha256_hex(b) {
            return Err(damaged(format!("{p} does not match its checksum")));
        }
    }
    Ok((manifest, files))
}

#[cfg(test)]
mod tests;
