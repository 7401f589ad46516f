//! Adaptive polling: how a worker whose queues stay empty backs off.
//!
//! Full-speed polls first (a burst after a short gap is taken at once), then polls with CPU pause
//! hints, then sleeps growing to [`IDLE_SLEEP_MAX`]; the first packet puts the worker back to
//! full-speed polling.

use std::time::Duration;

/// Empty polls an adaptive worker makes at full speed before backing off.
pub const IDLE_SPIN_ROUNDS: u32 = 1024;
/// Further empty polls with a CPU pause hint ([`PAUSES_PER_ROUND`] `spin_loop` hints) after each.
pub const IDLE_PAUSE_ROUNDS: u32 = 4096;
/// `spin_loop` hints per pausing round.
pub const PAUSES_PER_ROUND: u32 = 32;
/// First sleep once pausing is over; each further empty round doubles it up to [`IDLE_SLEEP_MAX`].
pub const IDLE_SLEEP_MIN: Duration = Duration::from_micros(16);
/// Longest sleep between two polls: below the time a 512-slot rx ring takes to fill at 1 Mpps
/// (so the first burst after a quiet spell is not lost), few enough wake-ups to idle near 0 %.
pub const IDLE_SLEEP_MAX: Duration = Duration::from_micros(500);

/// What an adaptive worker does after a loop iteration that found no packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Poll again at once.
    Poll,
    /// Spin with [`PAUSES_PER_ROUND`] pause hints, then poll.
    Pause,
    /// Sleep this long, then poll.
    Sleep(Duration),
}

impl IdleAction {
    /// Carries the action out on the calling thread.
    #[inline]
    pub fn wait(self) {
        match self {
            IdleAction::Poll => {}
            IdleAction::Pause => {
                for _ in 0..PAUSES_PER_ROUND {
                    std::hint::spin_loop();
                }
            }
            IdleAction::Sleep(d) => std::thread::sleep(d),
        }
    }
}

/// The back-off after `idle_rounds` consecutive empty loop iterations (1 = the first empty one):
/// full polling, then pause hints, then sleeps doubling from [`IDLE_SLEEP_MIN`] to
/// [`IDLE_SLEEP_MAX`]. Any packet resets the count to 0 (full polling again).
pub fn idle_action(idle_rounds: u32) -> IdleAction {
    if idle_rounds <= IDLE_SPIN_ROUNDS {
        IdleAction::Poll
    } else if idle_rounds <= IDLE_SPIN_ROUNDS + IDLE_PAUSE_ROUNDS {
        IdleAction::Pause
    } else {
        let k = idle_rounds - IDLE_SPIN_ROUNDS - IDLE_PAUSE_ROUNDS - 1;
        let sleep = IDLE_SLEEP_MIN.saturating_mul(1u32 << k.min(16));
        IdleAction::Sleep(sleep.min(IDLE_SLEEP_MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_polls_then_pauses_then_sleeps_longer_up_to_the_cap() {
        assert_eq!(idle_action(0), IdleAction::Poll);
        assert_eq!(idle_action(IDLE_SPIN_ROUNDS), IdleAction::Poll);
        assert_eq!(idle_action(IDLE_SPIN_ROUNDS + 1), IdleAction::Pause);
        let first_sleep = IDLE_SPIN_ROUNDS + IDLE_PAUSE_ROUNDS + 1;
        assert_eq!(idle_action(first_sleep - 1), IdleAction::Pause);
        assert_eq!(idle_action(first_sleep), IdleAction::Sleep(IDLE_SLEEP_MIN));
        let mut last = Duration::ZERO;
        for r in first_sleep..first_sleep + 64 {
            let IdleAction::Sleep(d) = idle_action(r) else {
                panic!("round {r} does not sleep");
            };
            assert!(d >= last && d <= IDLE_SLEEP_MAX, "round {r}: {d:?}");
            last = d;
        }
        assert_eq!(last, IDLE_SLEEP_MAX);
        assert_eq!(idle_action(u32::MAX), IdleAction::Sleep(IDLE_SLEEP_MAX));
    }
}
