//! Server-rendered pages (askama). Views are plain structs; rendering never needs JavaScript.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::error::Error;
use crate::web::request_id;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_id: &'a str,
    pub interaction: &'a str,
    pub csrf_token: String,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// Links to `/password/forgot`.
    pub offers_recovery: bool,
    /// Links to `/signup` for this interaction.
    pub offers_signup: bool,
    /// Offers a passkey sign-in (the button `passkey-sign-in`, shown by the script).
    pub offers_passkeys: bool,
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
pub struct PasswordForgotPage<'a> {
    pub csrf_token: String,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
pub struct PasswordResetPage<'a> {
    pub csrf_token: String,
    /// The link's secret, posted back with the new password.
    pub token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "email_verify.html")]
pub struct EmailVerifyPage<'a> {
    pub csrf_token: String,
    /// The link's secret, posted back.
    pub token: &'a str,
    pub address: &'a str,
}

/// The sign-in waits for the user to open the link mailed to their address.
#[derive(Template)]
#[template(path = "verify_email_wait.html")]
pub struct VerifyEmailWaitPage<'a> {
    pub interaction: &'a str,
    pub csrf_token: String,
    pub address: &'a str,
    /// Without an address there is nothing to verify: the page says where to add one.
    pub has_address: bool,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage<'a> {
    pub interaction: &'a str,
    pub csrf_token: String,
    pub username: &'a str,
    pub email: &'a str,
    /// An invitation's token: its address is the account's, fixed.
    pub invitation: Option<&'a str>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "mfa.html")]
pub struct MfaPage<'a> {
    pub client_id: &'a str,
    pub interaction: &'a str,
    pub csrf_token: String,
    pub error: Option<&'a str>,
    /// The user has TOTP: the code form.
    pub offers_code: bool,
    /// The user has a passkey: its button (`passkey-verify`, shown by the script).
    pub offers_passkey: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub username: &'a str,
    pub mfa_enabled: bool,
    pub csrf_token: String,
    pub error: Option<&'a str>,
    /// What the last action did, when it worked.
    pub notice: Option<&'a str>,
    pub profile: crate::account::self_service::Profile,
    /// Verification is on and the email is not verified: offer a link.
    pub email_unverified: bool,
    /// Links to `/account/passkeys`.
    pub offers_passkeys: bool,
    pub sessions: Vec<SessionView>,
}

/// `/account/passkeys`: the user's passkeys and the form that adds one.
#[derive(Template)]
#[template(path = "passkeys.html")]
pub struct PasskeysPage<'a> {
    pub passkeys: Vec<PasskeyView>,
    pub csrf_token: String,
    pub default_name: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

pub struct PasskeyView {
    pub credential_id: String,
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
}

/// Runs a passkey ceremony in the browser, then posts its answer to `action`.
#[derive(Template)]
#[template(path = "passkey_ceremony.html")]
pub struct PasskeyCeremonyPage<'a> {
    pub title: &'a str,
    pub action: &'a str,
    /// `create` (registration) or `get` (sign-in).
    pub mode: &'a str,
    /// The options for the browser, as JSON.
    pub options: String,
    pub token: &'a str,
    pub interaction: Option<&'a str>,
    pub csrf_token: String,
    pub back: &'a str,
}

/// One signed-in session on the account page.
pub struct SessionView {
    /// The public session id: what the sign-out form names.
    pub sid: String,
    pub signed_in_at: String,
    /// "password", "password and authenticator" or "passkey".
    pub method: &'static str,
    /// The browser showing the page.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "totp_enroll.html")]
pub struct TotpEnrollPage<'a> {
    pub otpauth_uri: &'a str,
    pub offer: &'a str,
    /// Rendered by the qrcode crate from the URI: markup we generate, not user input.
    pub qr_svg: &'a str,
    pub csrf_token: String,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    /// (scope, what it lets the client do)
    pub scopes: Vec<(String, &'static str)>,
    pub interaction: &'a str,
    pub csrf_token: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub csrf_token: String,
}

/// A plain message page (not an error).
#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// Renders a page with `status`; pages are personal, so never cached.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(err) => Error::internal(err).into_response(),
    }
}

/// Content-Security-Policy of a page that loads our script (`/static/passkeys.js`): the fixed
/// policy with `script-src 'self'`, still no inline script, and `connect-src 'self'` for the
/// login page's conditional-mediation challenge.
pub const CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                                   style-src 'self'; img-src 'self' data:; \
                                   frame-ancestors 'none'; base-uri 'none'";

/// As [`render`], for a page that loads our script.
pub fn render_with_script(status: StatusCode, page: &impl Template) -> Response {
    let mut response = render(status, page);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP_WITH_SCRIPT),
    );
    response
}

/// An HTML error page, for errors that must not (or cannot) be sent back to a client.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            title,
            message,
            request_id: &request_id::current(),
        },
    )
}

/// The HTML rendering of an [`Error`] on a page the user sees.
pub fn error_response(err: Error) -> Response {
    err.render(|code, description| error_page(code.status(), code.as_str(), &description))
}
