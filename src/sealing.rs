//! Encryption at rest for the few secrets we must read back (TOTP seeds), as compact JWE
//! (RFC 7516) with direct AES-256-GCM under the configured key. Signing keys may move here too.

use josekit::jwe::{Dir, JweHeader};

/// The protected-header claim naming whose secret it is.
const OWNER: &str = "tessera_owner";

/// Used only in development, when no key is configured; it protects nothing and says so.
const DEVELOPMENT_KEY: &[u8; 32] = b"tessera-development-key-not-safe";

#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
#[error("sealed secret could not be opened (wrong key or corrupt)")]
pub struct Unsealable;

impl Sealer {
    pub fn new(key: Option<[u8; 32]>) -> Self {
        if key.is_none() {
            tracing::warn!(
                "no TESSERA_ENCRYPTION_KEY: TOTP seeds are sealed with the public development key"
            );
        }
        Sealer {
            key: key.unwrap_or(*DEVELOPMENT_KEY),
        }
    }

    /// Seals `secret` for `owner` (a user id), named in the protected header: the header is the
    /// AEAD's associated data, so a sealed secret moved to another user's row no longer opens
    /// (library audit, §4 item 4).
    pub fn seal(&self, secret: &[u8], owner: &str) -> String {
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header
            .set_claim(OWNER, Some(owner.into()))
            .expect("a private header claim");
        let encrypter = Dir
            .encrypter_from_bytes(self.key)
            .expect("a 256-bit key suits A256GCM");
        josekit::jwe::serialize_compact(secret, &header, &encrypter)
            .expect("sealing with a valid key")
    }

    /// A key of its own for `purpose`, derived from this one (HMAC-SHA256 as a PRF), so one
    /// configured secret serves several uses without any two sharing a key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        crate::secret::hmac_sha256(&self.key, purpose.as_bytes())
    }

    /// Opens a secret sealed for `owner`. One sealed before owners were named (no such claim)
    /// opens for anyone, as it did.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<Vec<u8>, Unsealable> {
        let decrypter = Dir.decrypter_from_bytes(self.key).map_err(|_| Unsealable)?;
        let (secret, header) =
            josekit::jwe::deserialize_compact(sealed, &decrypter).map_err(|_| Unsealable)?;
        match header.claim(OWNER) {
            None => Ok(secret),
            Some(named) if named.as_str() == Some(owner) => Ok(secret),
            Some(_) => Err(Unsealable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let sealer = Sealer::new(Some([7; 32]));
        let sealed = sealer.seal(b"seed", "u1");
        assert!(!sealed.contains("seed"));
        assert_eq!(sealer.open(&sealed, "u1").unwrap(), b"seed");
        assert!(
            sealer.open(&sealed, "u2").is_err(),
            "sealed for another user"
        );
        assert!(Sealer::new(Some([8; 32])).open(&sealed, "u1").is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_by_key() {
        let sealer = Sealer::new(Some([7; 32]));
        assert_ne!(sealer.derive("a"), sealer.derive("b"));
        assert_eq!(sealer.derive("a"), Sealer::new(Some([7; 32])).derive("a"));
        assert_ne!(sealer.derive("a"), Sealer::new(Some([8; 32])).derive("a"));
    }
}
