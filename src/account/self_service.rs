//! What signed-in users may do to their own account from the account page: change their
//! password, edit the profile fields Tessera owns, sign out their other sessions, and close the
//! account. Proving the password again is throttled like a sign-in.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::account::mfa::Mfa;
use crate::account::password::PasswordHasher;
use crate::account::password_check::{check_throttled, PasswordCheck};
use crate::account::session;
use crate::account::verification::Verification;
use crate::clock;
use crate::error::Result;
use crate::store::{Attributes, Store, Update, User};
use crate::throttle::Throttle;

/// What the account page's actions touch.
pub struct SelfService<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a PasswordHasher,
    pub throttle: &'a Throttle,
    pub mfa: &'a Mfa,
    /// Mails a link to a new address before it replaces the old one; `None` when off.
    pub verification: Option<&'a Verification>,
}

/// Why a change was not made, in words for the account page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChangeRefused {
    WrongPassword,
    /// The authenticator app's code does not match.
    WrongCode,
    /// Too many wrong passwords: wait this long.
    Locked(Duration),
    /// Too many mailed links asked for: wait this long.
    TooManyLinks(Duration),
    Invalid(&'static str),
    /// Someone (an admin over SCIM, another tab) changed the account since the page was shown.
    ChangedMeanwhile,
}

impl AccountChangeRefused {
    pub fn message(&self) -> &'static str {
        match self {
            AccountChangeRefused::WrongPassword => "Your current password is not correct.",
            AccountChangeRefused::WrongCode => "That code is not valid. Try the next one.",
            AccountChangeRefused::Locked(_) => {
                "Too many wrong passwords. Wait a few minutes, then try again."
            }
            AccountChangeRefused::TooManyLinks(_) => {
                "Too many links were asked for. Try again later."
            }
            AccountChangeRefused::Invalid(why) => why,
            AccountChangeRefused::ChangedMeanwhile => {
                "Your account changed meanwhile. Please try again."
            }
        }
    }
}

/// Checks the user's password, counting a wrong one like a failed sign-in.
pub async fn prove_password(
    service: &SelfService<'_>,
    user: &User,
    password: String,
    ip: IpAddr,
) -> Result<Option<AccountChangeRefused>> {
    let verify = async {
        let hash = user.password_hash.clone();
        Ok(service
            .passwords
            .verify(password, hash)
            .await?
            .then_some(()))
    };
    Ok(
        match check_throttled(service.throttle, &user.username, ip, verify).await? {
            PasswordCheck::Accepted(()) => None,
            PasswordCheck::Wrong { lockout: None } => Some(AccountChangeRefused::WrongPassword),
            PasswordCheck::Wrong {
                lockout: Some(wait),
            }
            | PasswordCheck::Locked(wait) => Some(AccountChangeRefused::Locked(wait)),
        },
    )
}

/// Saves `updated` as the next version of `user`.
async fn save(
    service: &SelfService<'_>,
    user: &User,
    mut updated: User,
) -> Result<Option<AccountChangeRefused>> {
    let now = clock::now();
    updated.version = user.version + 1;
    updated.updated_at = now;
    Ok(
        match service
            .store
            .update_user(&updated, user.version, now)
            .await?
        {
            Update::Done => None,
            Update::Stale | Update::NotFound => Some(AccountChangeRefused::ChangedMeanwhile),
        },
    )
}

/// Sets a new password once the current one is proven, then signs out every other session of
/// the user and revokes every grant holding a refresh token that was not made in this session
/// (offline access that outlived its session included): whoever knew the old password keeps
/// nothing. `current_session` is the hash of the session that stays.
pub async fn change_password(
    service: &SelfService<'_>,
    user: &User,
    current_session: &str,
    passwords: (String, String),
    ip: IpAddr,
) -> Result<Option<AccountChangeRefused>> {
    let (current, new) = passwords;
    if let Err(weak) = service.passwords.check_new(&new, &known_by(user)) {
        return Ok(Some(AccountChangeRefused::Invalid(weak.message())));
    }
    if let Some(refused) = prove_password(service, user, current, ip).await? {
        return Ok(Some(refused));
    }
    let hash = service.passwords.hash(new).await?;
    let updated = User {
        password_hash: Some(hash),
        ..user.clone()
    };
    if let Some(refused) = save(service, user, updated).await? {
        return Ok(Some(refused));
    }
    let store = service.store;
    end_sessions_except(store, &user.id, Some(current_session)).await?;
    revoke_refresh_grants_except(store, &user.id, Some(current_session)).await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions and grants ended");
    Ok(None)
}

