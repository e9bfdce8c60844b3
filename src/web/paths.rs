//! Every path the server answers, for the router and for every redirect to one of them.

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3: the same metadata, for OAuth clients that do not speak OpenID Connect.
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const JWKS: &str = "/jwks";
pub const AUTHORIZE: &str = "/authorize";
pub const LOGIN: &str = "/login";
/// The second-factor step of a sign-in.
pub const LOGIN_MFA: &str = "/login/mfa";
pub const LOGIN_VERIFY_EMAIL: &str = "/login/verify-email";
/// Starts a passkey sign-in (the form behind the login page's passkey button).
pub const LOGIN_PASSKEY_START: &str = "/login/passkey/start";
/// Takes the browser's passkey answer.
pub const LOGIN_PASSKEY: &str = "/login/passkey";
pub const CONSENT: &str = "/consent";
pub const ACCOUNT: &str = "/account";
pub const ACCOUNT_TOTP: &str = "/account/mfa/totp";
pub const ACCOUNT_TOTP_DISABLE: &str = "/account/mfa/totp/disable";
pub const ACCOUNT_PROFILE: &str = "/account/profile";
pub const ACCOUNT_PASSWORD: &str = "/account/password";
pub const ACCOUNT_END_SESSION: &str = "/account/sessions/end";
pub const ACCOUNT_END_OTHER_SESSIONS: &str = "/account/sessions/end-others";
pub const ACCOUNT_DEACTIVATE: &str = "/account/deactivate";
pub const ACCOUNT_EMAIL_VERIFY: &str = "/account/email/verify";
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
pub const ACCOUNT_PASSKEYS_NEW: &str = "/account/passkeys/new";
pub const ACCOUNT_PASSKEYS_REGISTER: &str = "/account/passkeys/register";
pub const ACCOUNT_PASSKEYS_REMOVE: &str = "/account/passkeys/remove";
pub const EMAIL_VERIFY: &str = "/email/verify";
pub const PASSWORD_FORGOT: &str = "/password/forgot";
pub const SIGNUP: &str = "/signup";
pub const PASSWORD_RESET: &str = "/password/reset";
pub const TOKEN: &str = "/token";
pub const REVOKE: &str = "/revoke";
pub const INTROSPECT: &str = "/introspect";
pub const LOGOUT: &str = "/logout";
pub const LOGOUT_CONFIRM: &str = "/logout/confirm";
pub const USERINFO: &str = "/userinfo";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const STYLESHEET: &str = "/static/tessera.css";
pub const PASSKEYS_SCRIPT: &str = "/static/passkeys.js";

/// A sign-in page (`LOGIN`, `LOGIN_MFA`, `CONSENT`) for interaction `id`.
pub fn for_interaction(path: &str, id: &str) -> String {
    format!("{path}?interaction={id}")
}
