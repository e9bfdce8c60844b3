//! Passkeys: WebAuthn credentials (W3C Web Authentication Level 3), through webauthn-rs's core.
//!
//! The relying party id is the issuer's host (§5.1.2, an origin's effective domain), so a passkey
//! works only while the issuer keeps that host; an issuer on an IP address can have none. Every
//! ceremony's challenge is kept server-side as an artifact for [`CEREMONY_LIFETIME`], bound to what
//! started it (the account page's session, or the sign-in's interaction), and is used once.
//!
//! Registration asks for a discoverable credential (§5.4.6 `residentKey: required`), so that
//! the passkey alone finds its user at sign-in (the user handle is the user's id), with user
//! verification preferred and attestation `none`. A passwordless sign-in needs user verification:
//! a passkey alone that only tested presence is one factor, and a weaker one than the password.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, Credential, PublicKeyCredential,
    RegisterPublicKeyCredential, RegistrationState, UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

use crate::clock;
use crate::error::{Error, Result};
use crate::secret;
use crate::store::{events, ArtifactKind, PasskeyRecord, Store, StoreError, User};

/// How long a started ceremony waits for the browser's answer.
pub const CEREMONY_LIFETIME: Duration = Duration::from_secs(300);

/// The longest name a user may give a passkey.
pub const MAX_NAME_CHARS: usize = 64;

/// A started ceremony, kept with the hash of its token.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    /// What started it: the session's id hash (registration), or the interaction in one
    /// browser (sign-in).
    bound_to: String,
    state: CeremonyState,
}

#[derive(Serialize, Deserialize)]
enum CeremonyState {
    Registration {
        user_id: String,
        name: String,
        state: RegistrationState,
    },
    SignIn(AuthenticationState),
}

/// A ceremony the browser is to run: the token that names it and the options for
/// `navigator.credentials.create()` or `.get()` (as JSON, in the encoding of §5.1.8).
pub struct Started {
    pub token: String,
    pub options: Value,
}

/// Who a passkey sign-in proved to be.
#[derive(Debug, PartialEq, Eq)]
pub struct PasskeyUser {
    pub user_id: String,
    /// The authenticator verified the user (§6.1 flag UV): the sign-in is multi-factor.
    pub user_verified: bool,
}

/// What refused a passkey: the pages show every one the same way.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Unknown, used or expired ceremony; or started elsewhere.
    Ceremony,
    /// The browser's answer does not verify (origin, RP id, signature, challenge, flags), or
    /// names a credential that is not registered.
    Credential,
    /// The credential is registered already.
    Duplicate,
    /// The signature counter did not move forward: the authenticator may have been cloned
    /// (§6.1.1). Recorded as a `passkey.counter_regressed` audit event.
    CounterRegressed,
}

#[derive(Clone)]
pub struct Passkeys {
    core: Arc<WebauthnCore>,
    store: Arc<dyn Store>,
}

impl Passkeys {
    /// Passkeys for `issuer`; `None` when its host is no domain (an IP address), which cannot
    /// be a relying party id.
    pub fn new(issuer: &str, store: Arc<dyn Store>) -> Option<Self> {
        let rp_id = relying_party_id(issuer)?;
        let origin = Url::parse(issuer).ok()?;
        let origin = Url::parse(&origin.origin().ascii_serialization()).ok()?;
        let core = WebauthnCore::new_unsafe_experts_only(
            "Tessera",
            &rp_id,
            vec![origin],
            CEREMONY_LIFETIME,
            Some(false),
            Some(false),
        );
        Some(Passkeys {
            core: Arc::new(core),
            store,
        })
    }

    /// The user's passkeys, oldest first.
    pub async fn of_user(&self, user_id: &str) -> Result<Vec<PasskeyRecord>> {
        Ok(self.store.passkeys(user_id).await?)
    }

    /// Removes one of the user's passkeys; `false` if it was not theirs.
    pub async fn remove(&self, user_id: &str, credential_id: &str) -> Result<bool> {
        Ok(self.store.delete_passkey(user_id, credential_id).await?)
    }

