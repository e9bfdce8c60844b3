//! Email verification (`TESSERA_EMAIL_VERIFICATION`): a link mailed to an address proves that
//! the user receives mail there. The link holds a 256-bit secret stored as its hash, names the
//! address it was sent to, works once and for a day. Opening it shows a form (mail scanners open
//! links); submitting it records the address as verified ([`User::verified_email`]). A link sent
//! for a change of address (the account page) also makes the address the user's email, and the
//! old address is told.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::account::self_service::set_primary_email;
use crate::clock;
use crate::config::EmailVerification;
use crate::error::{Error, Result};
use crate::mail::{self, EmailChanged, Mailer, VerifyEmail};
use crate::secret;
use crate::store::{ArtifactKind, Store, Update, User};
use crate::throttle::Throttle;
use crate::web::paths;

/// How long a verification link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a link was sent for, kept with its hash.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    user_id: String,
    address: String,
    /// The address is to replace the user's email once verified.
    change: bool,
}

/// How submitting a link's form ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is verified (and, for a change, is now the user's email).
    Verified(String),
    /// Unknown, used or expired; or the user's email is no longer the address it verifies.
    LinkInvalid,
}

/// What verification touches; exists when it is not off.
#[derive(Clone)]
pub struct Verification {
    pub store: Arc<dyn Store>,
    pub mailer: Mailer,
    /// Where links point: `issuer` + [`paths::EMAIL_VERIFY`].
    pub issuer: String,
    pub mode: EmailVerification,
}

impl Verification {
    /// Whether a user must have a verified address to finish a sign-in.
    pub fn required(&self) -> bool {
        self.mode == EmailVerification::Required
    }

    /// Mails `user` a link that verifies `address`; with `change`, using it also makes the
    /// address their email. The user's earlier links stop working: an old change of address
    /// cannot be used after a newer one was asked for.
    pub async fn send(&self, user: &User, address: &str, change: bool) -> Result<()> {
        if !mail::is_deliverable(address) {
            return Err(Error::invalid_request("that address cannot receive mail"));
        }
        let now = clock::now();
        let kind = ArtifactKind::EmailVerification;
        self.store
            .delete_user_artifacts(kind, &user.id, now)
            .await?;
        let token = secret::generate();
        let pending = Pending {
            user_id: user.id.clone(),
            address: address.to_string(),
            change,
        };
        let payload = serde_json::to_string(&pending).map_err(Error::internal)?;
        let expires_at = now + LINK_LIFETIME.as_secs() as i64;
        let id_hash = secret::hash(&token);
        self.store
            .put_artifact(kind, &id_hash, Some(&user.id), &payload, expires_at)
            .await?;
        let link = format!("{}{}?token={token}", self.issuer, paths::EMAIL_VERIFY);
        let message = VerifyEmail {
            username: &user.username,
            link: &link,
        };
        self.mailer.send(address, message.into(), now).await?;
        tracing::info!(user_id = %user.id, change, "verification link mailed");
        Ok(())
    }

    /// Mails a link for the user's current email, when asked for (the account page, a sign-in
    /// waiting for it), counted like password-reset requests: `Err(wait)` when over the limit.
    pub async fn offer(
        &self,
        throttle: &Throttle,
        user: &User,
        ip: IpAddr,
    ) -> Result<std::result::Result<(), Duration>> {
        let Some(address) = user.email() else {
            return Err(Error::invalid_request("the account has no email address"));
        };
        let keys = [
            throttle.mail_link_address(address),
            throttle.mail_link_ip(ip),
        ];
        if let Some(wait) = throttle.admit(&keys).await {
            return Ok(Err(wait));
        }
        self.send(user, address, false).await?;
        Ok(Ok(()))
    }

    /// Mails a link for the user's email unless one is still live: a sign-in that waits for
    /// the address sends one on arrival, and a reload sends no other.
    pub async fn ensure_sent(&self, user: &User) -> Result<()> {
        let Some(address) = user.email() else {
            return Ok(());
        };
        let (kind, now) = (ArtifactKind::EmailVerification, clock::now());
        if self
            .store
            .user_artifacts(kind, &user.id, now)
            .await?
            .is_empty()
        {
            self.send(user, address, false).await?;
        }
        Ok(())
    }

    /// The user and address of a link that still works.
    pub async fn link(&self, token: &str) -> Result<Option<(User, String)>> {
        Ok(self
            .pending(token)
            .await?
            .map(|(user, pending)| (user, pending.address)))
    }

    async fn pending(&self, token: &str) -> Result<Option<(User, Pending)>> {
        if !secret::is_base64url_256(token) {
            return Ok(None);
        }
        let (kind, now) = (ArtifactKind::EmailVerification, clock::now());
        let Some(payload) = self.store.artifact(kind, &secret::hash(token), now).await? else {
            return Ok(None);
        };
        let pending: Pending = serde_json::from_str(&payload).map_err(Error::internal)?;
        let user = self.store.user(&pending.user_id).await?;
        let user = user.filter(|user| user.active);
        // A plain verification is for the email the user still has.
        let current = |user: &User| pending.change || user.email() == Some(&pending.address);
        Ok(user.filter(current).map(|user| (user, pending)))
    }

    /// Uses the link up and records its address as verified.
    pub async fn confirm(&self, token: &str) -> Result<Confirmed> {
        let Some((user, pending)) = self.pending(token).await? else {
            return Ok(Confirmed::LinkInvalid);
        };
        let kind = ArtifactKind::EmailVerification;
        if !self
            .store
            .delete_artifact(kind, &secret::hash(token))
            .await?
        {
            return Ok(Confirmed::LinkInvalid);
        }
        let now = clock::now();
        let mut updated = user.clone();
        if pending.change {
            set_primary_email(&mut updated.attributes, &pending.address);
        }
        updated.verified_email = Some(pending.address.clone());
        updated.version += 1;
        updated.updated_at = now;
        if self.store.update_user(&updated, user.version, now).await? != Update::Done {
            return Ok(Confirmed::LinkInvalid);
        }
        if let Some(old) = user
            .email()
            .filter(|old| pending.change && *old != pending.address)
        {
            self.tell_old_address(&user, old, &pending.address).await?;
        }
        Ok(Confirmed::Verified(pending.address))
    }

    async fn tell_old_address(&self, user: &User, old: &str, new: &str) -> Result<()> {
        if mail::is_deliverable(old) {
            let notice = EmailChanged {
                username: &user.username,
                new_address: new,
            };
            self.mailer.send(old, notice.into(), clock::now()).await?;
        }
        Ok(())
    }
}
