//! A circuit breaker around the store. After `failures_to_open` requests in a row fail because
//! the store did not answer, the circuit opens: requests that need the store are refused at once
//! with 503 instead of each waiting for a connection timeout. After `open_for`, one request is let
//! through as a trial; its success closes the circuit, its failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Pass,
    /// Go ahead: the trial request of a half-open circuit.
    Trial,
    /// Refuse: the circuit is open.
    Refuse,
}

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A trial request is out since `since`. One that never reports (dropped when its client
    /// went away) is replaced by the next request after `open_for`.
    HalfOpen {
        since: Instant,
    },
}

pub struct Breaker {
    failures_to_open: u32,
    open_for: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(failures_to_open: u32, open_for: Duration) -> Self {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub fn admit(&self) -> Admission {
        let mut state = self.state.lock().expect("breaker poisoned");
        let now = Instant::now();
        let trial_due = match *state {
            State::Closed { .. } => return Admission::Pass,
            State::Open { until } => now >= until,
            State::HalfOpen { since } => now >= since + self.open_for,
        };
        if trial_due {
            *state = State::HalfOpen { since: now };
            Admission::Trial
        } else {
            Admission::Refuse
        }
    }

    /// Records how an admitted request fared with the store; returns whether the circuit is
    /// open afterwards.
    pub fn record(&self, store_failed: bool) -> bool {
        let mut state = self.state.lock().expect("breaker poisoned");
        *state = match (&*state, store_failed) {
            // Requests admitted before the circuit opened do not decide; the trial does.
            (State::Open { until }, _) => State::Open { until: *until },
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.failures_to_open => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (_, true) => State::Open {
                until: Instant::now() + self.open_for,
            },
        };
        matches!(*state, State::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_closes_after_a_good_trial() {
        let breaker = Breaker::new(3, Duration::from_millis(50));
        assert!(!breaker.record(true));
        assert!(!breaker.record(false), "a success resets the count");
        assert!(!breaker.record(true));
        assert!(!breaker.record(true));
        assert_eq!(breaker.admit(), Admission::Pass);
        assert!(breaker.record(true), "the third failure in a row opens");
        assert_eq!(breaker.admit(), Admission::Refuse);

        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.admit(), Admission::Trial);
        assert_eq!(breaker.admit(), Admission::Refuse, "one trial at a time");
        assert!(breaker.record(true), "a failed trial opens again");
        assert_eq!(breaker.admit(), Admission::Refuse);

        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.admit(), Admission::Trial);
        assert!(!breaker.record(false));
        assert_eq!(breaker.admit(), Admission::Pass);
    }

    #[test]
    fn a_trial_that_never_reports_is_replaced() {
        let breaker = Breaker::new(1, Duration::from_millis(50));
        breaker.record(true);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.admit(), Admission::Trial);
        // Its request was dropped: no record() call.
        assert_eq!(breaker.admit(), Admission::Refuse);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.admit(), Admission::Trial);
    }
}