    /// Starts registering a passkey named `name` (from [`passkey_name`]) for `user`, from the
    /// session whose id hash is `session`. The user's passkeys are excluded, so an authenticator
    /// holding one says so instead of making another.
    pub async fn start_registration(
        &self,
        user: &User,
        session: &str,
        name: &str,
    ) -> Result<Started> {
        let mut excluded = Vec::new();
        for passkey in self.of_user(&user.id).await? {
            excluded.push(credential_of(&passkey)?.cred_id);
        }
        let builder = self
            .core
            .new_challenge_register_builder(user.id.as_bytes(), &user.username, &user.username)
            .map_err(webauthn_failure)?
            .attestation(AttestationConveyancePreference::None)
            .user_verification_policy(UserVerificationPolicy::Preferred)
            .require_resident_key(true)
            .exclude_credentials(Some(excluded));
        let (options, state) = self
            .core
            .generate_challenge_register(builder)
            .map_err(webauthn_failure)?;
        let state = CeremonyState::Registration {
            user_id: user.id.clone(),
            name: name.to_string(),
            state,
        };
        self.start(session, state, &options).await
    }

    /// Finishes the registration `token` names with the browser's `answer` (the JSON of a
    /// `PublicKeyCredential` from `create()`), for the user signed in with `session` (its id
    /// hash).
    pub async fn finish_registration(
        &self,
        user_id: &str,
        session: &str,
        token: &str,
        answer: &str,
    ) -> Result<std::result::Result<PasskeyRecord, Refused>> {
        let Some(CeremonyState::Registration {
            user_id: started_for,
            name,
            state,
        }) = self.take(session, token).await?
        else {
            return Ok(Err(Refused::Ceremony));
        };
        if started_for != user_id {
            return Ok(Err(Refused::Ceremony));
        }
        let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(answer) else {
            return Ok(Err(Refused::Credential));
        };
        let credential = match self.core.register_credential(&answer, &state, None) {
            Ok(credential) => credential,
            Err(err) => {
                tracing::info!(%user_id, error = %err, "passkey registration refused");
                return Ok(Err(Refused::Credential));
            }
        };
        let passkey = PasskeyRecord {
            credential_id: URL_SAFE_NO_PAD.encode(&credential.cred_id),
            user_id: user_id.to_string(),
            name,
            credential: serde_json::to_string(&credential).map_err(Error::internal)?,
            sign_count: credential.counter,
            created_at: clock::now(),
            last_used_at: None,
        };
        match self.store.insert_passkey(&passkey).await {
            Ok(()) => Ok(Ok(passkey)),
            Err(StoreError::Conflict(_)) => Ok(Err(Refused::Duplicate)),
            Err(err) => Err(err.into()),
        }
    }

    /// Whether the user has a passkey (one counts as their second factor).
    pub async fn has_any(&self, user_id: &str) -> Result<bool> {
        Ok(!self.of_user(user_id).await?.is_empty())
    }

    /// Starts a passkey sign-in bound to `bound_to` (an interaction in a browser): any
    /// discoverable passkey of this relying party may answer (§5.5 an empty
    /// `allowCredentials`), or with `for_user` (the second factor after their password) only
    /// that user's.
    pub async fn start_sign_in(&self, bound_to: &str, for_user: Option<&str>) -> Result<Started> {
        let mut allowed = Vec::new();
        if let Some(user_id) = for_user {
            for passkey in self.of_user(user_id).await? {
                allowed.push(credential_of(&passkey)?);
            }
        }
        let builder = self
            .core
            .new_challenge_authenticate_builder(allowed, Some(UserVerificationPolicy::Preferred))
            .map_err(webauthn_failure)?;
        let (options, state) = self
            .core
            .generate_challenge_authenticate(builder)
            .map_err(webauthn_failure)?;
        self.start(bound_to, CeremonyState::SignIn(state), &options)
            .await
    }

