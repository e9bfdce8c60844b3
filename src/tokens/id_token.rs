//! ID tokens (OIDC Core §2, §3.1.3.6), signed with the client's registered algorithm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};

use crate::account::session::Authentication;
use crate::clock;
use crate::error::{Error, Result};
use crate::keys::SigningAlg;
use crate::store::{Client, UnixTime};
use crate::tokens::claims::EmailClaims;
use crate::tokens::issuer::TokenIssuer;

#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    /// The client the token was issued to (§2): `aud` has one value here, so `azp` equals it.
    azp: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    auth_time: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    acr: &'a str,
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [String]>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    email: Option<&'a EmailClaims<'a>>,
}

/// What an ID token states.
pub struct IdTokenFacts<'a> {
    pub client: &'a Client,
    pub user_id: &'a str,
    pub nonce: Option<&'a str>,
    pub authentication: &'a Authentication,
    pub sid: Option<&'a str>,
    /// The access token issued beside it, bound through `at_hash`.
    pub access_token: &'a str,
    /// The `groups` claim, when the scope asks for it.
    pub groups: Option<&'a [String]>,
    /// `email` and `email_verified`, when the scope asks for them.
    pub email: Option<&'a EmailClaims<'a>>,
}

/// §3.1.3.6: the left half of the hash of the access token, with the hash of the JWS algorithm
/// (SHA-512 for Ed25519, as the OpenID errata and RPs such as the `openidconnect` crate expect).
fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest = match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

impl TokenIssuer {
    pub fn sign_id_token(&self, facts: &IdTokenFacts<'_>) -> Result<String> {
        let alg: SigningAlg = facts
            .client
            .id_token_signed_response_alg
            .parse()
            .map_err(Error::internal)?;
        let now = clock::now();
        let claims = IdTokenClaims {
            iss: &self.issuer,
            sub: facts.user_id,
            aud: &facts.client.client_id,
            azp: &facts.client.client_id,
            exp: now + self.lifetimes.id_token.as_secs() as UnixTime,
            iat: now,
            auth_time: facts.authentication.auth_time,
            nonce: facts.nonce,
            acr: &facts.authentication.acr,
            amr: &facts.authentication.amr,
            sid: facts.sid,
            at_hash: at_hash(alg, facts.access_token),
            groups: facts.groups,
            email: facts.email,
        };
        self.keys()
            .sign(alg, "JWT", &claims)
            .map_err(Error::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core Appendix A.3 example access token and at_hash (RS256 → SHA-256).
        assert_eq!(
            at_hash(
                SigningAlg::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