/// What the account is known by, which its password should not be.
pub fn known_by(user: &User) -> Vec<&str> {
    [Some(user.username.as_str()), user.email()]
        .into_iter()
        .flatten()
        .collect()
}

/// How binding an authenticator ended.
pub enum Enrolled {
    /// The recovery codes, shown once.
    Done(Vec<String>),
    Refused(AccountChangeRefused),
}

/// Binds an authenticator app to the account (NIST SP 800-63B §6.1.2.1): the password is
/// proven again (throttled like a sign-in), so a stolen session alone cannot bind the thief's
/// app, and every other session of the user (perhaps the thief's) is signed out.
pub async fn enroll_totp(
    service: &SelfService<'_>,
    user: &User,
    current_session: &str,
    password: String,
    offer: &str,
    code: &str,
    ip: IpAddr,
) -> Result<Enrolled> {
    if let Some(refused) = prove_password(service, user, password, ip).await? {
        return Ok(Enrolled::Refused(refused));
    }
    match service
        .mfa
        .confirm_enrollment(&user.id, &user.username, offer, code)
        .await?
    {
        Some(codes) => {
            end_sessions_except(service.store, &user.id, Some(current_session)).await?;
            Ok(Enrolled::Done(codes))
        }
        None => Ok(Enrolled::Refused(AccountChangeRefused::WrongCode)),
    }
}

/// Revokes the user's grants that hold a refresh token, but those made in session `keep` (a
/// session hash), if any.
async fn revoke_refresh_grants_except(
    store: &dyn Store,
    user_id: &str,
    keep: Option<&str>,
) -> Result<()> {
    let now = clock::now();
    let keep_sid = match keep {
        Some(keep) => session::list(store, user_id, now)
            .await?
            .into_iter()
            .find(|listed| listed.id_hash == keep)
            .map(|listed| listed.session.sid),
        None => None,
    };
    for (grant_id, session_id) in store.refresh_grants_of_user(user_id).await? {
        if session_id.is_none() || session_id != keep_sid {
            store.revoke_grant(&grant_id, now).await?;
        }
    }
    Ok(())
}

/// After a password was set without the old one (by an administrator through SCIM or the seed
/// file, or through a recovery link): every session ends and every grant holding a refresh token
/// is revoked, as after the user's own change, since whoever knew the old password may hold them
/// (NIST SP 800-63B §6.1.2.3).
pub async fn end_access_after_password_reset(store: &dyn Store, user_id: &str) -> Result<()> {
    end_sessions_except(store, user_id, None).await?;
    revoke_refresh_grants_except(store, user_id, None).await?;
    tracing::info!(user_id = %user_id, "password set; every session and grant ended");
    Ok(())
}

