//! Our own forms are posted from our own pages: a state-changing form POST whose `Origin` is
//! another origin, or that the browser marks as cross-site or same-site (`Sec-Fetch-Site`, which
//! also catches a sibling subdomain), is refused before any handler runs (security review
//! finding 12, CONTRACT.md). The CSRF token is checked as well; this closes login CSRF from a
//! related domain that planted its own token cookie.
//!
//! `POST /authorize` and `POST /logout` are left out: relying parties post those cross-site on
//! purpose (OIDC Core §3.1.2.1, RP-Initiated Logout §2).

use axum::http::{header, HeaderMap};

use crate::web::paths;

/// The form endpoints this check guards.
pub fn guards(route: &str) -> bool {
    matches!(
        route,
        paths::LOGIN
            | paths::LOGIN_MFA
            | paths::LOGIN_PASSKEY_START
            | paths::LOGIN_PASSKEY
            | paths::CONSENT
            | paths::LOGOUT_CONFIRM
            | paths::LOGIN_VERIFY_EMAIL
            | paths::EMAIL_VERIFY
            | paths::PASSWORD_FORGOT
            | paths::SIGNUP
            | paths::PASSWORD_RESET
    ) || route.starts_with(paths::ACCOUNT)
}

/// Whether a request's headers say it came from a page that is not ours. `Sec-Fetch-Site`
/// decides where the browser sends it. Otherwise `Origin` does, except `null`: our pages' own
/// `Referrer-Policy: no-referrer` makes browsers send `null` for our forms too. Requests with
/// neither (old browsers, non-browser clients) pass: the CSRF token still guards them.
pub fn is_foreign(headers: &HeaderMap, own_origin: &str) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    text(header::ORIGIN.as_str()).is_some_and(|origin| origin != own_origin && origin != "null")
}

/// The origin (RFC 6454) of the issuer, as browsers write it in `Origin`.
pub fn origin_of(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_our_own_origin_passes() {
        let own = origin_of("https://idp.example/tenant");
        assert_eq!(own, "https://idp.example");
        assert!(!is_foreign(&headers(&[]), &own));
        assert!(!is_foreign(
            &headers(&[("origin", "https://idp.example")]),
            &own
        ));
        assert!(!is_foreign(
            &headers(&[("sec-fetch-site", "same-origin")]),
            &own
        ));
        let ours_without_referrer = [("origin", "null"), ("sec-fetch-site", "same-origin")];
        assert!(!is_foreign(&headers(&ours_without_referrer), &own));
        for foreign in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ]),
            headers(&[("origin", "http://idp.example")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(is_foreign(&foreign, &own), "{foreign:?}");
        }
        assert!(guards("/login") && guards("/account/password") && !guards("/authorize"));
    }
}