    /// Finishes the sign-in `token` names with the browser's `answer` (the JSON of a
    /// `PublicKeyCredential` from `get()`): the user whose passkey signed the challenge, who must
    /// be `for_user` when the sign-in was started for them.
    pub async fn finish_sign_in(
        &self,
        bound_to: &str,
        token: &str,
        answer: &str,
        for_user: Option<&str>,
    ) -> Result<std::result::Result<PasskeyUser, Refused>> {
        let Some(CeremonyState::SignIn(mut state)) = self.take(bound_to, token).await? else {
            return Ok(Err(Refused::Ceremony));
        };
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
            return Ok(Err(Refused::Credential));
        };
        // The user handle names the user (registration set it to the user's id); an
        // authenticator may leave it out when the credential was asked for by id (§6.3.3).
        let handle = answer
            .get_user_unique_id()
            .map(|handle| std::str::from_utf8(handle).ok());
        let user_id = match (for_user, handle) {
            (_, Some(None)) => None,
            (Some(expected), Some(Some(named))) if expected != named => None,
            (Some(expected), _) => Some(expected.to_string()),
            (None, named) => named.flatten().map(str::to_string),
        };
        // Not a user id (ours hold no control characters, which PostgreSQL may refuse).
        let Some(user_id) = user_id.filter(|id| !crate::input::has_control(id)) else {
            return Ok(Err(Refused::Credential));
        };
        let credential_id = URL_SAFE_NO_PAD.encode(&answer.raw_id);
        let passkeys = self.of_user(&user_id).await?;
        let Some(passkey) = passkeys.iter().find(|p| p.credential_id == credential_id) else {
            return Ok(Err(Refused::Credential));
        };
        let mut credential = credential_of(passkey)?;
        state.set_allowed_credentials(vec![credential.clone()]);
        let result = match self.core.authenticate_credential(&answer, &state) {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                return self.counter_regressed(&user_id, &credential_id).await
            }
            Err(err) => {
                tracing::info!(%user_id, error = %err, "passkey sign-in refused");
                return Ok(Err(Refused::Credential));
            }
        };
        credential.counter = credential.counter.max(result.counter());
        credential.backup_state = result.backup_state();
        credential.backup_eligible |= result.backup_eligible();
        let stored = serde_json::to_string(&credential).map_err(Error::internal)?;
        // Atomic with the counter check: of two uses of one counter value, one is refused.
        if !self
            .store
            .use_passkey(&credential_id, &stored, result.counter(), clock::now())
            .await?
        {
            return self.counter_regressed(&user_id, &credential_id).await;
        }
        Ok(Ok(PasskeyUser {
            user_id,
            user_verified: result.user_verified(),
        }))
    }

    async fn counter_regressed<T>(
        &self,
        user_id: &str,
        credential_id: &str,
    ) -> Result<std::result::Result<T, Refused>> {
        tracing::warn!(%user_id, "passkey refused: its signature counter did not move forward");
        let event = events::passkey_counter_regressed(user_id, credential_id, clock::now());
        self.store.enqueue(&event).await?;
        Ok(Err(Refused::CounterRegressed))
    }

    async fn start(
        &self,
        bound_to: &str,
        state: CeremonyState,
        options: &impl Serialize,
    ) -> Result<Started> {
        let token = secret::generate();
        let ceremony = Ceremony {
            bound_to: bound_to.to_string(),
            state,
        };
        let payload = serde_json::to_string(&ceremony).map_err(Error::internal)?;
        let expires_at = clock::now() + CEREMONY_LIFETIME.as_secs() as i64;
        self.store
            .put_artifact(
                ArtifactKind::PasskeyCeremony,
                &secret::hash(&token),
                None,
                &payload,
                expires_at,
            )
            .await?;
        let options = serde_json::to_value(options).map_err(Error::internal)?;
        Ok(Started { token, options })
    }

    /// The ceremony `token` names, once, if it is live and was started by `bound_to`.
    async fn take(&self, bound_to: &str, token: &str) -> Result<Option<CeremonyState>> {
        let (kind, id_hash) = (ArtifactKind::PasskeyCeremony, secret::hash(token));
        let Some(payload) = self.store.artifact(kind, &id_hash, clock::now()).await? else {
            return Ok(None);
        };
        if !self.store.delete_artifact(kind, &id_hash).await? {
            return Ok(None);
        }
        let ceremony: Ceremony = serde_json::from_str(&payload).map_err(Error::internal)?;
        let bound = secret::constant_time_eq(ceremony.bound_to.as_bytes(), bound_to.as_bytes());
        Ok(bound.then_some(ceremony.state))
    }
}

