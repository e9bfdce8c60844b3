//! The sign-in service: what happens once a user has proved something (a password, a second
//! factor, or an existing session) until the sign-in ends in a session, a consent page, an
//! authorization code or the account page. [`flow::next_step`] decides the step; this service
//! reads the facts it needs and carries the step out. Built once at start-up, it holds only what
//! those steps touch.

use std::sync::Arc;

use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use crate::account::mfa::Mfa;
use crate::account::passkeys::Passkeys;
use crate::account::session::{self, Authentication, Session};
use crate::account::verification::Verification;
use crate::clock;
use crate::config::{Config, Lifetimes};
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::authorize::{AuthorizationRequest, Reply};
use crate::oauth::flow::{self, Step, UserFacts};
use crate::oauth::interaction::{
    Interaction, InteractionRefusal, Interactions, Purpose, ACCOUNT_SIGN_IN,
};
use crate::secret;
use crate::store::{ArtifactKind, AuthCode, Client, Store, UnixTime};
use crate::tokens::scope;
use crate::web::cookies;
use crate::web::paths;

pub struct SignIn {
    store: Arc<dyn Store>,
    mfa: Mfa,
    /// Where a sign-in waits between its pages.
    pub interactions: Interactions,
    issuer: String,
    /// Read for the session's and the code's.
    lifetimes: Lifetimes,
    /// The session cookie is `Secure` when the issuer is https.
    https: bool,
    /// The login page links to password recovery (mail is configured).
    pub offers_recovery: bool,
    /// The login page links to sign-up, and `prompt=create` opens it.
    pub offers_signup: bool,
    /// Set when a verified address is required to finish a sign-in.
    pub verification: Option<Verification>,
    /// Set when the issuer can have passkeys: the login page offers a passkey sign-in.
    pub passkeys: Option<Passkeys>,
}

/// A user whose authentication is complete, and the step the sign-in goes on with.
struct SignedIn<'a> {
    user_id: &'a str,
    authentication: Authentication,
    step: Step,
}

