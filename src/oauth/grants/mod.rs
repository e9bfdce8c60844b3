//! One file per grant type (RFC 6749 §4), each behind [`crate::oauth::token::GrantHandler`].

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
