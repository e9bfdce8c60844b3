//! PKCE (RFC 7636), S256 only. oxide-auth's `Pkce` does the method check and the constant-time
//! comparison; we add what it lacks: the syntax of challenge and verifier (§4.1, §4.2).

use std::borrow::Cow;

use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::Value;

/// A validated S256 challenge, in the encoded form oxide-auth verifies against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge(String);

impl Challenge {
    /// From the authorization request's `code_challenge` and `code_challenge_method`. `plain` and a
    /// missing method (which means `plain`, §4.3) are refused: S256 only (RFC 9700 §2.1.1).
    pub fn from_request(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Self, &'static str> {
        let challenge = challenge.ok_or("code_challenge is required (PKCE, RFC 7636)")?;
        if method != Some("S256") {
            return Err("code_challenge_method must be S256");
        }
        // BASE64URL(SHA-256(verifier)) is always 43 characters.
        if !crate::secret::is_base64url_256(challenge) {
            return Err("code_challenge must be a base64url SHA-256 digest (43 characters)");
        }
        let encoded = Pkce::required()
            .challenge(Some(Cow::Borrowed("S256")), Some(Cow::Borrowed(challenge)))
            .ok()
            .flatten()
            .and_then(|value| value.into_private_value().ok().flatten())
            .ok_or("code_challenge was not accepted")?;
        Ok(Challenge(encoded))
    }

    /// Restores a challenge stored with [`Challenge::as_stored`].
    pub fn from_stored(stored: String) -> Self {
        Challenge(stored)
    }

    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is the one the challenge was made from (§4.6, constant time).
    pub fn verify(&self, verifier: &str) -> bool {
        is_valid_verifier(verifier)
            && Pkce::required()
                .verify(
                    Some(Value::private(Some(self.0.clone()))),
                    Some(Cow::Borrowed(verifier)),
                )
                .is_ok()
    }
}

/// §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_example_verifies() {
        let challenge = Challenge::from_request(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(challenge.verify(VERIFIER));
        let restored = Challenge::from_stored(challenge.as_stored().to_string());
        assert!(restored.verify(VERIFIER));
        assert!(!restored.verify(&VERIFIER.replace('d', "e")));
    }

    #[test]
    fn plain_missing_and_malformed_are_refused() {
        assert!(Challenge::from_request(Some(CHALLENGE), Some("plain")).is_err());
        assert!(Challenge::from_request(Some(CHALLENGE), None).is_err());
        assert!(Challenge::from_request(None, Some("S256")).is_err());
        assert!(Challenge::from_request(Some("short"), Some("S256")).is_err());
    }

    #[test]
    fn verifier_syntax_is_enforced() {
        let challenge = Challenge::from_request(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(!challenge.verify("too-short"));
        assert!(!challenge.verify(&"a".repeat(129)));
    }
}