/// The WebAuthn relying party id of `issuer`: its host, if that is a domain (§5.1.2; an IP
/// address cannot be one, so such an issuer has no passkeys).
pub fn relying_party_id(issuer: &str) -> Option<String> {
    match Url::parse(issuer).ok()?.host()? {
        url::Host::Domain(domain) => Some(domain.to_string()),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => None,
    }
}

/// `name` trimmed, if it can name a passkey: 1 to [`MAX_NAME_CHARS`] characters, none a control.
pub fn passkey_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let fits = (1..=MAX_NAME_CHARS).contains(&name.chars().count());
    (fits && !name.chars().any(char::is_control)).then_some(name)
}

fn credential_of(passkey: &PasskeyRecord) -> Result<Credential> {
    serde_json::from_str(&passkey.credential).map_err(Error::internal)
}

fn webauthn_failure(err: WebauthnError) -> Error {
    Error::internal(format!("WebAuthn: {err}"))
}

impl crate::account::session::Authentication {
    /// A passkey that verified its user, alone (RFC 8176 `pop`: proof of possession of the
    /// authenticator's key; `mfa`: with the user's PIN or biometric on it, two factors).
    pub fn passkey(now: crate::store::UnixTime) -> Self {
        crate::account::session::Authentication {
            auth_time: now,
            acr: "mfa".into(),
            amr: vec!["pop".into(), "mfa".into()],
        }
    }

    /// The password, then a passkey as the second factor (RFC 8176 `pwd`, `pop`, `mfa`; and
    /// `user` when the authenticator only tested presence, not who was there).
    pub fn password_and_passkey(now: crate::store::UnixTime, user_verified: bool) -> Self {
        let mut amr = vec!["pwd".to_string(), "pop".to_string()];
        if !user_verified {
            amr.push("user".into());
        }
        amr.push("mfa".into());
        crate::account::session::Authentication {
            auth_time: now,
            acr: "mfa".into(),
            amr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqlStore;

    async fn passkeys(issuer: &str) -> Option<Passkeys> {
        let store = SqlStore::in_memory().await.unwrap();
        Passkeys::new(issuer, Arc::new(store))
    }

    #[tokio::test]
    async fn the_relying_party_is_the_issuers_domain() {
        for ip in [
            "http://127.0.0.1:8080",
            "https://[::1]/",
            "https://10.0.0.1",
        ] {
            assert!(passkeys(ip).await.is_none(), "{ip}");
        }
        let tenant = passkeys("https://id.example.com/tenant").await.unwrap();
        let started = tenant.start_sign_in("interaction", None).await.unwrap();
        assert_eq!(started.options["publicKey"]["rpId"], "id.example.com");
    }

    #[tokio::test]
    async fn a_ceremony_is_taken_once_and_only_by_what_started_it() {
        let passkeys = passkeys("http://localhost:8080").await.unwrap();
        let here = "interaction-a browser-1";
        let started = passkeys.start_sign_in(here, None).await.unwrap();
        for elsewhere in ["interaction-b browser-1", "interaction-a browser-2"] {
            let other = passkeys.start_sign_in(here, None).await.unwrap();
            assert!(passkeys
                .take(elsewhere, &other.token)
                .await
                .unwrap()
                .is_none());
            assert!(
                passkeys.take(here, &other.token).await.unwrap().is_none(),
                "a try from elsewhere used it up"
            );
        }
        let taken = passkeys.take(here, &started.token).await.unwrap();
        assert!(matches!(taken, Some(CeremonyState::SignIn(_))));
        assert!(
            passkeys.take(here, &started.token).await.unwrap().is_none(),
            "once"
        );
        assert!(passkeys.take(here, "forged").await.unwrap().is_none());
    }

    #[test]
    fn a_name_is_short_plain_text() {
        assert_eq!(passkey_name("  Laptop "), Some("Laptop"));
        assert_eq!(
            passkey_name(&"ü".repeat(MAX_NAME_CHARS)).map(str::len),
            Some(128)
        );
        for refused in ["", "  ", "a\nb", &"n".repeat(MAX_NAME_CHARS + 1)] {
            assert_eq!(passkey_name(refused), None, "{refused:?}");
        }
    }
}
