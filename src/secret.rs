//! High-entropy secrets we generate (codes, tokens, session ids, client secrets) and their storage
//! form. They carry 256 bits of entropy, so a plain SHA-256 is the right hash: no salt or slow KDF
//! is needed, and lookups stay one indexed query (argon2 is only for user passwords).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new random secret: 32 bytes from the OS generator, base64url without padding (43 chars).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `value` has the shape of 256 bits in base64url without padding (43 characters): a
/// [`generate`]d secret, or a SHA-256 digest such as a PKCE S256 challenge.
pub fn is_base64url_256(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The form in which a secret is stored and looked up: base64url(SHA-256(secret)).
pub fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time check of a presented secret against its stored hash.
pub fn matches_hash(presented: &str, stored_hash: &str) -> bool {
    constant_time_eq(hash(presented).as_bytes(), stored_hash.as_bytes())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_distinct_and_match_only_their_own_hash() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(matches_hash(&a, &hash(&a)));
        assert!(!matches_hash(&b, &hash(&a)));
        assert!(is_base64url_256(&a));
        for planted in ["", "K", &a[1..], &format!("{}=", &a[1..])] {
            assert!(!is_base64url_256(planted), "{planted:?}");
        }
    }
}
