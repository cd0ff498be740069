//! A state directory (the gateway's, the node's): small JSON files written atomically
//! (temporary file, fsync, rename) with mode 0600, so a crash never leaves a half-written file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid JSON ({source}); fix or remove it")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
}

#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl StateDir {
    /// Opens (creating) the directory and proves it writable.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StateError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io(&root))?;
        let me = Self { root };
        me.check_writable()?;
        Ok(me)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes and removes a probe file.
    pub fn check_writable(&self) -> Result<(), StateError> {
        let probe = self.root.join(".probe");
        let written = fs::write(&probe, b"ok").map_err(io(&probe));
        // Also when the write failed: on a full disk the file is made before its byte fails.
        let removed = fs::remove_file(&probe);
        written?;
        removed.map_err(io(&probe))
    }

    pub fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StateError> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StateError::Corrupt {
                        path: path.display().to_string(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let path = self.root.join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let body = serde_json::to_vec_pretty(value).expect("state serializes");
        let mut f: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))
            .and_then(|_| fs::rename(&tmp, &path).map_err(io(&path)))
            .inspect_err(|_| {
                // The file before stays as it was; the half-written copy must not fill the
                // disk further or be mistaken for state.
                let _ = fs::remove_file(&tmp);
            })
    }

    /// A secret file (mode 0600) created once: returns its content, creating it with `make`.
    pub fn secret_file(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, StateError> {
        let path = self.root.join(name);
        match fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        let value = make();
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(value.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&path))?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "clawops-state-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_copy() {
        let dir = StateDir::open(temp()).unwrap();
        // A directory where the file should go: the rename fails after the copy is written.
        fs::create_dir_all(dir.path().join("a.json")).unwrap();
        let err = dir.write("a.json", &vec![1]).unwrap_err().to_string();
        assert!(err.contains("a.json"), "{err}");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn writes_atomically_with_private_mode_and_reads_back() {
        let dir = StateDir::open(temp()).unwrap();
        assert_eq!(dir.read::<Vec<u32>>("a.json").unwrap(), None);
        dir.write("a.json", &vec![1, 2, 3]).unwrap();
        assert_eq!(dir.read::<Vec<u32>>("a.json").unwrap(), Some(vec![1, 2, 3]));
        let mode = fs::metadata(dir.path().join("a.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn corrupt_files_are_reported_with_their_path() {
        let dir = StateDir::open(temp()).unwrap();
        fs::write(dir.path().join("b.json"), "{not json").unwrap();
        let err = dir.read::<Vec<u32>>("b.json").unwrap_err().to_string();
        assert!(
            err.contains("b.json") && err.contains("fix or remove it"),
            "{err}"
        );
    }

    #[test]
    fn secret_files_are_made_once() {
        let dir = StateDir::open(temp()).unwrap();
        let a = dir.secret_file("token", || "first".into()).unwrap();
        let b = dir.secret_file("token", || "second".into()).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("first", "first"));
    }
}
