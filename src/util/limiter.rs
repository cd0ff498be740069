//! A per-address limit on events within a window (failed sign-ins, pairing requests): after
//! `max` in the window, the address waits until the window since its first one has passed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct WindowLimiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl WindowLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            seen: Mutex::default(),
        }
    }

    /// Err(how long to wait) when `ip` used up its events.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut seen = self.seen.lock().expect("limiter lock");
        seen.retain(|_, (_, since)| now.duration_since(*since) < self.window);
        match seen.get(&ip) {
            Some((count, since)) if *count >= self.max => {
                Err(self.window.saturating_sub(now.duration_since(*since)))
            }
            _ => Ok(()),
        }
    }

    /// Counts one event of `ip`.
    pub fn record(&self, ip: IpAddr, now: Instant) {
        let mut seen = self.seen.lock().expect("limiter lock");
        seen.entry(ip).or_insert((0, now)).0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_quota_and_others_do_not() {
        let l = WindowLimiter::new(2, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        l.record(a, t0);
        assert!(l.check(a, t0).is_ok());
        l.record(a, t0);
        let wait = l.check(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.check(b, t0).is_ok());
        assert!(
            l.check(a, t0 + Duration::from_secs(61)).is_ok(),
            "the window passed"
        );
    }
}
