//! Brute-force throttling of credentials: failed attempts are counted per key (an account, a client
//! IP) in a sliding window, and a key that reaches its limit is locked for a while. A locked key is
//! refused before its credentials are checked, so while an account is locked the right password is
//! refused too (OWASP Authentication Cheat Sheet, "Account Lockout"; RFC 6749 §10.10 asks for
//! protection against guessing).
//!
//! Counters live in process memory, or in Redis when `REDIS_URL` is set so that every instance
//! behind the load balancer shares them. If Redis does not answer, the in-process counters take
//! over: limits stay enforced, per instance, until Redis is back.

mod local;
mod redis;

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Limits, Rule};
use crate::secret;
use crate::username::NameHasher;

use local::LocalCounters;
pub use redis::RedisCounters;

/// What is counted: a rule and a name. The name is hashed, so user names typed at the login page
/// (sometimes a password typed into the wrong field) never reach Redis or memory dumps as text.
#[derive(Debug, Clone)]
pub struct Key {
    pub(crate) name: String,
    pub(crate) rule: Rule,
}

/// The throttle every handler uses. Its answers never fail: see the module documentation.
pub struct Throttle {
    limits: Limits,
    names: NameHasher,
    shared: Option<RedisCounters>,
    local: LocalCounters,
}

impl Throttle {
    /// Counters in this process only.
    pub fn local(limits: Limits, names: NameHasher) -> Self {
        Throttle {
            limits,
            names,
            shared: None,
            local: LocalCounters::default(),
        }
    }

    /// Counters shared through `shared`, with this process's own as the fallback.
    pub fn shared(limits: Limits, names: NameHasher, shared: RedisCounters) -> Self {
        Throttle {
            shared: Some(shared),
            ..Throttle::local(limits, names)
        }
    }

    /// How typed user names are hashed, here and in `login_attempts`.
    pub fn names(&self) -> &NameHasher {
        &self.names
    }

    /// The key of a user name as typed: folded and hashed as `login_attempts` records it.
    pub fn account(&self, username: &str) -> Key {
        Key {
            name: format!("account:{}", self.names.hash(username)),
            rule: self.limits.account,
        }
    }

    /// The key of a client IP for interactive sign-in (passwords and second-factor codes).
    pub fn ip(&self, ip: IpAddr) -> Key {
        self.key("ip", &network(ip), self.limits.ip)
    }

    /// The key of a client IP for client authentication.
    pub fn client_ip(&self, ip: IpAddr) -> Key {
        self.key("client-ip", &network(ip), self.limits.client_ip)
    }

    /// The key of a client IP for starting sign-ins.
    pub fn sign_in_starts(&self, ip: IpAddr) -> Key {
        self.key("sign-in-starts", &network(ip), self.limits.sign_in_starts)
    }

    /// The key of an address that mailed links are asked for, folded like the lookup.
    pub fn mail_link_address(&self, email: &str) -> Key {
        let folded = email.trim().to_ascii_lowercase();
        self.key("mail-link-address", &folded, self.limits.mail_link_address)
    }

    /// The key of a client IP asking for mailed links.
    pub fn mail_link_ip(&self, ip: IpAddr) -> Key {
        self.key("mail-link-ip", &network(ip), self.limits.mail_link_ip)
    }

    fn key(&self, kind: &str, value: &str, rule: Rule) -> Key {
        Key {
            name: format!("{kind}:{}", secret::hash(value)),
            rule,
        }
    }

    /// Whether the shared counters answer; `None` when there are none.
    pub async fn shared_reachable(&self) -> Option<bool> {
        Some(self.shared.as_ref()?.ping().await.is_ok())
    }

    /// How long the caller must wait, if any of `keys` is locked.
    pub async fn locked(&self, keys: &[Key]) -> Option<Duration> {
        if let Some(shared) = &self.shared {
            if let Some(answer) = answered(shared.locked(keys).await) {
                return answer;
            }
        }
        self.local.locked(keys)
    }

    /// Counts a failure on every key; returns how long the caller must now wait, if a key is
    /// locked.
    pub async fn record_failure(&self, keys: &[Key]) -> Option<Duration> {
        if let Some(shared) = &self.shared {
            if let Some(answer) = answered(shared.record_failure(keys).await) {
                return answer;
            }
        }
        self.local.record_failure(keys)
    }

    /// Counts a request that is no failure but costs something (a mailed link, a new account)
    /// on every key, unless one is locked: then it returns how long the caller must wait, and
    /// counts nothing. The request that reaches a limit is still served.
    pub async fn admit(&self, keys: &[Key]) -> Option<Duration> {
        if let Some(wait) = self.locked(keys).await {
            return Some(wait);
        }
        self.record_failure(keys).await;
        None
    }

    /// Forgets the failures counted on `key` (not a running lockout) after a success.
    pub async fn clear(&self, key: &Key) {
        if let Some(shared) = &self.shared {
            if answered(shared.clear(key).await).is_some() {
                return;
            }
        }
        self.local.clear(key);
    }

    /// Forgets the failures counted on `key` and lifts its lockout (a password reset proved the
    /// account's owner).
    pub async fn unlock(&self, key: &Key) {
        if let Some(shared) = &self.shared {
            if answered(shared.unlock(key).await).is_some() {
                return;
            }
        }
        self.local.unlock(key);
    }
}

/// What one client is counted as: its IPv4 address, or its IPv6 /64, since one host commonly
/// holds a whole /64 (RFC 7421) and could otherwise change address at every guess.
fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The shared counters' answer, or `None` (logged) when Redis failed.
fn answered<T>(result: Result<T, crate::store::StoreError>) -> Option<T> {
    result
        .inspect_err(|err| tracing::warn!(error = %err, "Redis throttle counters failed; using this instance's own"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hide_the_name_and_fold_case() {
        let throttle = Throttle::local(
            crate::config::Config::default().limits,
            NameHasher::new([3; 32]),
        );
        let key = throttle.account("Alice");
        assert!(!key.name.contains("lice"));
        assert_eq!(key.name, throttle.account("alice").name);
        assert_ne!(key.name, throttle.account("bob").name);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_ne!(throttle.ip(ip).name, throttle.client_ip(ip).name);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let ip = |text: &str| network(text.parse().unwrap());
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(ip("192.0.2.7"), "192.0.2.7");
    }
}
