//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): an ID token we issued, naming
//! the user the relying party believes is signed in. It may have expired, and its signing key
//! may have been retired since.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::keys::{KeyRing, SigningAlg};
use crate::tokens::issuer::TokenIssuer;

/// The claims of an `id_token_hint` that Tessera uses.
#[derive(Debug, Deserialize)]
pub struct Hint {
    pub iss: String,
    pub sub: String,
    pub aud: String,
}

/// What an `id_token_hint` proves.
pub enum HintCheck {
    /// An ID token we issued, signature verified.
    Verified(Hint),
    /// Claims to be ours, signed by a key that has since been retired: it names the client, but
    /// cannot stand for the user's confirmation.
    RetiredKey(Hint),
}

/// §2: the hint must be an ID token we issued. It may have expired: logging out with an old
/// token is the normal case, and so is one whose signing key was retired since (then the user
/// is asked to confirm, security review finding 14).
pub fn verify(keys: &KeyRing, issuer: &str, token: &str) -> Result<HintCheck> {
    let verified = SigningAlg::ALL
        .into_iter()
        .find_map(|alg| keys.verify(token, alg, "JWT").ok());
    let (payload, check): (Vec<u8>, fn(Hint) -> HintCheck) = match verified {
        Some(payload) => (payload, HintCheck::Verified),
        None => match unverified_parts(token).filter(|(kid, _)| !keys.knows(kid)) {
            Some((_, payload)) => (payload, HintCheck::RetiredKey),
            None => {
                return Err(Error::invalid_request(
                    "id_token_hint is not an ID token of this server",
                ))
            }
        },
    };
    let hint: Hint = serde_json::from_slice(&payload)
        .map_err(|_| Error::invalid_request("id_token_hint is malformed"))?;
    if hint.iss != issuer {
        return Err(Error::invalid_request(
            "id_token_hint was issued by another server",
        ));
    }
    Ok(check(hint))
}

impl TokenIssuer {
    /// [`verify`] against this server's keys and name.
    pub fn check_hint(&self, token: &str) -> Result<HintCheck> {
        verify(&self.keys(), &self.issuer, token)
    }
}

/// The `kid` and the payload of a compact JWS, read without checking its signature.
fn unverified_parts(token: &str) -> Option<(String, Vec<u8>)> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut parts = token.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let kid = header.get("kid")?.as_str()?.to_string();
    Some((kid, URL_SAFE_NO_PAD.decode(payload).ok()?))
}
