//! CSRF protection for our HTML forms: a double-submit token. The browser holds a random token in
//! an HttpOnly, SameSite=Lax cookie and every form posts a token made from it back in a hidden
//! field; a cross-site page can neither read the cookie nor make the browser send it with a
//! cross-site POST.
//!
//! Against a cookie planted by a sibling domain (security review finding 12):
//! - over https the cookie is `__Host-tessera_csrf`, which browsers accept only from this origin,
//!   Secure, with path `/` and no domain (RFC 6265bis §4.1.3.2); the unprefixed name is ignored;
//! - a cookie not of our shape (empty, or a value of someone's choosing) is replaced;
//! - once signed in, forms carry the token bound to the session (an HMAC of the session cookie
//!   keyed with the browser's token), so the form token changes at sign-in and one learnt before
//!   it, or in another session, is worth nothing.

use axum_extra::extract::CookieJar;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::secret;
use crate::web::cookies;

/// Name of the hidden form field.
pub const FIELD: &str = "csrf_token";

/// The cookie's name: `__Host-` prefixed when the issuer is https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-tessera_csrf"
    } else {
        "tessera_csrf"
    }
}

/// The browser's token, creating it (and the cookie that carries it) on first use.
pub fn ensure_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(token) = browser_token(&jar, secure) {
        let token = token.to_string();
        return (jar, token);
    }
    let token = secret::generate();
    let cookie = cookies::build(cookie_name(secure), token.clone(), secure);
    (jar.add(cookie), token)
}

/// The cookie's token, if the browser has one of the shape we make (256 bits, base64url): what
/// binds a sign-in in progress to this browser.
pub fn browser_token(jar: &CookieJar, secure: bool) -> Option<&str> {
    jar.get(cookie_name(secure))
        .map(|c| c.value())
        .filter(|token| secret::is_base64url_256(token))
}

/// The token for the forms of a page about to be shown, creating the browser token if needed:
/// bound to the session when the browser is signed in ([`form_token`]).
pub fn page_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    let (jar, _) = ensure_token(jar, secure);
    let token = form_token(&jar, secure).unwrap_or_default();
    (jar, token)
}

/// The token this browser's forms carry: the browser token, bound to the session once signed in.
pub fn form_token(jar: &CookieJar, secure: bool) -> Option<String> {
    let token = browser_token(jar, secure)?;
    Some(match jar.get(cookies::SESSION) {
        Some(session) => {
            let bound = secret::hmac_sha256(token.as_bytes(), session.value().as_bytes());
            URL_SAFE_NO_PAD.encode(bound)
        }
        None => token.to_string(),
    })
}

/// Whether the submitted form token is this browser's (constant-time).
pub fn verify(jar: &CookieJar, secure: bool, submitted: &str) -> bool {
    form_token(jar, secure)
        .is_some_and(|token| secret::constant_time_eq(token.as_bytes(), submitted.as_bytes()))
}

#[cfg(test)]
mod tests {
    use axum_extra::extract::cookie::Cookie;

    use super::*;

    fn jar(cookies: &[(&'static str, &str)]) -> CookieJar {
        cookies.iter().fold(CookieJar::new(), |jar, (name, value)| {
            jar.add(Cookie::new(*name, value.to_string()))
        })
    }

    #[test]
    fn over_https_the_cookie_is_host_prefixed_and_the_plain_name_is_ignored() {
        let (made, token) = ensure_token(CookieJar::new(), true);
        let cookie = made.get("__Host-tessera_csrf").expect("a __Host- cookie");
        assert_eq!(cookie.value(), token);
        assert_eq!((cookie.secure(), cookie.path()), (Some(true), Some("/")));
        assert_eq!(cookie.domain(), None);

        // A sibling domain can set `tessera_csrf`, never `__Host-tessera_csrf`.
        let planted = jar(&[("tessera_csrf", &secret::generate())]);
        assert_eq!(browser_token(&planted, true), None);
        let (replaced, fresh) = ensure_token(planted, true);
        assert_eq!(browser_token(&replaced, true), Some(fresh.as_str()));
    }

    #[test]
    fn a_cookie_not_of_our_shape_is_replaced() {
        for value in ["", "chosen-by-someone"] {
            let (replaced, token) = ensure_token(jar(&[("tessera_csrf", value)]), false);
            assert_ne!(token, value);
            assert!(verify(&replaced, false, &token));
        }
    }

    #[test]
    fn signed_in_forms_carry_a_token_bound_to_the_session() {
        let browser = secret::generate();
        let signed_out = jar(&[("tessera_csrf", &browser)]);
        assert!(verify(&signed_out, false, &browser));

        let signed_in =
            |session: &str| jar(&[("tessera_csrf", &browser), (cookies::SESSION, session)]);
        let (first, second) = (signed_in("session-1"), signed_in("session-2"));
        let token = form_token(&first, false).unwrap();
        assert!(verify(&first, false, &token));
        assert!(
            !verify(&first, false, &browser),
            "the token from before the sign-in"
        );
        assert!(!verify(&second, false, &token), "another session's token");
        assert!(!verify(&first, false, ""));
    }
}
