//! Gives memory freed by finished reconciles back to the system: glibc only returns the top of
//! its heap by itself, so the holes a burst of reconciles leaves stay resident otherwise.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::Metrics;

/// How often the heap is trimmed while reconciles run; a trim of a heap this size takes well
/// under a millisecond.
pub const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Trims the heap once per [`TRIM_EVERY`] in which reconciles finished; an idle operator
/// frees nothing, so it is not trimmed again.
pub async fn run(metrics: Arc<Metrics>) {
    let mut seen = metrics.reconciles_done();
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let done = metrics.reconciles_done();
        if done != seen {
            seen = done;
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
