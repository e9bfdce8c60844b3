//! CSRF protection for our HTML forms: a double-submit token. The browser holds a random token in
//! an HttpOnly, SameSite=Lax cookie and every form posts it back in a hidden field; a cross-site
//! page can neither read the cookie nor make the browser send it with a cross-site POST.

use axum_extra::extract::CookieJar;

use crate::http::cookies;
use crate::secret;

pub const COOKIE: &str = "tessera_csrf";
/// Name of the hidden form field.
pub const FIELD: &str = "csrf_token";

/// The browser's token, creating it (and the cookie that carries it) on first use. A cookie that
/// is not one of ours in shape (empty, or planted by a sibling domain with a value of its own
/// choosing, security review finding 12) is replaced.
pub fn ensure_token(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    if let Some(token) = cookie_token(&jar) {
        let token = token.to_string();
        return (jar, token);
    }
    let token = secret::generate();
    (
        jar.add(cookies::build(COOKIE, token.clone(), secure)),
        token,
    )
}

/// The cookie's token, if the browser has one of the shape we make (256 bits, base64url).
pub fn cookie_token(jar: &CookieJar) -> Option<&str> {
    jar.get(COOKIE)
        .map(|c| c.value())
        .filter(|token| secret::is_base64url_256(token))
}

/// Whether the submitted form token is the browser's own (constant-time).
pub fn verify(jar: &CookieJar, submitted: &str) -> bool {
    cookie_token(jar)
        .is_some_and(|token| secret::constant_time_eq(token.as_bytes(), submitted.as_bytes()))
}
