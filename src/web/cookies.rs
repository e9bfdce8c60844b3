//! Cookie attributes in one place: every cookie is HttpOnly, SameSite=Lax, path `/`, and Secure
//! whenever the issuer is https.

use axum_extra::extract::cookie::{Cookie, SameSite};

/// The signed-in (SSO) session's cookie: a random id (see `account::session`).
pub const SESSION: &str = "tessera_session";

pub fn build(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .build()
}
