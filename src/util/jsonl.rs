//! An append-only JSON-lines log in the state dir (0600): one record per line, appended under a
//! lock, read back oldest first. A failed append is logged, never fatal to what it records.

use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::state_dir::StateDir;

pub struct JsonLog<T> {
    state: StateDir,
    file: String,
    lock: Mutex<()>,
    kind: PhantomData<fn(T)>,
}

impl<T: Serialize + DeserializeOwned> JsonLog<T> {
    /// The log in `file`, relative to the state dir.
    pub fn new(state: StateDir, file: impl Into<String>) -> Self {
        Self {
            state,
            file: file.into(),
            lock: Mutex::new(()),
            kind: PhantomData,
        }
    }

    pub fn append(&self, record: &T) {
        if let Err(e) = self.try_append(record) {
            let path = self.state.path().join(&self.file);
            tracing::warn!(file = %path.display(), error = %e, "record not written");
        }
    }

    /// [`JsonLog::append`], saying whether it worked. A line is written whole or not at all: a
    /// short write (a full disk) is cut off again, so the next record does not land on the
    /// same line as half of this one and both become unreadable.
    pub fn try_append(&self, record: &T) -> std::io::Result<()> {
        let _g = self.lock.lock().expect("log lock");
        let path = self.state.path().join(&self.file);
        let line = serde_json::to_string(record).expect("record serializes") + "\n";
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        let before = f.metadata()?.len();
        f.write_all(line.as_bytes()).inspect_err(|_| {
            // Shrinking needs no space; if even that fails, reading skips the broken line.
            let _ = f.set_len(before);
        })
    }

    /// The records, oldest first; lines that do not parse are skipped.
    pub fn read(&self) -> Vec<T> {
        std::fs::read_to_string(self.state.path().join(&self.file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
