//! Password recovery by mail (OWASP Forgot Password Cheat Sheet): a request names an address, and
//! every active account with that address is mailed a link; the answer is the same whether or not
//! one exists. The link holds a 256-bit secret stored only as its hash, works once and for
//! `TESSERA_PASSWORD_RESET_SECONDS`; its page sets a new password, which ends every session and
//! refresh-token grant of the account (NIST SP 800-63B §6.1.2.3: whoever knew the old password
//! keeps nothing), lifts the account's sign-in lock, and is announced by mail.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::account::password::PasswordHasher;
use crate::account::self_service::{end_access_after_password_reset, known_by};
use crate::clock;
use crate::error::Result;
use crate::mail::{self, Mailer, PasswordChanged, PasswordReset};
use crate::secret;
use crate::store::events;
use crate::store::query::{Attr, AttrKind, ListQuery};
use crate::store::{ArtifactKind, Store, Update, User};
use crate::throttle::Throttle;
use crate::web::paths;

/// Accounts one address may name; more are not mailed (an address shared that widely is a
/// directory mistake, not a person).
const ACCOUNTS_PER_ADDRESS: u64 = 10;

/// How a request for a link ended, as far as the requester may know.
pub enum Requested {
    /// Mailed if an account has the address: the page says the same either way.
    Answered,
    /// Too many requests for this address or from this network; which is not said.
    Throttled(Duration),
}

/// How setting a new password through a link ended.
pub enum Reset {
    /// The new password is set.
    Done,
    /// The link is unknown, used or expired.
    LinkInvalid,
    /// The password does not meet the rule; the link still works.
    Refused(&'static str),
}

/// What recovery touches, built once at start-up when mail is configured.
pub struct Recovery {
    pub store: Arc<dyn Store>,
    pub passwords: PasswordHasher,
    pub mailer: Mailer,
    /// Where links point: `issuer` + [`paths::PASSWORD_RESET`].
    pub issuer: String,
    pub link_lifetime: Duration,
}

impl Recovery {
    /// Mails a link to every active account with `email` (case-insensitively, as SCIM compares
    /// `emails.value`), counting the request against the address and `ip` first. The accounts
    /// are looked up and mailed after the answer, on a task of their own, so how long the answer
    /// takes does not tell whether one exists.
    pub async fn request(
        self: &Arc<Self>,
        throttle: &Throttle,
        email: &str,
        ip: IpAddr,
    ) -> Requested {
        let keys = [throttle.mail_link_address(email), throttle.mail_link_ip(ip)];
        if let Some(wait) = throttle.admit(&keys).await {
            return Requested::Throttled(wait);
        }
        if mail::is_deliverable(email) {
            let (recovery, email) = (self.clone(), email.to_string());
            tokio::spawn(async move {
                if let Err(err) = recovery.mail_links(&email).await {
                    tracing::warn!(error = %err, "password reset links not mailed");
                }
            });
        }
        Requested::Answered
    }

    async fn mail_links(&self, email: &str) -> Result<()> {
        for user in self.accounts_with(email).await? {
            // The account's own spelling: a mailbox's local part may be case-sensitive
            // (RFC 5321 §2.4), the lookup is not.
            let stored = stored_address(&user, email).filter(|a| mail::is_deliverable(a));
            if let Some(address) = stored {
                self.mail_link(&user, &address).await?;
            }
        }
        Ok(())
    }

    async fn accounts_with(&self, email: &str) -> Result<Vec<User>> {
        let query = ListQuery::equal(EMAIL_VALUE, email, ACCOUNTS_PER_ADDRESS);
        let page = self.store.list_users(&query).await?;
        Ok(page.items.into_iter().filter(|user| user.active).collect())
    }

    async fn mail_link(&self, user: &User, email: &str) -> Result<()> {
        let now = clock::now();
        let token = secret::generate();
        let expires_at = now + self.link_lifetime.as_secs() as i64;
        let kind = ArtifactKind::PasswordReset;
        self.store
            .put_artifact(
                kind,
                &secret::hash(&token),
                Some(&user.id),
                &user.id,
                expires_at,
            )
            .await?;
        let link = format!("{}{}?token={token}", self.issuer, paths::PASSWORD_RESET);
        let message = PasswordReset {
            username: &user.username,
            link: &link,
            minutes: self.link_lifetime.as_secs().div_ceil(60),
        };
        self.mailer.send(email, message.into(), now).await?;
        tracing::info!(user_id = %user.id, "password reset link mailed");
        Ok(())
    }

    /// The account a link resets, if the link still works.
    pub async fn link_user(&self, token: &str) -> Result<Option<User>> {
        if !secret::is_base64url_256(token) {
            return Ok(None);
        }
        let kind = ArtifactKind::PasswordReset;
        let now = clock::now();
        let Some(user_id) = self.store.artifact(kind, &secret::hash(token), now).await? else {
            return Ok(None);
        };
        Ok(self.store.user(&user_id).await?.filter(|user| user.active))
    }

    /// Sets `password` on the account of the link, which is used up (with every other link of the
    /// account) whatever happens next.
    pub async fn reset(&self, throttle: &Throttle, token: &str, password: String) -> Result<Reset> {
        let Some(user) = self.link_user(token).await? else {
            return Ok(Reset::LinkInvalid);
        };
        if let Err(weak) = self.passwords.check_new(&password, &known_by(&user)) {
            return Ok(Reset::Refused(weak.message()));
        }
        let kind = ArtifactKind::PasswordReset;
        // Of two submissions of one link, only the one that deletes it goes on.
        if !self
            .store
            .delete_artifact(kind, &secret::hash(token))
            .await?
        {
            return Ok(Reset::LinkInvalid);
        }
        // Every other link of the account dies with it.
        let (kind, now) = (ArtifactKind::PasswordReset, clock::now());
        self.store
            .delete_user_artifacts(kind, &user.id, now)
            .await?;
        let hash = self.passwords.hash(password).await?;
        let now = clock::now();
        let updated = User {
            password_hash: Some(hash),
            version: user.version + 1,
            updated_at: now,
            ..user.clone()
        };
        if self.store.update_user(&updated, user.version, now).await? != Update::Done {
            // Changed since the link was opened (renamed, deactivated): ask for a new link.
            return Ok(Reset::LinkInvalid);
        }
        end_access_after_password_reset(self.store.as_ref(), &user.id).await?;
        throttle.unlock(&throttle.account(&user.username)).await;
        self.store
            .enqueue(&events::password_reset(&user.id, now))
            .await?;
        if let Some(email) = user.email().filter(|email| mail::is_deliverable(email)) {
            let notice = PasswordChanged {
                username: &user.username,
            };
            self.mailer.send(email, notice.into(), now).await?;
        }
        Ok(Reset::Done)
    }
}

/// The value of the user's `emails` element that `email` names, ignoring ASCII case as the lookup
/// does.
fn stored_address(user: &User, email: &str) -> Option<String> {
    let emails = user.attributes.get("emails")?.as_array()?;
    emails
        .iter()
        .filter_map(|element| element.get("value")?.as_str())
        .find(|value| value.eq_ignore_ascii_case(email))
        .map(str::to_string)
}

/// `emails.value` (RFC 7643 §4.1.2): a case-insensitive string in a multi-valued attribute.
const EMAIL_VALUE: Attr = Attr {
    schema: None,
    name: "emails",
    sub: Some("value"),
    kind: AttrKind::String,
    case_exact: false,
    multi_valued: true,
};
