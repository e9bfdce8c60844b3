//! Scopes (RFC 6749 §3.3), parsed with oxide-auth's scope grammar and kept as a sorted string so
//! the same grant always prints the same way.

use oxide_auth::primitives::scope::Scope;

use crate::error::{Error, ErrorCode, Result};

pub fn parse(raw: &str) -> Result<Scope> {
    raw.parse()
        .map_err(|e| Error::oauth(ErrorCode::InvalidScope, format!("malformed scope: {e}")))
}

/// Space-separated, sorted: a canonical form for storage and responses.
pub fn canonical(scope: &Scope) -> String {
    join_sorted(scope.iter())
}

/// Distinct tokens, sorted and space-separated: the one place the canonical order is made.
pub fn join_sorted<'a>(tokens: impl Iterator<Item = &'a str>) -> String {
    let mut tokens: Vec<&str> = tokens.filter(|t| !t.is_empty()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    tokens.join(" ")
}

/// Whether every token of `requested` is in `granted`.
pub fn is_within(requested: &Scope, granted: &Scope) -> bool {
    granted.priviledged_to(requested)
}

/// Whether a space-separated scope string contains `token`.
pub fn has(scope: &str, token: &str) -> bool {
    scope.split(' ').any(|t| t == token)
}

/// Every token of either scope string, canonically ordered (for accumulating consents).
pub fn union(a: &str, b: &str) -> String {
    join_sorted(a.split(' ').chain(b.split(' ')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_and_subset() {
        let requested = parse("profile openid  openid").unwrap();
        assert_eq!(canonical(&requested), "openid profile");
        assert!(is_within(
            &requested,
            &parse("openid email profile").unwrap()
        ));
        assert!(!is_within(&requested, &parse("openid").unwrap()));
        assert!(parse("bad\"scope").is_err());
        assert!(has("openid profile", "openid") && !has("openid profile", "email"));
        assert_eq!(
            union("openid email", "profile openid"),
            "email openid profile"
        );
    }
}
