//! Multi-factor authentication: TOTP (RFC 6238) and single-use recovery codes.
//!
//! Seeds are 160 bits (RFC 4226 §4), sealed at rest; a code is accepted once per time step
//! (replays refused, RFC 6238 §5.2); wrong codes are counted per account, and after too many in
//! a window even the right code is refused until the window ends.

use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use totp_rs::{Builder, Totp};

use crate::account::session::Authentication;
use crate::clock;
use crate::config::MfaAttempts;
use crate::error::{Error, Result};
use crate::sealing::Sealer;
use crate::secret;
use crate::store::{MfaAttempt, MfaLimit, MfaStore, TotpRecord, UnixTime};

pub const RECOVERY_CODE_COUNT: usize = 10;
/// Label of the account in authenticator apps.
const ISSUER_LABEL: &str = "Tessera";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// What a code attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
    /// Too many wrong codes lately: nothing is accepted until the window ends.
    LockedOut,
    /// Too many wrong codes in a row: nothing is accepted until an administrator resets the
    /// second factor (`tessera user reset-mfa`).
    LockedForGood,
}

/// NIST SP 800-63B §5.2.2: "no more than 100 consecutive failed authentication attempts on a
/// single subscriber account".
pub const CONSECUTIVE_FAILURES_LOCK: u32 = 100;

/// The second factor: where enrollments and attempts are kept, what seals the seeds, and how many
/// wrong codes an account may send.
#[derive(Clone)]
pub struct Mfa {
    store: Arc<dyn MfaStore + Send + Sync>,
    sealer: Sealer,
    attempts: MfaAttempts,
}

/// What the enrollment page shows.
pub struct Enrollment {
    pub otpauth_uri: String,
    pub qr_svg: String,
    /// The sealed [`Offer`], posted back with the confirmation.
    pub offer: String,
}

impl Authentication {
    /// Password and a second factor (RFC 8176 `pwd`, `otp`, `mfa`).
    pub fn multi_factor(now: UnixTime) -> Self {
        Authentication {
            auth_time: now,
            acr: "mfa".into(),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
        }
    }
}

fn totp(seed: Vec<u8>, username: &str) -> Result<Totp> {
    Builder::new()
        .with_secret(seed)
        .with_issuer(Some(ISSUER_LABEL))
        // The otpauth label separates issuer and account with ':'.
        .with_account_name(username.replace(':', "_"))
        .build()
        .map_err(Error::internal)
}

impl Mfa {
    pub fn new(
        store: Arc<dyn MfaStore + Send + Sync>,
        sealer: Sealer,
        attempts: MfaAttempts,
    ) -> Self {
        Mfa {
            store,
            sealer,
            attempts,
        }
    }

    fn stored_totp(&self, record: &TotpRecord, user_id: &str, username: &str) -> Result<Totp> {
        let seed = self
            .sealer
            .open(&record.secret_sealed, user_id)
            .map_err(Error::internal)?;
        totp(seed, username)
    }
}

fn enrollment(totp: &Totp, offer: String) -> Result<Enrollment> {
    let otpauth_uri = totp.to_url().map_err(Error::internal)?;
    let qr = qrcode::QrCode::new(otpauth_uri.as_bytes()).map_err(Error::internal)?;
    let qr_svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrollment {
        otpauth_uri,
        qr_svg,
        offer,
    })
}

/// How long the seed an enrollment page offers may be confirmed.
const OFFER_SECONDS: UnixTime = 15 * 60;

/// The seed an enrollment page offers, sealed for its user into the page itself: showing the
/// page stores nothing, so a cross-site GET cannot reset an enrollment (security review
/// finding 20), and only the user it was made for can confirm it.
#[derive(Serialize, Deserialize)]
struct Offer {
    seed: Vec<u8>,
    expires_at: UnixTime,
}

impl Mfa {
    pub async fn is_enrolled(&self, user_id: &str) -> Result<bool> {
        Ok(self.store.totp(user_id).await?.is_some_and(|t| t.confirmed))
    }

    fn offer(&self, user_id: &str, username: &str, offer: Offer) -> Result<Enrollment> {
        let sealed = serde_json::to_vec(&offer).map_err(Error::internal)?;
        enrollment(
            &totp(offer.seed, username)?,
            self.sealer.seal(&sealed, user_id),
        )
    }

    /// The offer of an enrollment page, if it is the user's and still stands.
    fn opened(&self, user_id: &str, sealed: &str) -> Option<Offer> {
        let opened = self.sealer.open(sealed, user_id).ok()?;
        let offer: Offer = serde_json::from_slice(&opened).ok()?;
        (offer.expires_at > clock::now()).then_some(offer)
    }

