//! Self-service sign-up (`TESSERA_SIGNUP=open`): anyone may create an account with a user name,
//! an address (at an allowed domain, `TESSERA_SIGNUP_EMAIL_DOMAINS`) and a password that meets
//! the password rule. The address gets a verification link when verification is on; the store
//! publishes `user.created`.

use std::net::IpAddr;
use std::time::Duration;

use crate::account::invitation::{self, Invitation};
use crate::account::password::PasswordHasher;
use crate::account::self_service::plausible_email;
use crate::account::users::{self, CreateUserError, NewUser};
use crate::account::verification::Verification;
use crate::config::Signup;
use crate::error::Result;
use crate::store::{Store, User, UserOrigin};
use crate::throttle::Throttle;

/// Longer is not an address (RFC 5321 §4.5.3.1.3 bounds a path to 256 octets).
pub const MAX_EMAIL_LENGTH: usize = 254;

const INVITATION_ONLY: &str = "Accounts are made by invitation only: ask for one.";
const INVITATION_USED: &str = "This invitation was already used or has expired. Ask for a new one.";

/// What the sign-up form asks for.
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub password: String,
}

/// Why no account was made, in words for the page.
#[derive(Debug, PartialEq, Eq)]
pub enum SignupRefused {
    Invalid(&'static str),
    NameTaken,
    /// Too many accounts from this network: wait this long.
    Throttled(Duration),
}

impl SignupRefused {
    pub fn message(&self) -> &'static str {
        match self {
            SignupRefused::Invalid(why) => why,
            SignupRefused::NameTaken => "That user name is taken. Choose another one.",
            SignupRefused::Throttled(_) => {
                "Too many accounts were made from here. Try again later."
            }
        }
    }
}

/// What sign-up touches.
pub struct SignupService<'a> {
    pub store: &'a dyn Store,
    pub passwords: &'a PasswordHasher,
    pub throttle: &'a Throttle,
    pub settings: &'a Signup,
    pub verification: Option<&'a Verification>,
}

impl SignupService<'_> {
    /// Creates the account, counting it against `ip` like a sign-in start (each is stored), and
    /// mails the address a verification link when verification is on. With an invitation's
    /// token, the account gets the invitation's address, verified, and joins its group.
    pub async fn sign_up(
        &self,
        mut account: NewAccount,
        invitation: Option<&str>,
        ip: IpAddr,
    ) -> Result<std::result::Result<User, SignupRefused>> {
        let Some(token) = invitation else {
            if !self.settings.open {
                return Ok(Err(SignupRefused::Invalid(INVITATION_ONLY)));
            }
            return self.create(account, None, ip).await;
        };
        let Some(invited) = invitation::take(self.store, token).await? else {
            return Ok(Err(SignupRefused::Invalid(INVITATION_USED)));
        };
        account.email = invited.email.clone();
        let made = self.create(account, Some(&invited), ip).await?;
        match &made {
            Ok(user) => invitation::join_group(self.store, &invited, &user.id).await?,
            Err(_) => invitation::give_back(self.store, token, &invited).await?,
        }
        Ok(made)
    }

    async fn create(
        &self,
        account: NewAccount,
        invited: Option<&Invitation>,
        ip: IpAddr,
    ) -> Result<std::result::Result<User, SignupRefused>> {
        if let Err(why) = self.check(&account, invited.is_some()) {
            return Ok(Err(SignupRefused::Invalid(why)));
        }
        let starts = [self.throttle.sign_in_starts(ip)];
        if let Some(wait) = self.throttle.admit(&starts).await {
            return Ok(Err(SignupRefused::Throttled(wait)));
        }
        let new = NewUser {
            username: account.username,
            password: account.password,
            email: Some(account.email.clone()),
            email_verified: invited.is_some(),
            ..NewUser::default()
        };
        let origin = match invited {
            Some(_) => UserOrigin::Invitation,
            None => UserOrigin::Signup,
        };
        let user = match users::create_user(self.store, self.passwords, new, origin).await {
            Ok(user) => user,
            Err(CreateUserError::Duplicate(_)) => return Ok(Err(SignupRefused::NameTaken)),
            Err(CreateUserError::Invalid(_)) => {
                return Ok(Err(SignupRefused::Invalid("That account cannot be made.")))
            }
            Err(CreateUserError::Other(err)) => return Err(err),
        };
        tracing::info!(user_id = %user.id, "account created by sign-up");
        if let Some(verification) = self.verification.filter(|_| invited.is_none()) {
            verification.send(&user, &account.email, false).await?;
        }
        Ok(Ok(user))
    }

    /// `invited`: the address is the invitation's, whatever the domains.
    fn check(&self, account: &NewAccount, invited: bool) -> std::result::Result<(), &'static str> {
        users::check_username(&account.username).map_err(|_| {
            "Choose a user name of letters, digits and punctuation, without spaces at either end."
        })?;
        let email = &account.email;
        if email.len() > MAX_EMAIL_LENGTH
            || crate::input::has_control(email)
            || !plausible_email(email)
        {
            return Err("That email address does not look right.");
        }
        if !invited && !self.settings.accepts(email) {
            return Err("Sign-up takes addresses of this organisation's domains only.");
        }
        let known_by = [account.username.as_str(), email.as_str()];
        self.passwords
            .check_new(&account.password, &known_by)
            .map_err(|weak| weak.message())?;
        Ok(())
    }
}
