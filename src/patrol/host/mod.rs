//! Host patrol (standalone gateway): load, CPU and IO wait, memory and swap, disks, listening
//! ports and top processes of the machine it runs on, read from /proc and statvfs (Linux only).

mod analysis;
mod procfs;
mod sample;

use super::Part;
use crate::crd::cron::PatrolThresholds;

/// The machine's name, for the report scope `host <name>`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Samples the machine; the blocking reads and the sampling pause run off the async runtime.
pub async fn collect(thresholds: &PatrolThresholds) -> Part {
    let thresholds = thresholds.clone();
    tokio::task::spawn_blocking(move || sample::collect_blocking(&thresholds))
        .await
        .unwrap_or_else(|e| Part {
            skipped: vec![format!("host: collector failed: {e}")],
            ..Default::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collects_this_machine() {
        let p = collect(&PatrolThresholds::default()).await;
        assert!(p.facts.iter().any(|f| f.starts_with("memory ")), "{p:?}");
        assert!(p.facts.iter().any(|f| f.starts_with("disk / ")), "{p:?}");
        assert!(p.facts.iter().any(|f| f.starts_with("load ")), "{p:?}");
        assert!(
            p.facts.iter().any(|f| f.starts_with("top memory: ")),
            "{p:?}"
        );
        assert!(!hostname().is_empty());
    }
}
