//! The messages Tessera sends, each a pair of templates under `templates/mail/` (text and HTML)
//! filled from one struct: edit the templates to brand them.

use askama::Template;

use super::{Body, Message};

/// The link that lets a user who forgot their password choose a new one.
pub struct PasswordReset<'a> {
    pub username: &'a str,
    pub link: &'a str,
    /// How long the link works.
    pub minutes: u64,
}

/// The link that proves a user receives mail at an address.
pub struct VerifyEmail<'a> {
    pub username: &'a str,
    pub link: &'a str,
}

/// The notice to an old address that the account's email changed.
pub struct EmailChanged<'a> {
    pub username: &'a str,
    pub new_address: &'a str,
}

/// The notice that a password was reset, to the account's address.
pub struct PasswordChanged<'a> {
    pub username: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    mail: &'a PasswordReset<'a>,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    mail: &'a PasswordReset<'a>,
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
struct PasswordChangedText<'a> {
    mail: &'a PasswordChanged<'a>,
}

#[derive(Template)]
#[template(path = "mail/password_changed.html")]
struct PasswordChangedHtml<'a> {
    mail: &'a PasswordChanged<'a>,
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmailText<'a> {
    mail: &'a VerifyEmail<'a>,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyEmailHtml<'a> {
    mail: &'a VerifyEmail<'a>,
}

#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct EmailChangedText<'a> {
    mail: &'a EmailChanged<'a>,
}

#[derive(Template)]
#[template(path = "mail/email_changed.html")]
struct EmailChangedHtml<'a> {
    mail: &'a EmailChanged<'a>,
}

impl From<VerifyEmail<'_>> for Message {
    fn from(mail: VerifyEmail<'_>) -> Self {
        message(
            "Verify your email address",
            VerifyEmailText { mail: &mail },
            VerifyEmailHtml { mail: &mail },
        )
    }
}

impl From<EmailChanged<'_>> for Message {
    fn from(mail: EmailChanged<'_>) -> Self {
        message(
            "Your email address was changed",
            EmailChangedText { mail: &mail },
            EmailChangedHtml { mail: &mail },
        )
    }
}

impl From<PasswordReset<'_>> for Message {
    fn from(mail: PasswordReset<'_>) -> Self {
        message(
            "Reset your password",
            PasswordResetText { mail: &mail },
            PasswordResetHtml { mail: &mail },
        )
    }
}

impl From<PasswordChanged<'_>> for Message {
    fn from(mail: PasswordChanged<'_>) -> Self {
        message(
            "Your password was reset",
            PasswordChangedText { mail: &mail },
            PasswordChangedHtml { mail: &mail },
        )
    }
}

fn message(subject: &str, text: impl Template, html: impl Template) -> Message {
    // Rendering fills fields into fixed text: it cannot fail.
    let render = |part: &dyn askama::DynTemplate| part.dyn_render().expect("mail template renders");
    Message {
        subject: subject.to_string(),
        body: Body {
            text: render(&text),
            html: render(&html),
        },
    }
}