/// Signs out the user's session `sid` (the public id the account page shows), unless it is
/// `current` (a session hash): this browser signs out through the logout endpoint. A session that
/// already ended is no error.
pub async fn end_session(
    service: &SelfService<'_>,
    user_id: &str,
    current: &str,
    sid: &str,
) -> Result<Option<AccountChangeRefused>> {
    let now = clock::now();
    let store = service.store;
    let sessions = session::list(store, user_id, now).await?;
    match sessions.iter().find(|listed| listed.session.sid == sid) {
        Some(listed) if listed.id_hash == current => Ok(Some(AccountChangeRefused::Invalid(
            "That is this browser: use Sign out instead.",
        ))),
        Some(listed) => {
            session::end_listed(store, listed, now).await?;
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Signs out every session of the user but `keep` (a session hash); returns how many ended.
pub async fn end_other_sessions(
    service: &SelfService<'_>,
    user_id: &str,
    keep: &str,
) -> Result<usize> {
    end_sessions_except(service.store, user_id, Some(keep)).await
}

async fn end_sessions_except(
    store: &dyn Store,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize> {
    let now = clock::now();
    let others: Vec<_> = session::list(store, user_id, now)
        .await?
        .into_iter()
        .filter(|listed| Some(listed.id_hash.as_str()) != keep)
        .collect();
    for listed in &others {
        session::end_listed(store, listed, now).await?;
    }
    Ok(others.len())
}

/// The profile fields Tessera owns, as the user typed them (blank clears a field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub given_name: String,
    pub family_name: String,
    pub email: String,
}

impl Profile {
    pub fn of(user: &User) -> Self {
        let name = |part: &str| {
            user.attributes
                .get("name")
                .and_then(|name| name.get(part))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Profile {
            given_name: name("givenName"),
            family_name: name("familyName"),
            email: user.email().unwrap_or_default().to_string(),
        }
    }

    /// Writes the fields into SCIM attributes (RFC 7643 §4.1.1 `name`, §4.1.2 `emails`),
    /// leaving everything else alone: other name parts, other addresses.
    fn apply(&self, attributes: &mut Attributes) -> std::result::Result<(), &'static str> {
        let email = self.email.trim();
        let fields = [&self.given_name, &self.family_name, &self.email];
        if fields.iter().any(|field| crate::input::has_control(field)) {
            return Err("Names and addresses cannot hold control characters.");
        }
        if !email.is_empty() && !plausible_email(email) {
            return Err("That email address does not look right.");
        }
        let name = attributes
            .entry("name")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("Your stored name has an unexpected shape; ask an administrator.")?;
        for (part, value) in [
            ("givenName", &self.given_name),
            ("familyName", &self.family_name),
        ] {
            match value.trim() {
                "" => name.remove(part),
                value => name.insert(part.into(), value.into()),
            };
        }
        if name.is_empty() {
            attributes.remove("name");
        }
        set_primary_email(attributes, email);
        Ok(())
    }
}

/// Replaces the primary address (else the first), adds one if there is none, or removes it when
/// `email` is blank.
pub(crate) fn set_primary_email(attributes: &mut Attributes, email: &str) {
    let mut emails: Vec<Value> = attributes
        .get("emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let primary = emails
        .iter()
        .position(|e| e.get("primary") == Some(&Value::Bool(true)))
        .or(if emails.is_empty() { None } else { Some(0) });
    match (primary, email) {
        (Some(at), "") => {
            emails.remove(at);
        }
        (Some(at), email) => emails[at]["value"] = email.into(),
        (None, "") => {}
        (None, email) => emails.push(json!({"value": email, "primary": true})),
    }
    if emails.is_empty() {
        attributes.remove("emails");
    } else {
        attributes.insert("emails".into(), emails.into());
    }
}

/// One `@` with something on both sides, a dotted domain, no spaces, and an address mail can
/// be sent to: the checks worth making before a verification mail settles the rest.
pub(crate) fn plausible_email(email: &str) -> bool {
    let shaped = matches!(email.split_once('@'), Some((local, domain))
        if !local.is_empty() && domain.contains('.') && !domain.contains('@')
            && !email.contains(char::is_whitespace));
    shaped && crate::mail::is_deliverable(email)
}

/// How a saved profile left the email.
pub enum ProfileSaved {
    Saved,
    /// A link went to this new address; it replaces the old one once the link is used.
    AddressPending(String),
}

/// Saves the names and email. A new email needs the password (whoever holds only the session
/// must not redirect the account's mail, password resets included); with verification on, the
/// new address is mailed a link and the email changes only when it is used.
pub async fn update_profile(
    service: &SelfService<'_>,
    user: &User,
    profile: &Profile,
    password: String,
    ip: IpAddr,
) -> Result<std::result::Result<ProfileSaved, AccountChangeRefused>> {
    let mut updated = user.clone();
    if let Err(why) = profile.apply(&mut updated.attributes) {
        return Ok(Err(AccountChangeRefused::Invalid(why)));
    }
    if updated.attributes == user.attributes {
        return Ok(Ok(ProfileSaved::Saved));
    }
    let new_email = updated.email().filter(|new| Some(*new) != user.email());
    let new_email = new_email.map(str::to_string);
    if updated.email() != user.email() {
        if let Some(refused) = prove_password(service, user, password, ip).await? {
            return Ok(Err(refused));
        }
    }
    let pending = match (service.verification, new_email) {
        (Some(verification), Some(new)) => {
            set_primary_email(&mut updated.attributes, user.email().unwrap_or_default());
            Some((verification, new))
        }
        _ => None,
    };
    if updated.attributes != user.attributes {
        if let Some(refused) = save(service, user, updated).await? {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(match pending {
        Some((verification, new)) => {
            verification.send(user, &new, true).await?;
            ProfileSaved::AddressPending(new)
        }
        None => ProfileSaved::Saved,
    }))
}

/// Closes the account once the password is proven: the user becomes inactive, which ends every
/// session, code and token they hold (in the store's own transaction). An admin can reactivate.
pub async fn deactivate(
    service: &SelfService<'_>,
    user: &User,
    password: String,
    ip: IpAddr,
) -> Result<Option<AccountChangeRefused>> {
    if let Some(refused) = prove_password(service, user, password, ip).await? {
        return Ok(Some(refused));
    }
    let updated = User {
        active: false,
        ..user.clone()
    };
    let refused = save(service, user, updated).await?;
    if refused.is_none() {
        tracing::info!(user_id = %user.id, "account closed by its user");
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(value: Value) -> Attributes {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_profile_changes_only_the_fields_it_owns() {
        let mut stored = attributes(json!({
            "name": {"givenName": "Ada", "middleName": "Augusta"},
            "emails": [{"value": "work@example.com", "type": "work"},
                       {"value": "ada@example.com", "primary": true}],
            "title": "Countess",
        }));
        let profile = Profile {
            given_name: " Ada ".into(),
            family_name: "Lovelace".into(),
            email: "ada@lovelace.example".into(),
        };
        profile.apply(&mut stored).unwrap();
        assert_eq!(
            Value::Object(stored.clone()),
            json!({
                "name": {"givenName": "Ada", "middleName": "Augusta", "familyName": "Lovelace"},
                "emails": [{"value": "work@example.com", "type": "work"},
                           {"value": "ada@lovelace.example", "primary": true}],
                "title": "Countess",
            })
        );

        Profile::default().apply(&mut stored).unwrap();
        assert_eq!(
            Value::Object(stored),
            json!({
                "name": {"middleName": "Augusta"},
                "emails": [{"value": "work@example.com", "type": "work"}],
                "title": "Countess",
            })
        );
    }

    #[test]
    fn a_first_email_becomes_primary_and_nonsense_is_refused() {
        let mut stored = Attributes::new();
        let profile = Profile {
            email: "grace@example.com".into(),
            ..Profile::default()
        };
        profile.apply(&mut stored).unwrap();
        assert_eq!(
            stored["emails"],
            json!([{"value": "grace@example.com", "primary": true}])
        );
        for bad in [
            "grace",
            "grace@",
            "@example.com",
            "gr ace@example.com",
            "a@b@c.d",
        ] {
            let profile = Profile {
                email: bad.into(),
                ..Profile::default()
            };
            assert!(profile.apply(&mut stored).is_err(), "{bad}");
        }
        let nul_name = Profile {
            given_name: "Gr\u{0}ace".into(),
            ..Profile::default()
        };
        assert!(nul_name.apply(&mut stored).is_err());
    }
}