    /// A fresh seed to enroll; `None` if the user is already enrolled.
    pub async fn begin_enrollment(
        &self,
        user_id: &str,
        username: &str,
    ) -> Result<Option<Enrollment>> {
        if self.is_enrolled(user_id).await? {
            return Ok(None);
        }
        let mut seed = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let expires_at = clock::now() + OFFER_SECONDS;
        self.offer(user_id, username, Offer { seed, expires_at })
            .map(Some)
    }

    /// The same enrollment again (after a wrong code), while its offer stands.
    pub fn offered_enrollment(
        &self,
        user_id: &str,
        username: &str,
        sealed: &str,
    ) -> Result<Option<Enrollment>> {
        self.opened(user_id, sealed)
            .map(|found| self.offer(user_id, username, found))
            .transpose()
    }
}

/// 80 random bits as four groups of four base32 characters.
fn recovery_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| BASE32[(*b & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The form a recovery code is hashed in: case, spaces and dashes do not matter.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Confirms the offered enrollment with a valid code; returns the new recovery codes, shown
/// once. `None` for a wrong code, an offer that no longer stands, or a user enrolled meanwhile.
impl Mfa {
    pub async fn confirm_enrollment(
        &self,
        user_id: &str,
        username: &str,
        sealed_offer: &str,
        code: &str,
    ) -> Result<Option<Vec<String>>> {
        let Some(offer) = self.opened(user_id, sealed_offer) else {
            return Ok(None);
        };
        let now = clock::now();
        let Some(step) = totp(offer.seed.clone(), username)?.check(code.trim(), now as u64) else {
            return Ok(None);
        };
        let sealed = self.sealer.seal(&offer.seed, user_id);
        if !self.store.put_pending_totp(user_id, &sealed, now).await? {
            return Ok(None);
        }
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| secret::hash(&normalize_recovery_code(c)))
            .collect();
        if !self
            .store
            .confirm_totp(user_id, &sealed, step as i64, &hashes)
            .await?
        {
            return Ok(None);
        }
        tracing::info!(%user_id, "TOTP enrolled");
        Ok(Some(codes))
    }

    /// Checks a TOTP code (6 digits) or, in the same input, a recovery code (used up on success).
    pub async fn verify(&self, user_id: &str, username: &str, code: &str) -> Result<Verdict> {
        let Some(record) = self.store.totp(user_id).await?.filter(|r| r.confirmed) else {
            return Ok(Verdict::Rejected);
        };
        let now = clock::now();
        let limit = MfaLimit {
            window_start: now - self.attempts.failure_window.as_secs() as UnixTime,
            max: self.attempts.max_failures,
            lock_after: CONSECUTIVE_FAILURES_LOCK,
        };
        let (failures, consecutive) =
            match self.store.claim_mfa_attempt(user_id, now, &limit).await? {
                MfaAttempt::Allowed {
                    failures,
                    consecutive,
                } => (failures, consecutive),
                MfaAttempt::Limited => return Ok(Verdict::LockedOut),
                MfaAttempt::Locked => return Ok(Verdict::LockedForGood),
                MfaAttempt::NotEnrolled => return Ok(Verdict::Rejected),
            };
        let code = code.trim();
        let accepted = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            match self
                .stored_totp(&record, user_id, username)?
                .check(code, now as u64)
            {
                Some(step) => self.store.use_totp_step(user_id, step as i64).await?,
                None => false,
            }
        } else {
            let hash = secret::hash(&normalize_recovery_code(code));
            self.store.use_recovery_code(user_id, &hash).await?
        };
        if accepted {
            return Ok(Verdict::Accepted);
        }
        tracing::info!(%user_id, failures, consecutive, "wrong second-factor code");
        if consecutive >= limit.lock_after {
            tracing::warn!(%user_id, "second factor locked until an administrator resets it");
            self.store.record_mfa_locked(user_id, now).await?;
            return Ok(Verdict::LockedForGood);
        }
        Ok(if failures >= limit.max {
            Verdict::LockedOut
        } else {
            Verdict::Rejected
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_80_bits_and_forgiving_to_type() {
        let code = recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(
            normalize_recovery_code(&code.to_lowercase().replace('-', " ")),
            code.replace('-', "")
        );
        assert_ne!(recovery_code(), code);
    }

    #[test]
    fn a_totp_checks_its_own_codes() {
        let totp = totp(vec![42; 20], "ada:lovelace").unwrap();
        let now = 1_700_000_000;
        let code = totp.generate(now).to_string();
        assert_eq!(totp.check(&code, now), Some(now / 30));
        assert!(enrollment(&totp, String::new())
            .unwrap()
            .otpauth_uri
            .starts_with("otpauth://totp/Tessera:ada_lovelace?"));
    }
}
