//! Scopes (RFC 6749 §3.3), parsed with oxide-auth's scope grammar and kept as a sorted string so
//! the same grant always prints the same way.

use oxide_auth::primitives::scope::Scope;

use crate::error::{Error, ErrorCode, Result};

/// A scope the server knows: what the consent page says of it, the claims it releases (OIDC Core
/// §5.4) and whether it only makes sense for a user's grant.
pub struct ScopeInfo {
    pub name: &'static str,
    /// What the consent page says the client may do with it.
    pub consent: &'static str,
    /// The claims a token of this scope releases at userinfo and in the ID token.
    pub claims: &'static [&'static str],
    /// Describes a user: a client acting for itself (client credentials) cannot have it.
    pub user_only: bool,
    /// Listed in discovery's `scopes_supported`.
    pub advertised: bool,
}

pub const OPENID: &str = "openid";
pub const OFFLINE_ACCESS: &str = "offline_access";
/// The `groups` claim: the names of the user's groups, as provisioned through SCIM (the claim
/// name Keycloak, Okta and Entra ID use).
pub const GROUPS: &str = "groups";
/// The JSON self-service API (`/api/v1/users/me`), for a user's token.
pub const ACCOUNT: &str = "account";
/// SCIM provisioning, for client-credentials tokens only (never advertised).
pub const SCIM: &str = "scim";

/// Every scope with a meaning here. Other scope values a client is registered for pass through
/// to its tokens untouched.
pub const SCOPES: [ScopeInfo; 7] = [
    ScopeInfo {
        name: OPENID,
        consent: "confirm who you are",
        claims: &["sub"],
        user_only: true,
        advertised: true,
    },
    ScopeInfo {
        name: "profile",
        consent: "see your name and user name",
        claims: &["name", "given_name", "family_name", "preferred_username"],
        user_only: false,
        advertised: true,
    },
    ScopeInfo {
        name: "email",
        consent: "see your email address",
        claims: &["email", "email_verified"],
        user_only: false,
        advertised: true,
    },
    ScopeInfo {
        name: OFFLINE_ACCESS,
        consent: "keep access while you are away",
        claims: &[],
        user_only: true,
        advertised: true,
    },
    ScopeInfo {
        name: GROUPS,
        consent: "see the groups you belong to",
        claims: &["groups"],
        user_only: false,
        advertised: true,
    },
    ScopeInfo {
        name: ACCOUNT,
        consent: "manage your account: profile, password, sessions",
        claims: &[],
        user_only: true,
        advertised: true,
    },
    ScopeInfo {
        name: SCIM,
        consent: "manage users and groups",
        claims: &[],
        user_only: false,
        advertised: false,
    },
];

/// What the server knows of `name`, if anything.
pub fn info(name: &str) -> Option<&'static ScopeInfo> {
    SCOPES.iter().find(|s| s.name == name)
}

/// Whether a token of `granted` scope releases `claim`.
pub fn releases(granted: &str, claim: &str) -> bool {
    granted
        .split(' ')
        .filter_map(info)
        .any(|s| s.claims.contains(&claim))
}

/// Whether `name` describes a user ([`ScopeInfo::user_only`]).
pub fn is_user_only(name: &str) -> bool {
    info(name).is_some_and(|s| s.user_only)
}

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
    fn claims_follow_the_scopes_that_release_them() {
        assert!(releases("openid email", "email_verified"));
        assert!(!releases("openid", "email"));
        assert!(releases("openid groups", "groups"));
        assert!(!releases("openid unknown", "groups"));
        assert!(is_user_only("offline_access") && !is_user_only("scim"));
    }

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
