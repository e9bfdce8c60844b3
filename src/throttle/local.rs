//! Throttle counters in this process's memory: exact sliding windows, bounded per key by the
//! rule's limit, and swept of idle keys so a spray of addresses cannot grow the map for ever.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Key;

/// Above this many keys, a failure first drops the keys whose window and lockout have passed.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LocalCounters {
    keys: Mutex<HashMap<String, Window>>,
}

#[derive(Default)]
struct Window {
    /// The most recent failures, oldest first; never more than the rule's limit.
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    /// When nothing about this key matters any more.
    idle_after: Option<Instant>,
}

impl Window {
    fn lockout_left(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }
}

impl LocalCounters {
    pub fn locked(&self, keys: &[Key]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.keys.lock().expect("throttle map poisoned");
        keys.iter()
            .filter_map(|key| map.get(&key.name)?.lockout_left(now))
            .max()
    }

    pub fn record_failure(&self, keys: &[Key]) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.keys.lock().expect("throttle map poisoned");
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, window| window.idle_after.is_some_and(|idle| idle > now));
        }
        keys.iter()
            .filter_map(|key| {
                let window = map.entry(key.name.clone()).or_default();
                if let Some(left) = window.lockout_left(now) {
                    return Some(left);
                }
                let rule = key.rule;
                window
                    .failures
                    .retain(|&at| now.duration_since(at) < rule.window);
                window.failures.push_back(now);
                window.idle_after = Some(now + rule.window);
                if window.failures.len() < rule.max_failures as usize {
                    return None;
                }
                window.failures.clear();
                window.locked_until = Some(now + rule.lockout);
                window.idle_after = Some(now + rule.lockout.max(rule.window));
                Some(rule.lockout)
            })
            .max()
    }

    pub fn clear(&self, key: &Key) {
        let mut map = self.keys.lock().expect("throttle map poisoned");
        if let Some(window) = map.get_mut(&key.name) {
            window.failures.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rule;
    use super::*;

    fn key(name: &str, max_failures: u32, lockout_ms: u64) -> Key {
        Key {
            name: name.into(),
            rule: Rule {
                max_failures,
                window: Duration::from_secs(60),
                lockout: Duration::from_millis(lockout_ms),
            },
        }
    }

    #[test]
    fn the_limit_locks_the_key_until_the_lockout_ends() {
        let counters = LocalCounters::default();
        let alice = [key("alice", 3, 200)];
        assert_eq!(counters.record_failure(&alice), None);
        assert_eq!(counters.record_failure(&alice), None);
        assert_eq!(counters.locked(&alice), None);
        assert!(counters.record_failure(&alice).is_some());
        let left = counters.locked(&alice).expect("locked");
        assert!(left <= Duration::from_millis(200));
        assert_eq!(counters.locked(&[key("bob", 3, 200)]), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(counters.locked(&alice), None);
        // The count started again from zero.
        assert_eq!(counters.record_failure(&alice), None);
    }

    #[test]
    fn a_success_clears_the_count_but_not_a_lockout() {
        let counters = LocalCounters::default();
        let alice = [key("alice", 2, 10_000)];
        counters.record_failure(&alice);
        counters.clear(&alice[0]);
        assert_eq!(counters.record_failure(&alice), None);
        assert!(counters.record_failure(&alice).is_some());
        counters.clear(&alice[0]);
        assert!(counters.locked(&alice).is_some());
    }

    #[test]
    fn the_longest_lockout_among_the_keys_wins() {
        let counters = LocalCounters::default();
        let (short, long) = (key("short", 1, 1_000), key("long", 1, 60_000));
        let left = counters.record_failure(&[short.clone(), long]);
        assert!(left.expect("locked") > Duration::from_secs(30));
        assert!(counters.locked(&[short]).expect("locked") <= Duration::from_secs(1));
    }
}
