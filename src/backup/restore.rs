//! Restoring a backup: into a stopped gateway's state dir (built beside it and swapped in
//! whole), or staged in a running gateway's state dir and swapped in at its next start. Both
//! check the whole archive first and replace state only when forced.

use std::path::{Path, PathBuf};

use super::{
    BackupError, Manifest, PENDING, REPLACED, RESTORED, StateFile, TOKEN_FILE, io, read,
    state_files,
};

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
    // The first start on restored state adopts what came with it (see `RESTORED`).
    let marker = dir.join(RESTORED);
    std::fs::write(&marker, b"").map_err(io(&marker))
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

/// A path `make` names by the time, to the second, or with `-2`, `-3`… after it when one of
/// that second is there (two restores in one second).
fn unused(make: impl Fn(&str) -> PathBuf) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut path = make(&stamp);
    let mut n = 2;
    while path.exists() {
        path = make(&format!("{stamp}-{n}"));
        n += 1;
    }
    path
}

/// At start: a staged restore replaces the state (what was there is kept in
/// `<dir>/.replaced-<time>`). Returns where the old state went, when a restore was applied.
pub fn apply_pending(dir: &Path) -> Result<Option<PathBuf>, BackupError> {
    let pending = dir.join(PENDING);
    if !pending.is_dir() {
        return Ok(None);
    }
    let kept = unused(|stamp| dir.join(format!("{REPLACED}{stamp}")));
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
    let beside = |what: &str| {
        let base = dir
            .file_name()
            .map_or("state".into(), |n| n.to_string_lossy().into_owned());
        unused(|stamp| dir.with_file_name(format!("{base}.{what}-{stamp}")))
    };
    let staging = beside("restoring");
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    if let Err(e) = write_files(&staging, &files) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let kept = if dir.exists() {
        let kept = beside("replaced");
        if let Err(e) = std::fs::rename(dir, &kept) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io(dir)(e));
        }
        Some(kept)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&staging, dir) {
        // Put back what was there: nothing is left half-way.
        if let Some(k) = &kept {
            let _ = std::fs::rename(k, dir);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(io(dir)(e));
    }
    Ok((manifest, kept.filter(|_| existing > 0)))
}