impl SignIn {
    /// `verification` counts only when it is required.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        mfa: Mfa,
        verification: Option<Verification>,
        passkeys: Option<Passkeys>,
    ) -> Self {
        SignIn {
            interactions: Interactions::new(config, store.clone()),
            store,
            mfa,
            issuer: config.issuer.clone(),
            lifetimes: config.lifetimes,
            https: config.is_https(),
            offers_recovery: config.mail.relay.is_some(),
            offers_signup: config.signup.open,
            verification: verification.filter(Verification::required),
            passkeys,
        }
    }

    /// Whether the browser's cookies are `Secure` (the issuer is https).
    pub fn https(&self) -> bool {
        self.https
    }

    /// Where the authorization response for `request` goes.
    pub fn reply(&self, request: &AuthorizationRequest) -> Reply {
        Reply::to(request, &self.issuer)
    }

    /// The browser's current session, if its cookie names a live one.
    pub async fn current_session(&self, jar: &CookieJar, now: UnixTime) -> Result<Option<Session>> {
        session::current(self.store.as_ref(), jar, now).await
    }

    /// What [`flow::next_step`] needs to know of a user signed in with the methods `amr`:
    /// whether they are enrolled in a second factor or have a passkey (each read only when it
    /// can matter) and whether they must approve `request`'s scopes for `client` (`false`
    /// without a request: the account page asks for none).
    pub async fn user_facts(
        &self,
        sign_in: Option<(&Client, &AuthorizationRequest)>,
        user_id: &str,
        amr: &[String],
        fresh: bool,
    ) -> Result<UserFacts> {
        let request = sign_in.map(|(_, request)| request);
        let (mfa, phishing_resistant) = (session::is_mfa(amr), session::is_phishing_resistant(amr));
        let enrolled = flow::enrollment_matters(request, mfa, fresh)
            && self.has_second_factor(user_id).await?;
        let passkey =
            flow::passkey_matters(request, phishing_resistant) && self.has_passkey(user_id).await?;
        let (consent_needed, email_unverified) = match sign_in {
            Some((client, request)) => (
                self.consent_needed(client, request, user_id).await?,
                self.email_unverified(user_id).await?,
            ),
            None => (false, false),
        };
        Ok(UserFacts {
            mfa,
            phishing_resistant,
            fresh,
            enrolled,
            passkey,
            consent_needed,
            email_unverified,
        })
    }

    /// Whether the user has TOTP.
    pub async fn has_totp(&self, user_id: &str) -> Result<bool> {
        self.mfa.is_enrolled(user_id).await
    }

    /// Whether the user has a passkey (and passkeys are on).
    pub async fn has_passkey(&self, user_id: &str) -> Result<bool> {
        match &self.passkeys {
            Some(passkeys) => passkeys.has_any(user_id).await,
            None => Ok(false),
        }
    }

    /// Whether the user has a second factor: TOTP, or a passkey.
    pub async fn has_second_factor(&self, user_id: &str) -> Result<bool> {
        Ok(self.has_totp(user_id).await? || self.has_passkey(user_id).await?)
    }

    /// Whether a verified address is required and `user_id` has none.
    async fn email_unverified(&self, user_id: &str) -> Result<bool> {
        if self.verification.is_none() {
            return Ok(false);
        }
        let user = self.store.user(user_id).await?;
        Ok(!user.is_some_and(|user| user.email_verified()))
    }

    /// Whether the user must (again) approve this client's scopes.
    async fn consent_needed(
        &self,
        client: &Client,
        request: &AuthorizationRequest,
        user_id: &str,
    ) -> Result<bool> {
        if request.prompt.consent {
            return Ok(true);
        }
        if client.skip_consent {
            return Ok(false);
        }
        let granted = self.store.granted_scope(user_id, &client.client_id).await?;
        Ok(match granted {
            Some(granted) => {
                !scope::is_within(&scope::parse(&request.scope)?, &scope::parse(&granted)?)
            }
            None => true,
        })
    }

    /// After the password: the next step of the sign-in ([`flow::next_step`]): the second factor
    /// when the user has one, an error redirect when the request demands MFA the user cannot
    /// give, else signed in.
    pub async fn after_password(
        &self,
        jar: CookieJar,
        id: &str,
        mut interaction: Interaction,
        client: Option<Client>,
        user_id: &str,
    ) -> Result<Response, InteractionRefusal> {
        match self
            .next_step(&interaction, client.as_ref(), user_id, &["pwd".to_string()])
            .await?
        {
            Step::SecondFactor => {
                interaction.pending_mfa = Some(user_id.to_string());
                let id = if id == ACCOUNT_SIGN_IN {
                    self.interactions.save_new(&interaction).await?
                } else {
                    self.interactions.save(id, &interaction).await?;
                    id.to_string()
                };
                Ok(Redirect::to(&paths::for_interaction(paths::LOGIN_MFA, &id)).into_response())
            }
            Step::Refuse(code) => {
                self.interactions.finish(id).await?;
                let request = interaction.request().ok_or(InteractionRefusal::Expired)?;
                Ok(self.reply(request).error(refusal(code)))
            }
            step => {
                let signed = SignedIn {
                    user_id,
                    authentication: Authentication::password(clock::now()),
                    step,
                };
                self.complete_authentication(jar, id, interaction, client, signed)
                    .await
            }
        }
    }

    /// After a multi-factor `authentication` (the password and a second factor, or a passkey
    /// that verified the user): the rest of the sign-in, as [`flow::next_step`] decides it
    /// (which may ask for a passkey still, when the request needs one).
    pub async fn after_multi_factor(
        &self,
        jar: CookieJar,
        id: &str,
        mut interaction: Interaction,
        client: Option<Client>,
        user_id: &str,
        authentication: Authentication,
    ) -> Result<Response, InteractionRefusal> {
        let step = self
            .next_step(&interaction, client.as_ref(), user_id, &authentication.amr)
            .await?;
        if step == Step::SecondFactor {
            // A password and TOTP where the request needs a passkey: the passkey next.
            interaction.pending_mfa = Some(user_id.to_string());
            self.interactions.save(id, &interaction).await?;
            let page = paths::for_interaction(paths::LOGIN_MFA, id);
            return Ok(Redirect::to(&page).into_response());
        }
        let signed = SignedIn {
            user_id,
            authentication,
            step,
        };
        self.complete_authentication(jar, id, interaction, client, signed)
            .await
    }

    /// What comes after `user_id` authenticated with the methods `amr` just now.
    async fn next_step(
        &self,
        interaction: &Interaction,
        client: Option<&Client>,
        user_id: &str,
        amr: &[String],
    ) -> Result<Step> {
        let request = interaction.request();
        let facts = self
            .user_facts(client.zip(request), user_id, amr, true)
            .await?;
        Ok(flow::next_step(request, Some(facts)))
    }

    /// Authentication is complete: a fresh session (a new id at every login, so a planted one is
    /// worthless), then consent, a code, or the account page.
    async fn complete_authentication(
        &self,
        jar: CookieJar,
        id: &str,
        mut interaction: Interaction,
        client: Option<Client>,
        signed: SignedIn<'_>,
    ) -> Result<Response, InteractionRefusal> {
        let SignedIn {
            user_id,
            authentication,
            step,
        } = signed;
        let session_expiry = clock::now() + self.lifetimes.session.as_secs() as UnixTime;
        let (cookie_value, session) =
            session::start(self.store.as_ref(), user_id, authentication, session_expiry).await?;
        if let Some(old) = jar.get(session::COOKIE) {
            self.store
                .delete_artifact(ArtifactKind::Session, &secret::hash(old.value()))
                .await?;
        }
        tracing::info!(%user_id, acr = %session.authentication.acr, "signed in");
        let jar = jar.add(cookies::build(session::COOKIE, cookie_value, self.https));
        interaction.sid = Some(session.sid.clone());
        interaction.pending_mfa = None;
        let next = match (step, &interaction.purpose, client) {
            (Step::Consent, Purpose::Authorize(_), Some(_)) => {
                self.interactions.save(id, &interaction).await?;
                Redirect::to(&paths::for_interaction(paths::CONSENT, id)).into_response()
            }
            (Step::VerifyEmail, Purpose::Authorize(_), Some(_)) => {
                self.interactions.save(id, &interaction).await?;
                Redirect::to(&paths::for_interaction(paths::LOGIN_VERIFY_EMAIL, id)).into_response()
            }
            (Step::IssueCode, Purpose::Authorize(request), Some(client)) => {
                self.complete(id, &client, request, &session).await?
            }
            _ => {
                self.interactions.finish(id).await?;
                Redirect::to(paths::ACCOUNT).into_response()
            }
        };
        Ok((jar, next).into_response())
    }

    /// Goes on with the sign-in of interaction `id` from the browser's `session`, once what held
    /// it (an address to verify) may be done: consent, a code, or the verification page again.
    pub async fn resume(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        client: &Client,
        session: &Session,
    ) -> Result<Response> {
        let amr = &session.authentication.amr;
        let facts = self
            .user_facts(Some((client, request)), &session.user_id, amr, false)
            .await?;
        let page = match flow::next_step(Some(request), Some(facts)) {
            Step::IssueCode => return self.complete(id, client, request, session).await,
            Step::Refuse(code) => {
                self.interactions.finish(id).await?;
                return Ok(self.reply(request).error(refusal(code)));
            }
            Step::Consent => paths::CONSENT,
            Step::VerifyEmail => paths::LOGIN_VERIFY_EMAIL,
            step => {
                return Err(Error::internal(format!(
                    "sign-in step {step:?} on resuming"
                )))
            }
        };
        Ok(Redirect::to(&paths::for_interaction(page, id)).into_response())
    }

    /// Ends the interaction and issues its code: one code per interaction, even when a form is
    /// submitted twice at once.
    pub async fn complete(
        &self,
        id: &str,
        client: &Client,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> Result<Response> {
        if !self.interactions.finish(id).await? {
            return Err(Error::invalid_request(
                "this sign-in request was already completed",
            ));
        }
        self.issue_code(client, request, session).await
    }

    /// Issues a single-use authorization code (RFC 6749 §4.1.2) and redirects back to the
    /// client.
    pub async fn issue_code(
        &self,
        client: &Client,
        request: &AuthorizationRequest,
        session: &Session,
    ) -> Result<Response> {
        let reply = self.reply(request);
        // The last line of defence, whatever led here: never a code claiming less than the
        // request demanded.
        let amr = &session.authentication.amr;
        let phishing_resistant = session::is_phishing_resistant(amr);
        let needs_phishing_resistant =
            request.require_phishing_resistant || client.require_phishing_resistant;
        if ((request.require_mfa || client.require_mfa) && !session::is_mfa(amr))
            || (needs_phishing_resistant && !phishing_resistant)
        {
            return Ok(reply.error(refusal(ErrorCode::UnmetAuthenticationRequirements)));
        }
        if self.email_unverified(&session.user_id).await? {
            return Ok(reply.error(refusal(ErrorCode::InteractionRequired)));
        }
        let code = secret::generate();
        let auth = &session.authentication;
        let record = AuthCode {
            grant_id: uuid::Uuid::now_v7().to_string(),
            client_id: request.client_id.clone(),
            user_id: session.user_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            session_id: session.sid.clone(),
            auth_time: auth.auth_time,
            // What was asked for and met; else what the session did.
            acr: match needs_phishing_resistant {
                true => session::PHISHING_RESISTANT.to_string(),
                false => auth.acr.clone(),
            },
            amr: auth.amr.clone(),
            expires_at: clock::now() + self.lifetimes.code.as_secs() as UnixTime,
        };
        self.store
            .insert_code(&secret::hash(&code), &record)
            .await?;
        Ok(reply.code(&code))
    }
}

/// The error a sign-in step refuses with (sent back to the client's redirect URI).
pub fn refusal(code: ErrorCode) -> Error {
    let description = match code {
        ErrorCode::UnmetAuthenticationRequirements => {
            "this request requires an authentication (multi-factor, or a passkey) that the user \
             has not set up"
        }
        _ => "the user must interact with the server",
    };
    Error::oauth(code, description)
}
