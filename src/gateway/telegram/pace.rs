//! Pacing of sends under Telegram's limits: about 30 messages a second overall, one a second
//! per private chat, 20 a minute per group. A send goes out at once when within them.
//! (teloxide's Throttle adaptor enforces the same limits but drains its queue in 250 ms ticks,
//! adding that much to every reply.)

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

pub const PER_SECOND_OVERALL: usize = 30;
pub const PRIVATE_GAP: Duration = Duration::from_secs(1);
pub const GROUP_GAP: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Sends {
    /// Send times within the last second, oldest first.
    recent: VecDeque<Instant>,
    /// When each chat may be sent to next.
    next: HashMap<i64, Instant>,
}

#[derive(Default)]
pub struct Pacer {
    sends: Mutex<Sends>,
}

impl Pacer {
    /// Waits until a message may go to `chat`, and counts it as sent.
    pub async fn turn(&self, chat: i64) {
        loop {
            let wait = {
                let mut s = self.sends.lock().await;
                let now = Instant::now();
                while s
                    .recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
                {
                    s.recent.pop_front();
                }
                let overall = if s.recent.len() >= PER_SECOND_OVERALL {
                    s.recent[0] + Duration::from_secs(1)
                } else {
                    now
                };
                let ready = overall.max(s.next.get(&chat).copied().unwrap_or(now));
                if ready <= now {
                    s.recent.push_back(now);
                    let gap = if chat < 0 { GROUP_GAP } else { PRIVATE_GAP };
                    s.next.insert(chat, now + gap);
                    if s.next.len() > 10_000 {
                        s.next.retain(|_, t| *t > now);
                    }
                    return;
                }
                ready - now
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn first_sends_go_at_once_then_limits_apply() {
        let p = Pacer::default();
        let t0 = Instant::now();
        p.turn(1).await;
        p.turn(2).await;
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "different chats, under the overall limit"
        );
        p.turn(1).await;
        assert_eq!(
            t0.elapsed(),
            PRIVATE_GAP,
            "the same private chat waits a second"
        );
        let t1 = Instant::now();
        p.turn(-100).await;
        p.turn(-100).await;
        assert_eq!(t1.elapsed(), GROUP_GAP, "groups wait three seconds");
    }

    #[tokio::test(start_paused = true)]
    async fn thirty_a_second_overall() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for chat in 0..PER_SECOND_OVERALL as i64 {
            p.turn(chat + 1).await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
        p.turn(999).await;
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(1),
            "the 31st waits for the window"
        );
    }
}
