//! User names compared as RFC 8265 says: the PRECIS UsernameCaseMapped profile (§3.3: width
//! mapping, case folding, NFC, the bidi rule, IdentifierClass code points) applied to each
//! space-separated part (§3.1 lets an application allow spaces between userparts). So `ADA`,
//! `ada` and full-width `ａｄａ` are one account, one sign-in and one throttle key, while the
//! name keeps the spelling it was given for display.

use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::UsernameCaseMapped;

/// The name's canonical form, or `None` if the profile disallows it (a symbol or emoji,
/// a character whose meaning depends on direction, two spaces in a row).
pub fn canonical(name: &str) -> Option<String> {
    let parts: Option<Vec<String>> = name
        .split(' ')
        .map(|part| {
            UsernameCaseMapped::enforce(part)
                .ok()
                .map(|p| p.into_owned())
        })
        .collect();
    parts.map(|parts| parts.join(" "))
}

/// What user names are unique by and looked up by: the canonical form, or, for a name the
/// profile disallows (only names stored before it was applied can be such), its lowercase.
pub fn key(name: &str) -> String {
    canonical(name).unwrap_or_else(|| name.to_lowercase())
}

/// The hash that stands for a user name as typed, in `login_attempts` and the throttle's keys:
/// folded as the store folds user names, so "Ada" and "ada" are one name, and keyed with a
/// server secret (HMAC-SHA256), since what was typed is sometimes a password, and an unkeyed
/// hash of it could be cracked from a database dump or from Redis (security review finding 21).
#[derive(Clone)]
pub struct NameHasher {
    key: [u8; 32],
}

impl NameHasher {
    pub fn new(key: [u8; 32]) -> Self {
        NameHasher { key }
    }

    pub fn hash(&self, username: &str) -> String {
        use base64::Engine;
        let mac = crate::secret::hmac_sha256(&self.key, key(username).as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_width_and_composition_fold_into_one_key() {
        let ada = key("ada");
        for same in ["ADA", "Ada", "\u{ff21}\u{ff24}\u{ff21}"] {
            assert_eq!(key(same), ada, "{same}");
        }
        // é precomposed (NFC) and as e + combining acute.
        assert_eq!(key("Jos\u{e9}"), key("jose\u{301}"));
        assert_eq!(key("Ada Lovelace"), "ada lovelace");
    }

    #[test]
    fn names_the_profile_disallows_have_no_canonical_form() {
        for name in ["", "a  b", "smile\u{263a}", "tab\there"] {
            assert_eq!(canonical(name), None, "{name:?}");
        }
        assert_eq!(
            key("Smile\u{263a}"),
            "smile\u{263a}",
            "kept as stored before"
        );
    }

    #[test]
    fn typed_names_hash_folded_and_keyed() {
        let names = NameHasher::new([1; 32]);
        assert_eq!(names.hash("Ada"), names.hash("ada"));
        assert_eq!(
            names.hash("\u{ff21}\u{ff24}\u{ff21}"),
            names.hash("ada"),
            "RFC 8265"
        );
        assert_ne!(names.hash("ada"), names.hash("bob"));
        assert_ne!(names.hash("ada"), NameHasher::new([2; 32]).hash("ada"));
        assert_ne!(
            names.hash("ada"),
            crate::secret::hash("ada"),
            "not a bare SHA-256"
        );
    }
}
