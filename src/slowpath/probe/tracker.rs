//! The pure up/down decision of one member from its consecutive probe results.

use super::{HealthState, ProbeReason};

/// Counts consecutive successes and failures of one member and decides its [`HealthState`].
///
/// Rules (see the module documentation): Unknown → Up on the first success; Unknown or Up → Down
/// after `threshold` consecutive failures; Down → Up after `threshold` consecutive successes. An
/// HTTP answer other than 200 marks the member Down at once (Azure's behaviour): the member
/// answered and said it is not healthy, which is not a transient loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTracker {
    state: HealthState,
    successes: u32,
    failures: u32,
}

impl Default for HealthTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthTracker {
    /// A tracker in state Unknown with no results.
    pub fn new() -> Self {
        HealthTracker {
            state: HealthState::Unknown,
            successes: 0,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Consecutive results equal in kind to the most recent one (0 before any result).
    pub fn consecutive(&self) -> u32 {
        self.successes.max(self.failures)
    }

    /// Records one probe outcome under `threshold`: an HTTP status other than 200 counts as
    /// enough failures at once, every other failure counts toward `threshold`; returns the new
    /// state when it changed.
    pub fn record_reason(&mut self, reason: &ProbeReason, threshold: u32) -> Option<HealthState> {
        match reason {
            ProbeReason::HttpStatus(_) => self.record(false, 1),
            r => self.record(r.is_success(), threshold),
        }
    }

    /// Records one result under `threshold` (values below 1 count as 1); returns the new state
    /// when it changed.
    pub fn record(&mut self, success: bool, threshold: u32) -> Option<HealthState> {
        let threshold = threshold.max(1);
        let next = if success {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            match self.state {
                HealthState::Unknown => HealthState::Up,
                HealthState::Down if self.successes >= threshold => HealthState::Up,
                s => s,
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            match self.state {
                HealthState::Unknown | HealthState::Up if self.failures >= threshold => {
                    HealthState::Down
                }
                s => s,
            }
        };
        if next != self.state {
            self.state = next;
            Some(next)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthState::*;

    fn run(seq: &[bool], threshold: u32) -> Vec<HealthState> {
        let mut t = HealthTracker::new();
        seq.iter()
            .map(|&ok| {
                t.record(ok, threshold);
                t.state()
            })
            .collect()
    }

    #[test]
    fn first_success_marks_up() {
        assert_eq!(run(&[true], 3), vec![Up]);
    }

    #[test]
    fn unknown_needs_threshold_failures() {
        assert_eq!(run(&[false, false, false], 3), vec![Unknown, Unknown, Down]);
        assert_eq!(run(&[false], 1), vec![Down]);
    }

    #[test]
    fn up_to_down_and_back_need_threshold() {
        let seq = [
            true, false, false, true, false, false, false, true, true, false, true, true, true,
        ];
        assert_eq!(
            run(&seq, 3),
            vec![Up, Up, Up, Up, Up, Up, Down, Down, Down, Down, Down, Down, Up]
        );
    }

    #[test]
    fn record_reports_only_changes() {
        let mut t = HealthTracker::new();
        assert_eq!(t.record(false, 2), None);
        assert_eq!(t.record(false, 2), Some(Down));
        assert_eq!(t.consecutive(), 2);
        assert_eq!(t.record(false, 2), None);
        assert_eq!(t.record(true, 2), None);
        assert_eq!(t.consecutive(), 1);
        assert_eq!(t.record(true, 2), Some(Up));
    }

    #[test]
    fn http_status_marks_down_at_once_other_failures_count() {
        let mut t = HealthTracker::new();
        assert_eq!(t.record_reason(&ProbeReason::Ok, 3), Some(Up));
        assert_eq!(t.record_reason(&ProbeReason::Timeout, 3), None);
        assert_eq!(t.record_reason(&ProbeReason::Refused, 3), None);
        assert_eq!(t.record_reason(&ProbeReason::Ok, 3), None);
        assert_eq!(
            t.record_reason(&ProbeReason::HttpStatus(503), 3),
            Some(Down)
        );
        // Back up after `threshold` successes, as for any failure.
        assert_eq!(t.record_reason(&ProbeReason::Ok, 3), None);
        assert_eq!(t.record_reason(&ProbeReason::Ok, 3), None);
        assert_eq!(t.record_reason(&ProbeReason::Ok, 3), Some(Up));
        for _ in 0..2 {
            assert_eq!(t.record_reason(&ProbeReason::BadResponse, 3), None);
        }
        assert_eq!(t.record_reason(&ProbeReason::BadResponse, 3), Some(Down));
        // From Unknown too.
        let mut t = HealthTracker::new();
        assert_eq!(
            t.record_reason(&ProbeReason::HttpStatus(404), 5),
            Some(Down)
        );
    }

    #[test]
    fn zero_threshold_acts_as_one() {
        assert_eq!(run(&[true, false, true], 0), vec![Up, Down, Up]);
    }

    #[test]
    fn counters_saturate() {
        let mut t = HealthTracker {
            state: Up,
            successes: u32::MAX,
            failures: 0,
        };
        assert_eq!(t.record(true, 1), None);
        assert_eq!(t.consecutive(), u32::MAX);
    }
}
