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

/// An invitation to make an account.
pub struct Invite<'a> {
    pub link: &'a str,
}

/// The notice that a password was reset, to the account's address.
pub struct PasswordChanged<'a> {
    pub username: &'a str,
}

/// Makes `$mail` a [`Message`] with `$subject`, from its text and HTML templates: the two
/// template structs askama needs, and the conversion.
macro_rules! mail_message {
    ($mail:ident, $text:literal, $html:literal, $subject:literal) => {
        impl From<$mail<'_>> for Message {
            fn from(mail: $mail<'_>) -> Self {
                #[derive(Template)]
                #[template(path = $text)]
                struct Text<'a> {
                    mail: &'a $mail<'a>,
                }

                #[derive(Template)]
                #[template(path = $html)]
                struct Html<'a> {
                    mail: &'a $mail<'a>,
                }

                message($subject, Text { mail: &mail }, Html { mail: &mail })
            }
        }
    };
}

mail_message!(
    PasswordReset,
    "mail/password_reset.txt",
    "mail/password_reset.html",
    "Reset your password"
);
mail_message!(
    PasswordChanged,
    "mail/password_changed.txt",
    "mail/password_changed.html",
    "Your password was reset"
);
mail_message!(
    VerifyEmail,
    "mail/verify_email.txt",
    "mail/verify_email.html",
    "Verify your email address"
);
mail_message!(
    EmailChanged,
    "mail/email_changed.txt",
    "mail/email_changed.html",
    "Your email address was changed"
);
mail_message!(
    Invite,
    "mail/invite.txt",
    "mail/invite.html",
    "You are invited to make an account"
);

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
