//! The throttled password check, one for sign-in and for the account page (OWASP Authentication
//! Cheat Sheet, "Account Lockout"; RFC 6749 §10.10): refused unchecked while the user name or the
//! client IP is locked (no hashing, nothing recorded), counted as a failure when wrong, and
//! refused even when right if guesses sent in parallel locked the name meanwhile, so a burst
//! gets no more answers than the limit. A right password clears the name's failures.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use crate::error::Result;
use crate::throttle::Throttle;

/// What a password check came to.
#[derive(Debug)]
pub enum PasswordCheck<T> {
    /// The password is right; `T` is what its check found (the user).
    Accepted(T),
    /// Wrong, and counted; `lockout` when this failure locked the name or the address.
    Wrong { lockout: Option<Duration> },
    /// Refused without counting: locked for this long.
    Locked(Duration),
}

/// Checks a password typed for `username` from `ip`: `verify` runs only when neither is locked,
/// and answers what it found for a right password, `None` for a wrong one.
pub async fn check_throttled<T>(
    throttle: &Throttle,
    username: &str,
    ip: IpAddr,
    verify: impl Future<Output = Result<Option<T>>>,
) -> Result<PasswordCheck<T>> {
    let keys = [throttle.account(username), throttle.ip(ip)];
    if let Some(wait) = throttle.locked(&keys).await {
        return Ok(PasswordCheck::Locked(wait));
    }
    let Some(found) = verify.await? else {
        let lockout = throttle.record_failure(&keys).await;
        return Ok(PasswordCheck::Wrong { lockout });
    };
    if let Some(wait) = throttle.locked(&keys).await {
        return Ok(PasswordCheck::Locked(wait));
    }
    // A right password forgives the name's failures; the address's stay counted, so one
    // address guessing many names is still held back.
    let [account, _] = &keys;
    throttle.clear(account).await;
    Ok(PasswordCheck::Accepted(found))
}
