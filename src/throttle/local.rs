//! Throttle counters in this process's memory: exact sliding windows, bounded per key by the
//! rule's limit. The map is swept of idle keys (at most once a second) and capped, so a spray of
//! addresses can neither grow it for ever nor make every failure pay for a sweep.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Key;

/// Above this many keys, a failure first drops the keys whose window and lockout have passed.
const SWEEP_ABOVE: usize = 10_000;
/// At most this many keys: past it, keys that are not locked go first, those closest to going
/// idle first, so a spray of new keys cannot end a running lockout (security review finding 13).
const MAX_KEYS: usize = 100_000;
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct LocalCounters {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Window>,
    last_sweep: Option<Instant>,
}

impl State {
    fn sweep(&mut self, now: Instant) {
        let due = self
            .last_sweep
            .is_none_or(|last| now.duration_since(last) >= SWEEP_EVERY);
        if self.keys.len() <= SWEEP_ABOVE || !due {
            return;
        }
        self.last_sweep = Some(now);
        self.keys
            .retain(|_, window| window.idle_after.is_some_and(|idle| idle > now));
        if self.keys.len() <= MAX_KEYS {
            return;
        }
        // Ordered by (locked, idle_after): `false` sorts before `true`.
        let rank = |window: &Window| {
            let locked = window.locked_until.is_some_and(|until| until > now);
            window.idle_after.map(|idle| (locked, idle))
        };
        let mut ranks: Vec<(bool, Instant)> = self.keys.values().filter_map(rank).collect();
        if ranks.len() > MAX_KEYS {
            let excess = ranks.len() - MAX_KEYS;
            let (_, &mut cut, _) = ranks.select_nth_unstable(excess);
            self.keys
                .retain(|_, window| rank(window).is_some_and(|r| r > cut));
        }
    }
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
        let state = self.state.lock().expect("throttle map poisoned");
        keys.iter()
            .filter_map(|key| state.keys.get(&key.name)?.lockout_left(now))
            .max()
    }

    pub fn record_failure(&self, keys: &[Key]) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle map poisoned");
        state.sweep(now);
        keys.iter()
            .filter_map(|key| {
                let window = state.keys.entry(key.name.clone()).or_default();
                if let Some(left) = window.lockout_left(now) {
                    return Some(left);
                }
                let rule = key.rule;
                // Oldest first (each `now` is taken under the lock): drop from the front only,
                // so a busy key costs the same per call however many it holds.
                while window
                    .failures
                    .front()
                    .is_some_and(|&at| now.duration_since(at) >= rule.window)
                {
                    window.failures.pop_front();
                }
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
        let mut state = self.state.lock().expect("throttle map poisoned");
        if let Some(window) = state.keys.get_mut(&key.name) {
            window.failures.clear();
        }
    }

    pub fn unlock(&self, key: &Key) {
        let mut state = self.state.lock().expect("throttle map poisoned");
        state.keys.remove(&key.name);
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
    fn the_map_is_capped_by_dropping_unlocked_keys_closest_to_idle() {
        let counters = LocalCounters::default();
        // Locked first, so it is the key closest to going idle: it stays all the same.
        counters.record_failure(&[key("locked", 1, 60_000)]);
        for n in 0..MAX_KEYS + 10 {
            counters.record_failure(&[key(&format!("k{n}"), 5, 1_000)]);
        }
        // The sweep runs at most once a second: wait for the next one.
        std::thread::sleep(SWEEP_EVERY);
        counters.record_failure(&[key("last", 5, 1_000)]);
        let state = counters.state.lock().unwrap();
        assert!(state.keys.len() <= MAX_KEYS + 1, "{}", state.keys.len());
        assert!(state.keys.contains_key("last"));
        assert!(!state.keys.contains_key("k0"), "the oldest went first");
        drop(state);
        assert!(counters.locked(&[key("locked", 1, 60_000)]).is_some());
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
